"""The addition experiment plugin: can a neural network add two numbers?"""

from tinkerflow.core import hookimpl

from .experiment import Addition, AdditionConfig

__all__ = ["Addition", "AdditionConfig"]


@hookimpl
def register_experiments(register):
    register(Addition)
