"""The tinkerflow hook specifications: this module is the plugin API reference.

A plugin is any module or object with functions decorated by ``tinkerflow.core.hookimpl``
and named after one of the specs below. Installed plugins are found through the
``tinkerflow`` entry point group::

    [project.entry-points.tinkerflow]
    my_plugin = "my_package.plugin_module"

Hooks *register* things; the registered classes (:class:`~tinkerflow.core.Experiment`,
exporters) carry the behaviour. Every hook is called with keyword arguments only.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

PROJECT_NAME = "tinkerflow"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_experiments(register: Callable[..., None]) -> None:
    """Add experiments to the registry.

    When: once, when the plugin manager builds its registry (on every ``tinkerflow``
    command), before any config is composed.

    :param register: call ``register(ExperimentSubclass)`` once per experiment. The class
        must subclass :class:`tinkerflow.core.Experiment`, set ``name`` (lowercase letters,
        digits and underscores) and ``Config`` (a dataclass deriving from
        :class:`tinkerflow.core.ExperimentConfig`). A second experiment with a name already
        taken is rejected and reported against the plugin that registered it.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def register_exporters(register: Callable[..., None]) -> None:
    """Add export formats (TensorFlow.js, TFLite, ...) to the registry.

    When: once, when the plugin manager builds its registry.

    :param register: call ``register(ExporterSubclass)`` once per format. The class must
        subclass :class:`tinkerflow.exporters.Exporter` and set a unique ``name``.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def register_trackers(register: Callable[..., None]) -> None:
    """Name the trackers this plugin provides (MLflow, TensorBoard, W&B, ...).

    When: once, when the plugin manager builds its registry.

    :param register: call ``register(name, description)`` once per tracker. ``tracking.use``
        lists the names a run is tracked with (``tracking=mlflow`` sets it); a name no
        plugin registered is refused before anything runs. The tracker itself is the
        plugin's other hooks — :func:`before_run`, :func:`extra_callbacks`,
        :func:`after_run`, :func:`after_export`, :func:`before_sweep`, :func:`after_sweep` —
        which act when ``name in run.config.tracking.use``. A tracker records what it could
        not send in ``run.json`` (``run.note_tracking(name, problem)``): the command then
        says so in one line, and ``tracking.strict`` makes it an error.
    :returns: nothing; the return value is ignored.
    """


@hookspec
def extra_callbacks(run: Any, experiment: Any) -> list | None:
    """Contribute Keras callbacks to a training run (tracking, profiling, alerts).

    When: after the model is built and before ``fit`` starts.

    :param run: the :class:`tinkerflow.core.Run` being trained (its ``path``,
        ``experiment_name``, ``config``).
    :param experiment: the :class:`tinkerflow.core.Experiment` instance that owns the run.
    :returns: a list of ``keras.callbacks.Callback`` objects, or ``None`` for none.
    """


@hookspec
def register_commands(add_command: Callable[..., None]) -> None:
    """Add commands to the ``tinkerflow`` command line; called when the command line is built.

    :param add_command: call ``add_command(name, help, configure, run)``: ``configure(parser)``
        adds the command's arguments to its ``argparse`` parser, ``run(args, registry)`` does
        the work and returns the exit code. A :class:`tinkerflow.core.TinkerflowError` it
        raises becomes the usual one-line error. Built-in command names cannot be taken.
    :returns: nothing.
    """


@hookspec
def before_run(run: Any) -> None:
    """Called when a run starts, once its directory exists and before data is loaded.

    :param run: the :class:`tinkerflow.core.Run` about to train.
    :returns: nothing. An exception here fails the run (and ``after_run`` still fires).
    """


@hookspec
def before_sweep(sweep: Any) -> dict[str, str] | None:
    """Called once per ``tinkerflow train -m``, in the command's process, after every job's
    config is checked and before the first job starts (also when ``--resume`` continues it).

    :param sweep: a :class:`tinkerflow.core.Sweep`: its ``folder``, the command line's
        ``overrides``, ``config`` (the first job's typed config: its ``tracking`` section is
        the sweep's) and whether it is ``resumed``.
    :returns: environment variables every job of the sweep gets (they reach jobs that run in
        other processes or on other machines — joblib, Ray — through Hydra's
        ``hydra.job.env_set``), e.g. the id of a parent run; or ``None``.
    """


@hookspec
def after_sweep(sweep: Any, results: Any) -> None:
    """Called once the jobs of a sweep have ended (completed or not), in the command's process.

    :param sweep: the :class:`tinkerflow.core.Sweep` :func:`before_sweep` saw.
    :param results: one dict per job, as ``tinkerflow report`` reads them back from the
        folders: ``path``, ``status``, ``metrics``, ``overrides``, ``error``.
    :returns: nothing. Exceptions here are logged and do not change the outcome.
    """


@hookspec
def after_export(run: Any, report: Any) -> None:
    """Called when an export of a run has ended — right after training (``export=...``) or
    later from ``tinkerflow export`` — with ``export.json`` written.

    :param run: the :class:`tinkerflow.core.Run` that was exported (``run.config`` is the
        config it trained with).
    :param report: the :class:`tinkerflow.exporters.ExportReport`: ``results`` (format ->
        variant -> record), ``bundle`` (the deploy bundle's folder, or None).
    :returns: nothing. Exceptions here are logged and do not change the export's outcome.
    """


@hookspec
def after_run(run: Any, result: Any) -> None:
    """Called when a run ends, whether it completed or failed.

    :param run: the :class:`tinkerflow.core.Run` that ended; ``run.json`` is written.
    :param result: the :class:`tinkerflow.core.RunResult`: ``status`` (``"completed"``
        or ``"failed"``), ``metrics`` and, for a failed run, ``error``.
    :returns: nothing. Exceptions here are logged and do not change the run's status.
    """
