"""The one user-facing error type.

Anything a user can get wrong (a config value, a path, a data file, a plugin) raises
:class:`TinkerflowError` with a message that names the bad value and says what was
expected. The CLI turns it into a single line on stderr and exit code 2.
"""

from __future__ import annotations


class TinkerflowError(Exception):
    """A problem the user can fix; its message is shown as one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ConfigError(TinkerflowError):
    """A config value is unknown, of the wrong type or out of range."""


class PluginError(TinkerflowError):
    """A plugin failed to load, or registered something invalid."""


class DataError(TinkerflowError):
    """A data file or corpus is missing, empty, unreadable or in the wrong format."""


class RunDirError(TinkerflowError):
    """A path given as a run directory is missing or is not a run."""


class RunFailed(TinkerflowError):
    """Training failed for a reason that is not a user error (exit code 1); run.json has the traceback."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler, ``kill``, a container stopping) as the CLI raises it: like
    Ctrl-C, every cleanup runs, a run records itself as ``interrupted`` and resumes."""
