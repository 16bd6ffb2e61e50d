"""Reading a run folder back: its :class:`~tinkerflow.core.rundir.Run` and the experiment
rebuilt from the config saved in it. The exporters, the site builder and the commands
that take a run (sample, export, bench, telephone) all open runs here.
"""

from __future__ import annotations

from pathlib import Path

from . import learned
from .config import load_run_config, register_schemas, to_typed
from .errors import RunDirError
from .plugins import Registry
from .rundir import Run
from .runfs import check_tree


def open_run(run_path: Path | str, registry: Registry):
    """Open a run directory and rebuild its experiment from the saved config.

    Returns ``(run, experiment)``, the experiment knowing the run's learned state
    (:mod:`~.learned`); one-line errors for a missing directory, a directory that is not a
    run or holds a link (:func:`~.runfs.check_tree`), an experiment no plugin provides any
    more, a config that no longer fits, or a malformed ``learned.json`` (a missing one is
    the experiment's one-line error when a method needs the state).
    """
    check_tree(run_path)
    run = Run.open(run_path)
    experiment_cls = registry.experiment(run.experiment_name)
    register_schemas({name: entry.cls for name, entry in registry.experiments.items()})
    typed = to_typed(load_run_config(run.path), run.experiment_name, experiment_cls)
    run.config = typed
    state = learned.read(run.path, experiment_cls, missing_ok=True)
    return run, experiment_cls(typed.experiment, typed.trainer, typed.seed, run, data=typed.data,
                               architecture=typed.model, state=state)


def load_trained_model(run: Run, experiment):
    """The run's ``model.keras``, checked against the experiment its saved config rebuilds:
    a one-line :class:`~.errors.RunDirError` when the model's inputs are not the shapes that
    config feeds it (a config edited after training, or a model from another run)."""
    model = run.load_model(experiment.custom_objects())
    try:
        given = experiment.example_inputs()
    except NotImplementedError:
        return model
    given = list(given) if isinstance(given, (list, tuple)) else [given]
    inputs = experiment.export_model(model).inputs
    takes = [tuple(t.shape[1:]) for t in inputs]
    fed = [tuple(getattr(g, "shape", ())[1:]) for g in given]
    fits = len(takes) == len(fed) and all(
        len(t) == len(f) and all(a is None or a == b for a, b in zip(t, f)) for t, f in zip(takes, fed))
    if not fits:
        shown = ", ".join(f"{t.name} {_shape(s)}" for t, s in zip(inputs, takes))
        raise RunDirError(f"{run.model_path} takes {shown}, but {run.path / '.hydra' / 'config.yaml'} gives inputs "
                          f"{', '.join(_shape(f) for f in fed)}; expected the config the model was trained with")
    return model


def _shape(dims: tuple) -> str:
    return "(" + ", ".join(str(d) for d in ("batch", *dims)) + ")"
