"""Loading the TensorFlow.js converter on today's TensorFlow.

tensorflowjs 4.22.0 (October 2024, its last release) declares requirements that pin the
whole stack to TF 2.19: tensorflow-decision-forests (``tensorflow==2.19.0``), tensorflow-hub,
flax and ``packaging~=23.1``. tinkerflow installs it without them (``pip install --no-deps``,
done by ``make setup`` and ``tinkerflow install-tfjs``) and uses one function of it,
``convert_tf_saved_model``, which needs TensorFlow and, at import time, tf_keras and jax
(both real dependencies of tinkerflow).

Two more modules are imported by the converter at the top but serve features tinkerflow never
uses: ``tensorflow_decision_forests`` (registers the ops of decision-forest SavedModels) and
``tensorflow_hub`` (converts TF-Hub modules). :func:`converter` puts a stand-in for each into
``sys.modules`` for the duration of the import only (unless the process has already imported
the real one), so that nothing else in the process, and no other program, ever sees it; any use
of a stand-in raises an error that says which feature is missing. The real modules are never
loaded, even where they are installed: decision forests 1.12 does not load against TF 2.21 (an
environment upgraded from the TF 2.19 stack still has it). docs/dependencies.md has the
measurements behind this.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import types

from tinkerflow.core.errors import TinkerflowError

VERSION = "4.22.0"
REQUIREMENT = f"tensorflowjs=={VERSION}"
INSTALL_HINT = "run 'tinkerflow install-tfjs' (it installs tensorflowjs without its TF 2.19 pins)"
UNUSED = {
    "tensorflow_decision_forests": "decision-forest SavedModels",
    "tensorflow_hub": "TF-Hub modules",
}


class _Absent(types.ModuleType):
    """A stand-in for a module the converter imports but tinkerflow's conversions never use."""

    def __init__(self, name: str, feature: str):
        super().__init__(name, f"stand-in: {name} is not installed")
        self._feature = feature

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        raise TinkerflowError(f"the TF.js converter asked for {self.__name__}.{attribute}, which is not installed; "
                              f"tinkerflow does not convert {self._feature}")


def installed_version() -> str | None:
    """The installed tensorflowjs version, or None."""
    try:
        return importlib.metadata.version("tensorflowjs")
    except importlib.metadata.PackageNotFoundError:
        return None


def not_installed() -> str | None:
    """One line saying how to install the converter where it is missing, else None."""
    if installed_version() is None:
        return f"the TF.js converter (tensorflowjs {VERSION}) is not installed; {INSTALL_HINT}"
    return None


def converter() -> types.ModuleType:
    """``tensorflowjs.converters.tf_saved_model_conversion_v2``; a one-line error saying how to
    install it where tensorflowjs is missing."""
    problem = not_installed()
    if problem:
        raise TinkerflowError(problem)
    placed = [name for name in UNUSED if name not in sys.modules]
    for name in placed:
        sys.modules[name] = _Absent(name, UNUSED[name])
    try:
        from tensorflowjs.converters import tf_saved_model_conversion_v2
    except ImportError as exc:
        raise TinkerflowError(f"the TF.js converter (tensorflowjs {installed_version()}) does not load: {exc}; "
                              f"expected tensorflowjs {VERSION} with tf_keras and jax installed") from None
    finally:
        for name in placed:
            sys.modules.pop(name, None)
    return tf_saved_model_conversion_v2


def install() -> str:
    """Install the pinned tensorflowjs into this interpreter without its requirements; returns
    the installed version (nothing to do where it is already there)."""
    if installed_version() == VERSION:
        return VERSION
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", REQUIREMENT],
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-2:])
        raise TinkerflowError(f"pip could not install {REQUIREMENT}: {tail}")
    return VERSION
