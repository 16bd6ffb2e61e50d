"""The classifier experiment plugin: "is it my dog?" with a small CNN or MobileNetV2."""

from tinkerflow.core import hookimpl

from .experiment import Classifier, ClassifierConfig, ClassifierData

__all__ = ["Classifier", "ClassifierConfig", "ClassifierData"]


@hookimpl
def register_experiments(register):
    register(Classifier)
