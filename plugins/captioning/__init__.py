"""The captioning experiment plugin: an image captioner (and, later, the game of telephone)."""

from tinkerflow.core import hookimpl

from .experiment import Captioning, CaptioningConfig

__all__ = ["Captioning", "CaptioningConfig"]


@hookimpl
def register_experiments(register):
    register(Captioning)
