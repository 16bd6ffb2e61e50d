"""Training orchestration: what ``tinkerflow train`` does between parsing its arguments and
printing the outcome.

It composes and checks every job's config before Hydra creates a folder (:func:`preflight`),
picks the folder and takes its lock, adapts the launcher and sweeper, hands the jobs to
Hydra (each job is :func:`tinkerflow.core.runner.train_job`), handles ``--resume`` of a run
or a sweep, and reads the outcome back from the run folders (the jobs may have run in
other processes or machines). It prints nothing: messages go to ``notify`` and the result
is returned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from omegaconf import OmegaConf

from tinkerflow.exporters.pipeline import select_variants

from .config import (
    CONFIG_MODULE,
    CONFIG_NAME,
    check_group_choices,
    check_override_roots,
    compose_config,
    describe_config_error,
    experiment_choice,
    register_schemas,
    replayable_overrides,
    search_path_override,
    to_typed,
)
from .errors import ConfigError, RunFailed, TinkerflowError
from .experiment import Metric
from .hydra_app import launch, output_dir, parse, quoted, sweep_jobs
from .lock import run_lock
from .records import read_export_record
from .report import collect
from .rundir import Run, Sweep, tracking_notes
from .runfs import make_folder
from .tf_quiet import import_keras

if TYPE_CHECKING:
    from .hydra_app import HydraArgs

Notify = Callable[[str], None]
log = logging.getLogger("tinkerflow.train")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def train(hydra_args: list[str], registry, notify: Notify = _to_stderr) -> "Outcome":
    """Run ``tinkerflow train``'s arguments (Hydra's, plus ``--resume``); returns the outcome."""
    rest, resume = _pop_resume(list(hydra_args))
    dry_run = "--dry-run" in rest
    if "--strict-tracking" in rest:
        if resume and "-m" not in rest and "--multirun" not in rest:
            raise ConfigError("--strict-tracking goes with the run's own settings; expected it when the run starts "
                              "(tinkerflow train ... --strict-tracking), not with --resume of a single run")
        rest = [a for a in rest if a != "--strict-tracking"] + ["tracking.strict=true"]
    args = parse([a for a in rest if a != "--dry-run"])
    if dry_run:
        if resume or args.info_only:
            raise ConfigError("--dry-run lists the jobs of a new run or sweep; expected it without --resume, "
                              "--cfg and the other flags that only print")
        register_schemas({name: entry.cls for name, entry in registry.experiments.items()})
        return Outcome(0, multirun=args.multirun, dry_run=preflight(registry, args.overrides, args.multirun,
                                                                     dry_run=True))
    with contextlib.ExitStack() as held:
        if resume and not args.multirun:
            folder = _resume_folder(resume, args)
            done = _completed(folder, notify)  # resume is idempotent: a finished run is left as it is
            if done is not None:
                return done
            held.enter_context(run_lock(folder))
            done = _completed(folder, notify)
            if done is not None:
                return done
            args = parse(_single_resume_args(folder, notify))
        return _train(args, resume, held, registry, notify)


@dataclasses.dataclass
class Outcome:
    """How ``tinkerflow train`` ended: its exit code, the run or sweep folder (None when
    Hydra only printed information), whether it was a sweep, and the runs whose export
    failed its checks."""

    code: int
    folder: Path | None = None
    multirun: bool = False
    export_failures: list[str] = dataclasses.field(default_factory=list)
    metrics: dict = dataclasses.field(default_factory=dict)
    #: ``--dry-run``: what would have run, checked; nothing was written
    dry_run: "Plan | None" = None


@dataclasses.dataclass
class Plan:
    """What preflight learnt from composing every job: where Hydra will write, the training
    backends asked for, and the launcher and sweeper that will run the jobs."""

    out_dir: Path | None = None
    backends: set[str] = dataclasses.field(default_factory=set)
    launcher: dict = dataclasses.field(default_factory=dict)
    sweeper: dict = dataclasses.field(default_factory=dict)
    objective: Metric | None = None
    #: every job's overrides (command line and preset sweeps expanded); None when the
    #: sweeper chooses them as it goes (Optuna)
    jobs: list[list[str]] | None = None
    #: what a sweeper that chooses its jobs searches: ``hydra.sweeper.params``
    search: dict = dataclasses.field(default_factory=dict)
    #: the first job's typed config
    config: Any = None

    @property
    def uses_ray(self) -> bool:
        return "ray" in str(self.launcher.get("_target_", "")).lower()


def preflight(registry, overrides: Sequence[str], multirun: bool, resuming: bool = False,
              dry_run: bool = False) -> Plan:
    """Compose and validate the config of every job before Hydra creates any directory: the
    command line's sweeps and those of a preset (``hydra.sweeper.params``) alike. A dry run
    creates nothing at all."""
    check_override_roots(overrides)
    plan = Plan()
    jobs, shared = sweep_jobs(overrides) if multirun else ([list(overrides)], list(overrides))
    if multirun:
        params = _preset_sweeps(registry, shared)
        if params:
            plan.search = params
            jobs, _ = sweep_jobs([*(f"{key}={value}" for key, value in params.items()), *overrides])
    plan.jobs = jobs
    parents: dict[Path, None] = {}
    for job in jobs or [shared]:
        cfg = _compose(registry, job)
        # chosen by an override, a preset or the default (none when removed: ~experiment)
        name = cfg.hydra.runtime.choices.get("experiment") or experiment_choice(job)
        experiment_cls = registry.experiment(name)
        check_group_choices(job, name, experiment_cls)
        typed = to_typed(cfg, name, experiment_cls)
        registry.check_trackers(typed.tracking.use)
        plan.backends.add(_training().resolve_backend(typed.trainer.backend, experiment_cls))
        plan.objective = experiment_cls.objective
        if typed.export.formats:
            select_variants(registry, typed.export.formats, typed.export.variants)
        run_dir = output_dir(cfg, multirun)
        check_run_dir(run_dir, "hydra.sweep.dir" if multirun else "hydra.run.dir", resuming or multirun)
        parents.setdefault(run_dir.parent)
        if plan.out_dir is None:
            plan.out_dir = run_dir
            plan.config = typed
            plan.launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
            plan.sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=False)
    for parent in [] if dry_run else parents:  # only once every job is known to be good
        try:
            make_folder(parent)
        except OSError as exc:
            raise ConfigError(f"cannot create run directories under '{parent}' ({exc.strerror}); "
                              "expected paths.runs to be a writable folder") from exc
    return plan


def _compose(registry, job: Sequence[str]):
    try:
        return compose_config(job)
    except ConfigError:
        # say what the command line meant where it can be told: a model or data set the
        # experiment lacks, or an unknown experiment (with the plugins that failed to load)
        named = experiment_choice(job)
        check_group_choices(job, named, registry.experiment(named))
        raise


def _preset_sweeps(registry, shared: Sequence[str]) -> dict[str, str]:
    """The ``hydra.sweeper.params`` a preset (or the config) sweeps, each key checked against
    the composed config: a misspelt key is a one-line error here, not Hydra's after the sweep
    folder exists."""
    cfg = _compose(registry, shared)
    params = cfg.hydra.sweeper.get("params") or {}
    found = {}
    for key, value in params.items():
        plain = str(key).lstrip("+~")
        if not str(key).startswith("+") and OmegaConf.select(cfg, plain, default=_ABSENT) is _ABSENT:
            parent, _, leaf = plain.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            siblings = [str(k) for k in node.keys()] if hasattr(node, "keys") else []
            close = difflib.get_close_matches(leaf, siblings, n=1)
            hint = f"; did you mean {parent + '.' if parent else ''}{close[0]}?" if close else ""
            raise ConfigError(f"hydra.sweeper.params sweeps '{key}', which the config does not have{hint} "
                              f"(expected keys that tinkerflow train --cfg job shows)")
        found[str(key)] = str(value)
    return found


_ABSENT = object()


#: what a folder may hold before a run starts in it (a start that died before run.json)
STARTED_ONLY = {".lock", ".hydra", "run.log"}


def check_run_dir(run_dir: Path, key: str, reuse: bool) -> None:
    """Refuse a run folder that is the current folder (or holds it), or — unless ``reuse``
    (resume, a sweep's folder) — one that holds a run or any other files."""
    if run_dir.resolve() in (Path.cwd(), *Path.cwd().parents):
        raise ConfigError(f"{key}='{run_dir}' is the current folder or one holding it; expected a folder of the "
                          "run's own, e.g. runs/<experiment>/<name> (runs never write into the current folder)")
    if reuse or not run_dir.is_dir():
        return
    if (run_dir / "run.json").exists() or (run_dir / "run.json").is_symlink():
        raise ConfigError(f"{key}='{run_dir}' already holds a run; expected a new directory (runs are never "
                          "overwritten)")
    others = sorted(p.name for p in run_dir.iterdir() if p.name not in STARTED_ONLY)
    if others:
        raise ConfigError(f"{key}='{run_dir}' holds other files ({', '.join(others[:3])}); expected a new or "
                          "empty directory for the run")


def launcher_overrides(plan: Plan, given: set[str]) -> list[str]:
    """Hydra overrides that make the chosen launcher and sweeper work with tinkerflow jobs
    (``given``: the keys the command line sets itself, which are left alone)."""
    extra = []
    if plan.uses_ray:
        init = (plan.launcher.get("ray") or {}).get("init") or {}
        if init.get("address") and "hydra.launcher.ray.init.object_store_memory" not in given:
            extra.append("++hydra.launcher.ray.init.object_store_memory=null")  # Ray refuses it for a running cluster
        if plan.backends and "hydra.launcher.ray.init.runtime_env.env_vars.KERAS_BACKEND" not in given:
            # Ray keeps separate worker pools per environment, so a worker never mixes backends
            extra.append(f"++hydra.launcher.ray.init.runtime_env.env_vars.KERAS_BACKEND={next(iter(plan.backends))}")
    if "optuna" in str(plan.sweeper.get("_target_", "")).lower() and plan.objective:
        metric, higher = plan.objective.name, plan.objective.higher_is_better
        wanted = "maximize" if higher else "minimize"
        direction = plan.sweeper.get("direction")
        if "hydra.sweeper.direction" in given and str(direction).lower() != wanted:
            raise ConfigError(f"hydra.sweeper.direction={direction}, but the experiment's objective {metric} is "
                              f"better when {'higher' if higher else 'lower'}; expected "
                              f"hydra.sweeper.direction={wanted}")
        if "hydra.sweeper.direction" not in given:
            extra.append(f"hydra.sweeper.direction={wanted}")
    return extra


def select_backend(backends: set[str]) -> None:
    """Make Keras start on the training backend the jobs ask for (one per process)."""
    if not backends:
        return
    if len(backends) > 1:
        raise ConfigError(f"trainer.backend takes one value per sweep, got {', '.join(sorted(backends))}; "
                          "expected a single backend (run one sweep per backend)")
    _training().use_backend(next(iter(backends)))


def _training():
    """The training side, :mod:`.runner` (which imports Keras and TensorFlow), loaded once the
    jobs' configs are checked: a bad command line is answered before TensorFlow starts."""
    from . import runner

    return runner


def _train(args: "HydraArgs", resume: str | None, held, registry, notify: Notify) -> Outcome:
    register_schemas({name: entry.cls for name, entry in registry.experiments.items()})
    multirun = args.multirun
    out_dir = None
    if not args.info_only:
        plan = preflight(registry, args.overrides, multirun, resuming=bool(resume))
        select_backend(set(plan.backends))
        out_dir = plan.out_dir
        if resume and multirun:
            out_dir = _resume_dir(resume, out_dir)
            args = args.without("hydra.sweep.dir").plus("++hydra.job.env_set.TINKERFLOW_RESUME=1")
        # the folder's owner from here on: a second train, export or sample of it is refused,
        # and nothing in it changes before this process holds it (and has checked it for links)
        make_folder(out_dir)
        held.enter_context(run_lock(out_dir))
        if resume and multirun:
            notify(f"resuming sweep {out_dir}: jobs completed with the same config are skipped")
        check_run_dir(out_dir, "hydra.sweep.dir" if multirun else "hydra.run.dir", bool(resume) or multirun)
        if plan.uses_ray:
            out_dir = out_dir.resolve()  # Ray's workers start in another folder
        args = args.plus(*launcher_overrides(plan, args.keys()))
        # pin the folder Hydra will use, so that this process can read the results back even
        # when the jobs ran in other processes (joblib) or on other machines (ray)
        key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
        if key not in args.keys():
            args = args.plus(f"{key}={quoted(out_dir)}")
    sweep = None
    if multirun and not args.info_only:
        sweep = Sweep(Path(out_dir), list(args.overrides), plan.config, resumed=bool(resume))
        args = args.plus(*_job_environment(registry.hook.before_sweep(sweep=sweep)))
    import_keras()
    runner = _training()
    runner.JOB_CONTEXT.update(registry=registry, multirun=multirun)
    try:
        launch(runner.train_job, args.plus(*search_path_override(args.overrides)), CONFIG_MODULE, CONFIG_NAME)
    except TinkerflowError:
        raise
    except Exception as exc:  # Hydra's own checks of its command line, before any job ran
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise ConfigError(describe_config_error(exc)) from exc
    except runner.JobAborted as aborted:
        if isinstance(aborted.error, TinkerflowError) or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise aborted.error from None
        raise RunFailed(
            f"run failed: {type(aborted.error).__name__}: {aborted.error} "
            f"(traceback in {Path(aborted.run_dir) / 'run.json'}; --traceback shows it here)",
        ) from aborted.error
    if out_dir is None:
        return Outcome(0)
    return _summarise(Path(out_dir), multirun, notify, registry, sweep)


def _job_environment(answers: list[dict[str, str] | None]) -> list[str]:
    """``hydra.job.env_set`` overrides for the variables ``before_sweep`` hooks give the jobs."""
    overrides = []
    for answer in answers:
        for key, value in (answer or {}).items():
            if not (isinstance(key, str) and key.isidentifier() and isinstance(value, str)):
                raise TinkerflowError(f"a before_sweep hook returned {key!r}: {value!r}; expected environment "
                                      "variable names and string values")
            overrides.append(f"++hydra.job.env_set.{key}={quoted(value)}")
    return overrides


def _pop_resume(hydra_args: list[str]) -> tuple[list[str], str | None]:
    """Take ``--resume SWEEP`` (or ``--resume=SWEEP``) out of the arguments meant for Hydra."""
    rest, resume = [], None
    items = iter(hydra_args)
    for item in items:
        if item == "--resume":
            resume = next(items, None)
            if resume is None:
                raise ConfigError("--resume needs a run or sweep directory (or 'last'); expected --resume "
                                  "runs/<experiment>/<stamp>")
        elif item.startswith("--resume="):
            resume = item.split("=", 1)[1]
        else:
            rest.append(item)
    return rest, resume


def _resume_folder(resume: str, args: "HydraArgs") -> Path:
    """The run folder ``--resume`` names (``last``: the newest run under ``runs/``)."""
    if args.argv:
        raise ConfigError(f"--resume of a single run takes no overrides (got {' '.join(args.argv)}); "
                          "expected 'tinkerflow train --resume RUN' (a sweep: -m and its overrides)")
    if resume == "last":
        found = sorted((p.parent for p in Path("runs").glob("*/20*/run.json")), key=lambda p: p.name)
        if not found:
            raise ConfigError("--resume last: no run under 'runs/'; expected one made by 'tinkerflow train'")
        folder = found[-1]
    else:
        folder = Path(resume)
    if (folder / "multirun.yaml").is_file():
        raise ConfigError(f"--resume '{resume}' is a sweep; expected -m and the sweep's overrides to resume it")
    Run.open(folder)
    return folder


def _completed(folder: Path, notify: Notify) -> Outcome | None:
    """For an idempotent ``--resume``: the outcome when ``folder`` holds a completed run (a
    pre-empted job started again with the same command exits 0), else None."""
    info = Run.open(folder).read_info()
    if info.get("status") != "completed":
        return None
    notify(f"'{folder}' holds a completed run; nothing to resume")
    return Outcome(0, folder, metrics=dict(info.get("metrics") or {}))


def _single_resume_args(folder: Path, notify: Notify) -> list[str]:
    """Hydra arguments that continue the run in ``folder`` with the overrides it was started
    with — only those of tinkerflow's own config tree (:func:`replayable_overrides`)."""
    run = Run.open(folder)
    overrides = replayable_overrides(run.read_info().get("overrides"), run.info_path)
    notify(f"resuming the run in {folder}")
    return [*overrides, f"hydra.run.dir={quoted(folder)}", "++hydra.job.env_set.TINKERFLOW_RESUME=1"]


def _resume_dir(resume: str, new_dir: Path) -> Path:
    """The sweep folder ``--resume`` names; ``last`` is the newest sweep of the experiment."""
    if resume == "last":
        earlier = sorted(p for p in new_dir.parent.glob("*") if (p / "multirun.yaml").is_file())
        if not earlier:
            raise ConfigError(f"--resume last: no earlier sweep under '{new_dir.parent}'; expected one made by "
                              "'tinkerflow train -m'")
        return earlier[-1]
    folder = Path(resume)
    if not (folder / "multirun.yaml").is_file():
        raise ConfigError(f"--resume '{resume}' is not a sweep folder (no multirun.yaml); "
                          "expected runs/<experiment>/multirun/<stamp> or 'last'")
    return folder


def _summarise(out_dir: Path, multirun: bool, notify: Notify, registry=None, sweep: Sweep | None = None) -> Outcome:
    """The outcome, from what the jobs wrote (they may have run in other processes)."""
    rows = collect(out_dir)[0] if multirun else []
    runs = [Path(r["path"]) for r in rows] if multirun else [out_dir]
    if sweep is not None:
        try:
            registry.hook.after_sweep(sweep=sweep, results=rows)
        except Exception as exc:
            log.warning("an after_sweep hook raised %s: %s", type(exc).__name__, exc)
    for line in tracking_notes(runs):
        notify(line)
    outcome = Outcome(0, out_dir, multirun)
    for run_dir in runs:
        try:
            formats = read_export_record(run_dir / "export.json").get("formats", {})
        except TinkerflowError:
            continue
        if any(v.get("status") not in ("passed", "rejected") for entry in formats.values()
               for v in entry.get("variants", {}).values()):
            outcome.export_failures.append(str(run_dir))
    if multirun:
        failed = [r for r in rows if r["status"] != "completed"]
        notify(f"multirun: {len(rows) - len(failed)} completed, {len(failed)} failed ({out_dir})")
        for r in failed:
            notify(f"  failed: {r['path']}: {r['error'] or r['status']}")
        outcome.code = 1 if failed else 0
    if outcome.export_failures:
        outcome.code = 1
    return outcome
