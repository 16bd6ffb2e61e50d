"""The training runner: one composed config in, one finished run directory out.

compose -> validate -> run directory -> seed -> data -> model -> fit -> evaluate ->
model.keras, metrics.csv, run.json -> sample -> after_run.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from . import learned
from .config import TypedConfig, register_schemas, to_typed, with_smoke_overrides
from .errors import ConfigError, RunDirError, TinkerflowError
from .experiment import Metric
from .lock import LENT_LOCK, run_lock
from .plugins import Registry, make_plugin_manager
from .rundir import Run, RunResult, clear_leftovers, git_state, now_iso, versions
from .runfs import make_folder, move, save_model_atomic, write_atomic
from .tf_quiet import import_keras

log = logging.getLogger("tinkerflow.train")


class JobAborted(BaseException):
    """Carries a single run's error past Hydra's own error printing (which catches Exception)."""

    def __init__(self, error: BaseException, run_dir: str):
        super().__init__(str(error))
        self.error = error
        self.run_dir = run_dir


#: set by the CLI in the launching process; a launcher's worker process starts with the defaults
JOB_CONTEXT: dict[str, Any] = {"registry": None, "multirun": True}


def _job_registry() -> Registry:
    if JOB_CONTEXT["registry"] is None:
        registry = make_plugin_manager()
        register_schemas({name: entry.cls for name, entry in registry.experiments.items()})
        JOB_CONTEXT["registry"] = registry
    return JOB_CONTEXT["registry"]


def job_threads() -> int | None:
    """The CPU threads this job may use when the launcher runs several jobs on one machine
    at once (None: the job has the machine to itself)."""
    from hydra.core.hydra_config import HydraConfig

    launcher = HydraConfig.get().get("launcher", {}) or {}
    cores = os.cpu_count() or 1
    if "n_jobs" in launcher:  # joblib
        n = launcher.get("n_jobs")
        parallel = cores if n in (None, -1) else max(1, min(int(n), cores))
        return max(1, cores // parallel) if parallel > 1 else None
    if "ray" in str(launcher.get("_target_", "")).lower():
        import ray

        if ray.is_initialized():
            return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    return None


def configure_threads(backend: str) -> None:
    """Give each job the share of cores the launcher assigned it (TF and XLA would otherwise
    give every job all cores and parallel jobs would fight over them)."""
    threads = job_threads()
    if threads is None:
        return
    if backend == "jax" and "--xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):
        # read when JAX creates its CPU client, i.e. before this worker's first job computes
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen="
                                   + ("true" if threads > 1 else "false")
                                   + f" intra_op_parallelism_threads={threads}").strip()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # this worker already ran a job: TF keeps the settings it started with


#: the most disk the JAX compile cache may take; its oldest programs go first
COMPILE_CACHE_BYTES = 256 * 2**20


def use_compile_cache(backend: str) -> Path | None:
    """On JAX, keep compiled programs in ``$XDG_CACHE_HOME/tinkerflow/jax`` (``~/.cache`` when
    unset; at most :data:`COMPILE_CACHE_BYTES`), so a run whose program was compiled before —
    the next job of a sweep, the same experiment again — skips XLA's compile (the sine
    example's fit: 1.1 s, then 0.33 s). A ``JAX_COMPILATION_CACHE_DIR`` of the user's own is
    left to JAX; ``TINKERFLOW_JAX_CACHE=0`` turns the cache off. Returns the folder used."""
    if backend != "jax" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    if os.environ.get("TINKERFLOW_JAX_CACHE", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    if importlib.util.find_spec("filelock") is None:  # JAX locks the cache with it; without, writes could tear
        return None
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinkerflow" / "jax"
    try:
        make_folder(folder)
    except OSError:
        return None
    if not os.access(folder, os.W_OK):
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", COMPILE_CACHE_BYTES)
    return folder


def train_job(cfg) -> RunResult | None:
    """The Hydra task: one job of ``tinkerflow train`` (also run inside launcher workers)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    hc = HydraConfig.get()
    registry = _job_registry()
    name = hc.runtime.choices["experiment"]
    try:
        out_dir = Path(hc.runtime.output_dir)
        if hc.runtime.choices.get("debug") == "smoke":
            cfg = with_smoke_overrides(cfg, registry.experiment(name).smoke_overrides, hc.overrides.task)
            if hc.output_subdir:  # later commands rebuild the run from it: the config it trains with
                write_atomic(out_dir / hc.output_subdir / "config.yaml", OmegaConf.to_yaml(cfg))
        typed = to_typed(cfg, name, registry.experiment(name))
        resume = os.environ.get("TINKERFLOW_RESUME") == "1"
        with run_lock(out_dir):
            result = earlier_result(out_dir, typed) if resume else None
            if result is not None:
                log.info("%s completed earlier with the same config: skipped (--resume)",
                         f"job {hc.job.num}" if JOB_CONTEXT["multirun"] else f"the run in {out_dir}")
                exported = (out_dir / "export.json").is_file()
            else:
                backend = resolve_backend(typed.trainer.backend, registry.experiment(name))
                use_backend(backend)
                configure_threads(backend)
                use_compile_cache(backend)
                result = execute(typed, out_dir, registry, list(hc.overrides.task), resume=resume)
                exported = False
            if typed.export.formats and not exported:
                export_after_training(result.run_dir, registry, typed.export.formats, typed.export.variants)
        if "optuna" in str(hc.sweeper.get("_target_", "")).lower():
            return objective_value(result, registry.experiment(name))
        return result
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        if not JOB_CONTEXT["multirun"]:
            raise JobAborted(exc, hc.runtime.output_dir) from exc
        log.error("job %s failed: %s: %s", hc.job.num, type(exc).__name__, exc)
        return None


def same_config(recorded: dict | None, current: dict) -> bool:
    """Whether a run recorded with ``recorded`` was started with ``current`` (``paths`` aside).

    A setting the record lacks is a knob added to tinkerflow since the run started: the run
    was trained as its default, so the record still matches (a run started before an upgrade
    resumes after it)."""
    def same(old, new) -> bool:
        if isinstance(old, dict) and isinstance(new, dict):
            return set(old) <= set(new) and all(same(old[k], new[k]) for k in old)
        return old == new

    if not recorded:
        return False
    return same({k: v for k, v in recorded.items() if k != "paths"},
                {k: v for k, v in current.items() if k != "paths"})


def earlier_result(run_dir: Path, typed: TypedConfig) -> RunResult | None:
    """For ``--resume``: the result of a run this folder already holds with the same config.

    None when the folder holds no run, or an unfinished (killed, interrupted, failed) run
    of the same config, which :func:`execute` then continues from its checkpoint. An
    earlier attempt with another config, or an unreadable record, is moved to
    ``<parent>/.attempts/<name>-<time>/`` (nothing is deleted) and None is returned, so
    the job runs again from the start.
    """
    run = Run(run_dir, typed.experiment_name)
    if not run.info_path.is_file():
        return None
    try:
        info = run.read_info()
    except (OSError, ValueError, RunDirError):
        info = {}
    same = same_config(info.get("config"), typed.raw)
    if same and info.get("status") == "completed":
        return RunResult(run_dir=run.path, experiment=typed.experiment_name, status="completed",
                         metrics=info.get("metrics") or {}, overrides=info.get("overrides") or [])
    if same:
        return None
    aside = run_dir.parent / ".attempts" / f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    make_folder(aside)
    for item in run_dir.iterdir():
        if item.name not in (".hydra", "run.log"):
            move(item, aside / item.name)
    log.info("job %s: the earlier attempt (%s) moved to %s", run_dir.name, info.get("status") or "unreadable", aside)
    return None


def objective_value(result: RunResult, experiment_cls: type) -> float | None:
    """The number a hyperparameter search optimises for this run (None: the search records a failure)."""
    value = result.metrics.get(experiment_cls.objective.name)
    if value is None:
        log.error("the %s experiment names the objective '%s', but the run reported only: %s",
                  experiment_cls.name, experiment_cls.objective.name, ", ".join(sorted(result.metrics)) or "nothing")
        return None
    return float(value)


def resolve_backend(requested: str, experiment_cls: type) -> str:
    """The Keras backend a job of ``experiment_cls`` trains on for ``trainer.backend=requested``.

    ``auto``: the backend Keras already runs on in this process, when the experiment trains
    on it (results are the same on either: initial weights and batch order come from the
    seed), else the first of ``experiment_cls.backends`` that is installed. A backend the
    experiment does not train on is refused, in one line."""
    supported = tuple(experiment_cls.backends)
    if requested != "auto":
        if requested not in supported:
            raise ConfigError(f"trainer.backend={requested}: the {experiment_cls.name} experiment trains on "
                              f"{' and '.join(supported)} only; expected trainer.backend="
                              f"{' or '.join([*supported, 'auto'])}")
        return requested
    if "keras" in sys.modules and import_keras().backend.backend() in supported:
        return import_keras().backend.backend()
    installed = [b for b in supported if b != "jax" or importlib.util.find_spec("jax") is not None]
    return (installed or supported)[0]


def use_backend(backend: str) -> None:
    """Start Keras on ``backend`` in this process, or fail if it already runs on another (or
    is not installed)."""
    if backend == "jax" and importlib.util.find_spec("jax") is None:
        raise ConfigError("trainer.backend=jax needs JAX, which is not installed; install it with "
                          "pip install 'jax>=0.7' (or train with trainer.backend=tensorflow)")
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
    current = import_keras().backend.backend()
    if current != backend:
        raise ConfigError(f"trainer.backend={backend}, but Keras in this process already runs on {current}; "
                          "expected a fresh process (the tinkerflow command starts one)")


def export_after_training(run_dir: Path, registry: Registry, formats: list[str], variants: list[str]) -> None:
    """Export a finished run; from a process on another backend, through ``tinkerflow export``
    in a TensorFlow process (the converters need TensorFlow's graphs)."""
    if import_keras().backend.backend() == "tensorflow":
        from tinkerflow.exporters.pipeline import export_run

        export_run(run_dir, registry, formats, variants or None)  # the outcome is in export.json
        return
    cmd = [sys.executable, "-m", "tinkerflow.exporters.pipeline", str(run_dir), "--format", *formats]
    if variants:
        cmd += ["--quantize", *variants]
    log.info("exporting in a TensorFlow process: %s", " ".join(cmd[3:]))
    # this process holds the run's lock and lends it to the export it waits for
    subprocess.run(cmd, env={**os.environ, "KERAS_BACKEND": "tensorflow", LENT_LOCK: str(Path(run_dir).resolve())},
                   check=False)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic."""
    keras = import_keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def execute(typed: TypedConfig, run_dir: Path, registry: Registry, overrides: list[str] | None = None,
            resume: bool = False) -> RunResult:
    """Train one experiment into ``run_dir`` and record everything in it.

    A failed run still leaves ``run.json`` with ``status: failed`` and the error; the
    exception is re-raised for the caller to report. With ``resume``, an unfinished run of
    the same config in ``run_dir`` (killed, interrupted or failed) continues from its last
    checkpoint (:mod:`tinkerflow.core.resume`); without a checkpoint it starts over there.
    """
    from .resume import ResumePoint  # callbacks and resume start Keras: after use_backend chose its backend

    run = Run(run_dir, typed.experiment_name)
    run.config = typed
    earlier = run.read_info() if run.info_path.exists() else {}
    point = None
    if earlier.get("status") is not None:
        if not resume:
            raise RunDirError(f"'{run_dir}' already holds a run; expected a new directory (runs are never overwritten)")
        check_resumable(run, earlier, typed)
        clear_leftovers(run.path)
        point = ResumePoint.read(run.checkpoints_dir)
    make_folder(run.path)
    result = RunResult(run_dir=run.path, experiment=typed.experiment_name, overrides=list(overrides or []))
    timings: dict[str, float] = {}
    started = time.perf_counter()
    stage = "start"
    if earlier.get("status") is not None:
        resumes = list(earlier.get("resumes") or [])
        resumes.append({"at": now_iso(), "after_epoch": point.epoch if point else 0, "was": earlier.get("status"),
                        "error": (earlier.get("error") or {}).get("message")})
        run.update_info(status="running", error=None, finished=None, resumes=resumes, versions=versions(),
                        git=git_state(), host=socket.gethostname())
        log.info("resuming %s after epoch %d", run.path, point.epoch if point else 0)
    else:
        run.update_info(
            experiment=typed.experiment_name,
            status="running",
            started=now_iso(),
            overrides=result.overrides,
            seed=typed.seed,
            config=typed.raw,
            versions=versions(),
            git=git_state(),
            host=socket.gethostname(),
        )
    experiment_cls = registry.experiment(typed.experiment_name)
    try:
        stage = "before_run"
        registry.hook.before_run(run=run)
        seed_everything(typed.seed, typed.trainer.deterministic)
        import tensorflow as tf

        run.update_info(backend=import_keras().backend.backend(),
                        threads={"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                                 "inter_op": tf.config.threading.get_inter_op_parallelism_threads()})
        experiment = experiment_cls(typed.experiment, typed.trainer, typed.seed, run, data=typed.data,
                                    architecture=typed.model, resumed=point)

        stage = "load_data"
        t = time.perf_counter()
        data = experiment.load_data()
        experiment = experiment.with_state(learned.keep(run.path, experiment_cls, data.state))
        timings["data_s"] = time.perf_counter() - t
        run.update_info(data=data.info)

        stage = "build_model"
        t = time.perf_counter()
        model = experiment.build_model()
        if point is None:
            experiment.initialize(model)
        timings["build_s"] = time.perf_counter() - t

        stage = "fit"
        callbacks, checkpoint = _callbacks(run, experiment, registry, point)
        t = time.perf_counter()
        history = experiment.fit(model, data, callbacks)
        earlier_fit = (earlier.get("timings") or {}).get("fit_s", 0.0) if point else 0.0
        timings["fit_s"] = earlier_fit + time.perf_counter() - t
        logged = checkpoint.history or getattr(history, "history", None) or {}
        epochs_run = max((len(v) for v in logged.values()), default=0) or None  # a GAN logs d_loss, g_loss
        if epochs_run:
            timings["seconds_per_epoch"] = timings["fit_s"] / epochs_run

        stage = "evaluate"
        t = time.perf_counter()
        metrics = experiment.evaluate(model, data)
        metrics.update(_history_summary(logged, monitored(model, typed.trainer.early_stopping.monitor,
                                                          experiment.objective)))
        timings["evaluate_s"] = time.perf_counter() - t
        result.metrics = metrics

        stage = "save"
        t = time.perf_counter()
        _save_model(model, run)
        timings["save_s"] = time.perf_counter() - t
        run.update_info(metrics=metrics, epochs_run=epochs_run, timings=_round(timings))

        stage = "sample"
        t = time.perf_counter()
        samples = experiment.sample(model, run.samples_dir, experiment.SampleOptions())
        timings["sample_s"] = time.perf_counter() - t
        timings["total_s"] = time.perf_counter() - started
        result.status = "completed"
        run.update_info(status="completed", finished=now_iso(), samples=samples, timings=_round(timings))
        log.info("run completed: %s", run.path)
        for key, value in metrics.items():
            log.info("  %s = %.6g", key, value)
    except BaseException as exc:
        # Ctrl-C and SIGTERM (Terminated) stop a run that --resume continues; anything else fails it
        result.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        result.error = {
            "stage": stage,
            "type": type(exc).__name__,
            "message": str(exc) or type(exc).__name__,
            "traceback": traceback.format_exc(),
        }
        timings["total_s"] = time.perf_counter() - started
        try:
            run.update_info(status=result.status, finished=now_iso(), error=result.error, timings=_round(timings))
        except OSError as unrecorded:  # a full disk: the error that stopped the run is the one to report
            log.error("could not record the run's end in %s (%s)", run.info_path, unrecorded.strerror or unrecorded)
        # a single run's user error is printed once, by the CLI; sweeps list it per job
        level = logging.DEBUG if isinstance(exc, TinkerflowError) and not JOB_CONTEXT["multirun"] else logging.ERROR
        log.log(level, "run failed during %s: %s: %s", stage, type(exc).__name__, exc)
        raise
    finally:
        try:
            registry.hook.after_run(run=run, result=result)
        except Exception as exc:
            log.warning("an after_run hook raised %s: %s", type(exc).__name__, exc)
    return result


def _callbacks(run: Run, experiment: Any, registry: Registry, point: Any = None) -> tuple[list, Any]:
    """The experiment's and plugins' callbacks, then metrics.csv, the resume checkpoint (after
    every callback whose progress it saves) and the progress display; and the checkpoint."""
    from .callbacks import MetricsCSV, progress_display
    from .resume import ResumeCheckpoint

    extra = [cb for group in registry.hook.extra_callbacks(run=run, experiment=experiment) if group for cb in group]
    callbacks = [*experiment.callbacks(), *extra, MetricsCSV(run.metrics_path, keep_epochs=point.epoch if point else 0)]
    checkpoint = ResumeCheckpoint(run.checkpoints_dir, experiment.trainer.checkpoint_seconds, callbacks,
                                  experiment=experiment, point=point)
    progress = progress_display(experiment.trainer.progress, label=run.experiment_name)
    return [*callbacks, checkpoint, progress], checkpoint


def check_resumable(run: Run, info: dict, typed: TypedConfig) -> None:
    """Refuse to resume a completed run, or one trained with another config."""
    if info.get("status") == "completed":
        raise RunDirError(f"'{run.path}' holds a completed run; expected an unfinished one to resume")
    if not same_config(info.get("config"), typed.raw):
        raise RunDirError(f"'{run.path}' was started with another config; expected the same overrides to resume it "
                          f"(they were: {' '.join(info.get('overrides') or []) or 'none'})")


def monitored(model: Any, monitor: str, objective: Metric) -> Metric:
    """The metric early stopping watches, with the direction Keras' ``EarlyStopping`` gives it
    (``mode="auto"``): a loss is better lower, a compiled Keras metric declares its own
    direction (accuracy and AUC: higher); for one that does not (a metric function), the
    experiment's objective says when it is ``best_<monitor>``; else lower."""
    name = monitor.removeprefix("val_")
    if name == "loss" or name.endswith("_loss"):
        return Metric(monitor)
    compiled = []
    for metric in getattr(model, "metrics", []):
        compiled.extend(getattr(metric, "metrics", None) or [metric])  # Keras' CompileMetrics holds the rest
    for metric in compiled:
        if metric.name == name and getattr(metric, "_direction", None) in ("up", "down"):
            return Metric(monitor, higher_is_better=metric._direction == "up")
    if objective.name == f"best_{monitor}":
        return Metric(monitor, objective.higher_is_better)
    return Metric(monitor)


def _history_summary(logs: dict, monitor: Metric) -> dict[str, float]:
    """The epoch that was best for ``monitor`` and the validation metrics at that epoch."""
    values = (logs or {}).get(monitor.name)
    if not values:
        return {}
    best = monitor.best(values)
    out = {"best_epoch": best + 1}
    out.update({f"best_{k}": float(v[best]) for k, v in logs.items() if k.startswith("val_") and len(v) > best})
    return out


def _save_model(model: Any, run: Run) -> None:
    save_model_atomic(model, run.model_path)


def _round(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in timings.items()}
