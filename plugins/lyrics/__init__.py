"""The lyrics experiment plugin: a word-level LSTM lyrics generator."""

from tinkerflow.core import hookimpl

from .experiment import Lyrics, LyricsConfig, LyricsData

__all__ = ["Lyrics", "LyricsConfig", "LyricsData"]


@hookimpl
def register_experiments(register):
    register(Lyrics)
