"""A run's ``learned.json``: what its experiment learned from the data (a
:class:`~.experiment.DataState`: a vocabulary, class names, condition columns).

The runner keeps the state :meth:`~.experiment.Experiment.load_data` returns: it checks
its type, writes it once, and on a resumed run refuses data that now teaches something
else. Every command that opens a trained run reads it back here, validated like any record
of a run folder from elsewhere, and gives it to the experiment's constructor.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DataError, PluginError, RunDirError
from .records import load_json, validate
from .runfs import write_atomic

FILE = "learned.json"


def read(run_path: Path, experiment_cls: type, missing_ok: bool = False):
    """The state saved in the run at ``run_path`` (None for an experiment without a State, and
    with ``missing_ok`` for a run that has none yet: one that failed before ``load_data``
    returned); a one-line :class:`~.errors.RunDirError` when it is missing, corrupt or of
    another shape."""
    model = experiment_cls.State
    if model is None:
        return None
    path = Path(run_path) / FILE
    expected = f"the {FILE} a {experiment_cls.name} run saves ({model.__name__})"
    if not path.exists() and not path.is_symlink():
        if missing_ok:
            return None
        raise RunDirError(f"{run_path} has no {FILE}; expected {expected}")
    return validate(path, load_json(path, expected), model, expected)


def keep(run_path: Path, experiment_cls: type, state):
    """Check and save the state ``load_data`` returned; on a run that already saved one, the
    two must be equal. Returns the state to hand to the experiment."""
    model, name = experiment_cls.State, experiment_cls.__name__
    if model is None:
        if state is not None:
            raise PluginError(f"{name}.load_data returned Splits(state={type(state).__name__}), but {name} declares "
                              "no State; expected a State = <its DataState class> class attribute")
        return None
    if not isinstance(state, model):
        raise PluginError(f"{name}.load_data returned Splits(state={type(state).__name__}); expected a "
                          f"{model.__name__}, what it learned from the data")
    path = Path(run_path) / FILE
    if path.exists() or path.is_symlink():
        saved = read(run_path, experiment_cls)
        if saved != state:
            field = next(k for k in type(state).model_fields if getattr(saved, k) != getattr(state, k))
            raise DataError(f"the data now gives {field} {_short(getattr(state, field))}, the run was trained with "
                            f"{_short(getattr(saved, field))} ({path}); expected the data the run was trained on")
        return saved
    write_atomic(path, json.dumps(state.model_dump(mode="json"), ensure_ascii=False))
    return state


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
