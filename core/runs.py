"""Reading a run folder back: its :class:`~tinkerflow.core.rundir.Run` and the experiment
rebuilt from the config saved in it. The exporters, the site builder and the commands
that take a run (sample, export, bench, telephone) all open runs here.
"""

from __future__ import annotations

from pathlib import Path

from .plugins import Registry
from .rundir import Run


def open_run(run_path: Path | str, registry: Registry):
    """Open a run directory and rebuild its experiment from the saved config.

    Returns ``(run, experiment)``; one-line errors for a missing directory, a directory that
    is not a run, an experiment no plugin provides any more, or a config that no longer fits.
    """
    from .config import load_run_config, register_schemas, to_typed

    run = Run.open(run_path)
    experiment_cls = registry.experiment(run.experiment_name)
    register_schemas({name: entry.cls for name, entry in registry.experiments.items()})
    typed = to_typed(load_run_config(run.path), run.experiment_name, experiment_cls)
    run.config = typed
    return run, experiment_cls(typed.experiment, typed.trainer, typed.seed, run, data=typed.data, architecture=typed.model)
