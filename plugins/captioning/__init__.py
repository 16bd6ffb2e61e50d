"""The captioning experiment plugin: an image captioner (and, later, the game of telephone)."""

from tinkerflow.core import hookimpl

from . import telephone
from .experiment import Captioning, CaptioningConfig
from .painter import TextToImage

__all__ = ["Captioning", "CaptioningConfig", "TextToImage"]


@hookimpl
def register_experiments(register):
    register(Captioning)
    register(TextToImage)


@hookimpl
def register_commands(add_command):
    add_command("telephone", "play AI telephone between a captioning run and a text_to_image run",
                telephone.configure, telephone.command)
