"""The dcgan experiment plugin: ellipses, emoji faces, digits or your images."""

from tinkerflow.core import hookimpl

from .experiment import Dcgan, DcganConfig

__all__ = ["Dcgan", "DcganConfig"]


@hookimpl
def register_experiments(register):
    register(Dcgan)
