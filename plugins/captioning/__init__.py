"""The captioning experiment plugin: an image captioner (and, later, the game of telephone)."""

from tinkerflow.core import hookimpl

from .experiment import Captioning, CaptioningConfig
from .painter import TextToImage

__all__ = ["Captioning", "CaptioningConfig", "TextToImage"]


@hookimpl
def register_experiments(register):
    register(Captioning)
    register(TextToImage)
