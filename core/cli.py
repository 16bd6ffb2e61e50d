"""The ``tinkerflow`` command line.

Every user error becomes one line on stderr and exit code 2; ``--traceback`` (or
``HYDRA_FULL_ERROR=1``) shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import typing
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, RunFailed, TinkerflowError

HYDRA_INFO_FLAGS = {"--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc"}
HYDRA_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-name", "-cn",
                     "--config-dir", "-cd", "--experimental-rerun", "--shell-completion", "-sc"}


def _quiet_tensorflow() -> None:
    from .tf_quiet import import_keras

    import_keras()


def _registry():
    from .plugins import make_plugin_manager

    registry = make_plugin_manager()
    for info in registry.errors:
        print(f"tinkerflow: warning: plugin '{info.name}' is disabled: {info.error}", file=sys.stderr)
    return registry


# -- tinkerflow plugins --------------------------------------------------------------------

def cmd_plugins(args: argparse.Namespace) -> int:
    registry = _registry()
    infos = sorted(registry.plugins.values(), key=lambda i: (not i.builtin, i.name))
    rows = [dataclasses.asdict(info) for info in infos]
    experiments = {name: _experiment_row(entry) for name, entry in sorted(registry.experiments.items())}
    for row in rows:
        row["described"] = {name: experiments[name] for name in row["experiments"] if name in experiments}
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="tinkerflow plugins")
    for column in ("plugin", "version", "experiments", "exporters", "hooks", "status"):
        table.add_column(column)
    for row in rows:
        version = f"{row['distribution'] or '-'} {row['version'] or ''}".strip()
        status = f"[red]error: {row['error']}" if row["error"] else ("built-in" if row["builtin"] else "ok")
        table.add_row(row["name"], version, ", ".join(row["experiments"]) or "-",
                      ", ".join(row["exporters"]) or "-", ", ".join(row["hooks"]) or "-", status,
                      style=None)
    console = Console(markup=True, highlight=False)
    console.print(table)
    table = Table(title="experiments")
    for column in ("experiment", "plugin", "description", "config"):
        table.add_column(column)
    for name, row in experiments.items():
        table.add_row(name, registry.experiments[name].plugin, row["description"] or "-",
                      f"[red]error: {row['error']}" if row["error"] else "ok")
    console.print(table)
    return 0


def _experiment_row(entry) -> dict:
    """An experiment's description and whether its Config can be built from its defaults
    (every field has one, and it passes the field's own constraints)."""
    from .config import build_dataclass

    try:
        defaults = build_dataclass(entry.cls.Config, {}, "experiment")
        build_dataclass(entry.cls.Config, dataclasses.asdict(defaults), "experiment")
        error = None
    except TinkerflowError as exc:
        error = str(exc)
    return {"description": entry.cls.description or "", "error": error}


# -- tinkerflow new -----------------------------------------------------------------------

def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import new_plugin

    folder = new_plugin(args.name, Path(args.dir), taken=set(_registry().experiments))
    print(f"wrote the plugin package {folder}; next:\n"
          f"  pip install -e {folder}\n"
          f"  tinkerflow train experiment={args.name}\n"
          f"  python -m pytest {folder / 'tests'}")
    return 0


# -- tinkerflow train ---------------------------------------------------------------------

def _compose_overrides(args: Sequence[str]) -> list[str]:
    """The plain ``key=value`` overrides among Hydra's command line arguments."""
    out, skip = [], False
    for item in args:
        if skip:
            skip = False
            continue
        if item.startswith("-"):
            skip = item in HYDRA_VALUE_FLAGS
            continue
        out.append(item)
    return out


def _expand_sweep(overrides: list[str]) -> list[list[str]] | None:
    """Every job of a basic sweep (``a=1,2 b=x,y``), or None if it cannot be expanded here."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
        batches = BasicSweeper.split_arguments(parsed, None)
    except Exception:
        return None
    return [job for batch in batches for job in batch]


def _sweep_parts(overrides: list[str]) -> tuple[list[list[str]] | None, list[str]]:
    """The jobs of a basic sweep (None when a sweeper other than the basic one must expand
    it, e.g. Optuna's ``interval(...)``), and the overrides every job shares."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    jobs = _expand_sweep(overrides)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:
        return jobs, overrides
    return jobs, [o.input_line for o in parsed if not o.is_sweep_override()]


@dataclasses.dataclass
class Plan:
    """What preflight learnt from composing every job: where Hydra will write, the training
    backends asked for, and the launcher and sweeper that will run the jobs."""

    out_dir: Path | None = None
    backends: set[str] = dataclasses.field(default_factory=set)
    launcher: dict = dataclasses.field(default_factory=dict)
    sweeper: dict = dataclasses.field(default_factory=dict)
    objective: tuple[str, bool] | None = None

    @property
    def uses_ray(self) -> bool:
        return "ray" in str(self.launcher.get("_target_", "")).lower()


def preflight(registry, overrides: list[str], multirun: bool, resuming: bool = False) -> Plan:
    """Compose and validate the config of every job before Hydra creates any directory."""
    from omegaconf import OmegaConf

    from .config import check_group_choices, compose_config, experiment_choice, to_typed

    plan = Plan()
    jobs, shared = _sweep_parts(overrides) if multirun else ([overrides], overrides)
    for job in jobs or [shared]:
        name = experiment_choice(job)
        experiment_cls = registry.experiment(name)
        check_group_choices(job, name, experiment_cls)
        cfg = compose_config(job)
        typed = to_typed(cfg, name, experiment_cls)
        plan.backends.add(typed.trainer.backend)
        plan.objective = (experiment_cls.objective, experiment_cls.objective_higher_is_better)
        if typed.export.formats:
            from tinkerflow.exporters.pipeline import select_variants

            select_variants(registry, typed.export.formats, typed.export.variants)
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(cfg)
        run_dir = Path(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir)
        check_run_dir(run_dir, "hydra.sweep.dir" if multirun else "hydra.run.dir", resuming or multirun)
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create run directories under '{run_dir.parent}' ({exc.strerror}); "
                              "expected paths.runs to be a writable folder") from exc
        if plan.out_dir is None:
            plan.out_dir = run_dir
            plan.launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
            plan.sweeper = OmegaConf.to_container(cfg.hydra.sweeper, resolve=False)
    return plan


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
        raise ConfigError(f"{key}='{run_dir}' already holds a run; expected a new directory (runs are never overwritten)")
    others = sorted(p.name for p in run_dir.iterdir() if p.name not in STARTED_ONLY)
    if others:
        raise ConfigError(f"{key}='{run_dir}' holds other files ({', '.join(others[:3])}); expected a new or "
                          "empty directory for the run")


def launcher_overrides(plan: Plan, hydra_args: list[str]) -> list[str]:
    """Hydra overrides that make the chosen launcher and sweeper work with tinkerflow jobs."""
    extra = []
    given = {a.lstrip("+").split("=", 1)[0] for a in hydra_args}
    if plan.uses_ray:
        init = (plan.launcher.get("ray") or {}).get("init") or {}
        if init.get("address") and "hydra.launcher.ray.init.object_store_memory" not in given:
            extra.append("++hydra.launcher.ray.init.object_store_memory=null")  # Ray refuses it for a running cluster
        if plan.backends and "hydra.launcher.ray.init.runtime_env.env_vars.KERAS_BACKEND" not in given:
            # Ray keeps separate worker pools per environment, so a worker never mixes backends
            extra.append(f"++hydra.launcher.ray.init.runtime_env.env_vars.KERAS_BACKEND={next(iter(plan.backends))}")
    if "optuna" in str(plan.sweeper.get("_target_", "")).lower() and plan.objective:
        metric, higher = plan.objective
        wanted = "maximize" if higher else "minimize"
        direction = plan.sweeper.get("direction")
        if "hydra.sweeper.direction" in given and str(direction).lower() != wanted:
            raise ConfigError(f"hydra.sweeper.direction={direction}, but the experiment's objective {metric} is "
                              f"better when {'higher' if higher else 'lower'}; expected hydra.sweeper.direction={wanted}")
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
    from .runner import use_backend

    use_backend(next(iter(backends)))


def cmd_train(args: argparse.Namespace) -> int:
    import contextlib

    from .lock import run_lock

    hydra_args, resume = _pop_resume(list(args.overrides))
    multirun = "-m" in hydra_args or "--multirun" in hydra_args
    with contextlib.ExitStack() as held:
        if resume and not multirun:
            folder = _resume_folder(resume, hydra_args)
            if _report_completed(folder):  # resume is idempotent: a finished run is left as it is
                return 0
            held.enter_context(run_lock(folder))
            if _report_completed(folder):
                return 0
            hydra_args = _single_resume_args(folder)
        return _train(hydra_args, multirun, resume, held)


def _train(hydra_args: list[str], multirun: bool, resume: str | None, held) -> int:
    import hydra

    from . import runner
    from .config import CONFIG_MODULE, CONFIG_NAME, register_schemas
    from .lock import run_lock

    registry = _registry()
    register_schemas({name: entry.cls for name, entry in registry.experiments.items()})
    out_dir = None
    if not (HYDRA_INFO_FLAGS & set(hydra_args)):
        plan = preflight(registry, _compose_overrides(hydra_args), multirun, resuming=bool(resume))
        select_backend(set(plan.backends))
        out_dir = plan.out_dir
        if resume and multirun:
            out_dir = _resume_dir(resume, out_dir)
            hydra_args = [a for a in hydra_args if not a.startswith("hydra.sweep.dir=")]
            hydra_args.append("++hydra.job.env_set.TINKERFLOW_RESUME=1")
            print(f"resuming sweep {out_dir}: jobs completed with the same config are skipped", file=sys.stderr)
        # the folder's owner from here on: a second train, export or sample of it is refused,
        # and nothing in it changes before this process holds it
        out_dir.mkdir(parents=True, exist_ok=True)
        held.enter_context(run_lock(out_dir))
        check_run_dir(out_dir, "hydra.sweep.dir" if multirun else "hydra.run.dir", bool(resume) or multirun)
        if plan.uses_ray:
            out_dir = out_dir.resolve()  # Ray's workers start in another folder
        hydra_args += launcher_overrides(plan, hydra_args)
        # pin the folder Hydra will use, so that this process can read the results back even
        # when the jobs ran in other processes (joblib) or on other machines (ray)
        key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
        if not any(a.startswith(f"{key}=") for a in hydra_args):
            quoted = str(out_dir).replace("\\", "\\\\").replace("'", "\\'")
            hydra_args.append(f"{key}='{quoted}'")
    _quiet_tensorflow()
    runner.JOB_CONTEXT.update(registry=registry, multirun=multirun)

    main = hydra.main(config_path=f"pkg://{CONFIG_MODULE}", config_name=CONFIG_NAME, version_base="1.3")(runner.train_job)
    saved_argv = sys.argv
    sys.argv = ["tinkerflow train", *hydra_args]
    try:
        main()
    except TinkerflowError:
        raise
    except Exception as exc:  # Hydra's own checks of its command line, before any job ran
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        from .config import describe_config_error

        raise ConfigError(describe_config_error(exc)) from exc
    except runner.JobAborted as aborted:
        if isinstance(aborted.error, TinkerflowError) or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise aborted.error from None
        raise RunFailed(
            f"run failed: {type(aborted.error).__name__}: {aborted.error} "
            f"(traceback in {Path(aborted.run_dir) / 'run.json'}; --traceback shows it here)",
        ) from aborted.error
    finally:
        sys.argv = saved_argv
    if out_dir is None:
        return 0
    return _summarise(Path(out_dir), multirun)


def _pop_resume(hydra_args: list[str]) -> tuple[list[str], str | None]:
    """Take ``--resume SWEEP`` (or ``--resume=SWEEP``) out of the arguments meant for Hydra."""
    rest, resume = [], None
    items = iter(hydra_args)
    for item in items:
        if item == "--resume":
            resume = next(items, None)
            if resume is None:
                raise ConfigError("--resume needs a run or sweep directory (or 'last'); expected --resume runs/<experiment>/<stamp>")
        elif item.startswith("--resume="):
            resume = item.split("=", 1)[1]
        else:
            rest.append(item)
    return rest, resume


def _resume_folder(resume: str, hydra_args: list[str]) -> Path:
    """The run folder ``--resume`` names (``last``: the newest run under ``runs/``)."""
    if hydra_args:
        raise ConfigError(f"--resume of a single run takes no overrides (got {' '.join(hydra_args)}); "
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
    from .rundir import Run

    Run.open(folder)
    return folder


def _report_completed(folder: Path) -> bool:
    """For an idempotent ``--resume``: say so, with its metrics, when ``folder`` holds a
    completed run (a pre-empted job started again with the same command exits 0)."""
    from .rundir import Run

    info = Run.open(folder).read_info()
    if info.get("status") != "completed":
        return False
    print(f"'{folder}' holds a completed run; nothing to resume", file=sys.stderr)
    for key, value in (info.get("metrics") or {}).items():
        print(f"  {key} = {value:.6g}")
    return True


def _single_resume_args(folder: Path) -> list[str]:
    """Hydra arguments that continue the run in ``folder`` with the overrides it was started
    with — only those of tinkerflow's own config tree (:func:`replayable_overrides`)."""
    from .config import replayable_overrides
    from .rundir import Run

    run = Run.open(folder)
    overrides = replayable_overrides(run.read_info().get("overrides"), run.info_path)
    quoted = str(folder).replace("\\", "\\\\").replace("'", "\\'")
    print(f"resuming the run in {folder}", file=sys.stderr)
    return [*overrides, f"hydra.run.dir='{quoted}'", "++hydra.job.env_set.TINKERFLOW_RESUME=1"]


def _resume_dir(resume: str, new_dir: Path) -> Path:
    """The sweep folder ``--resume`` names; ``last`` is the newest sweep of the experiment."""
    if resume == "last":
        earlier = sorted(p for p in new_dir.parent.glob("*") if (p / "multirun.yaml").is_file())
        if not earlier:
            raise ConfigError(f"--resume last: no earlier sweep under '{new_dir.parent}'; expected one made by 'tinkerflow train -m'")
        return earlier[-1]
    folder = Path(resume)
    if not (folder / "multirun.yaml").is_file():
        raise ConfigError(f"--resume '{resume}' is not a sweep folder (no multirun.yaml); "
                          "expected runs/<experiment>/multirun/<stamp> or 'last'")
    return folder


def _summarise(out_dir: Path, multirun: bool) -> int:
    """Exit code and a summary from what the jobs wrote (they may have run in other processes)."""
    from .records import read_export_record
    from .report import collect

    rows = collect(out_dir)[0] if multirun else []
    runs = [Path(r["path"]) for r in rows] if multirun else [out_dir]
    code = 0
    export_failures = []
    for run_dir in runs:
        try:
            formats = read_export_record(run_dir / "export.json").get("formats", {})
        except TinkerflowError:
            continue
        if any(v.get("status") not in ("passed", "rejected") for entry in formats.values()
               for v in entry.get("variants", {}).values()):
            export_failures.append(str(run_dir))
    if multirun:
        failed = [r for r in rows if r["status"] != "completed"]
        print(f"multirun: {len(rows) - len(failed)} completed, {len(failed)} failed ({out_dir})", file=sys.stderr)
        for r in failed:
            print(f"  failed: {r['path']}: {r['error'] or r['status']}", file=sys.stderr)
        code = 1 if failed else 0
    if export_failures:
        print(f"tinkerflow: training completed, but the export failed its checks for: {', '.join(export_failures)} "
              "(see export.json there)", file=sys.stderr)
        code = 1
    return code


# -- tinkerflow sample --------------------------------------------------------------------

def parse_options(options_cls: type, items: Sequence[str]) -> Any:
    """Turn ``--name value`` flags into an instance of an experiment's SampleOptions."""
    from .config import check_value

    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    hints = typing.get_type_hints(options_cls)
    values: dict[str, Any] = {}
    items = list(items)
    while items:
        flag = items.pop(0)
        if not flag.startswith("--"):
            raise ConfigError(f"unexpected argument '{flag}'; expected --option value")
        key = flag[2:].replace("-", "_")
        if "=" in key:
            key, raw = key.split("=", 1)
        elif items:
            raw = items.pop(0)
        else:
            raise ConfigError(f"option '{flag}' needs a value")
        if key not in fields:
            known = ", ".join("--" + n.replace("_", "-") for n in fields) or "none"
            raise ConfigError(f"unknown option '--{key.replace('_', '-')}'; expected one of: {known}")
        values[key] = check_value(fields[key], hints[key], _parse_scalar(raw), f"--{key.replace('_', '-')}")
    return options_cls(**values)


def _parse_scalar(raw: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def sample_options_help(options_cls: type, title: str) -> str:
    """The ``--option value`` flags of an experiment's SampleOptions, as help text."""
    hints = typing.get_type_hints(options_cls)
    lines = [f"{title}:"]
    for f in dataclasses.fields(options_cls):
        kinds = [k for k in (typing.get_args(hints[f.name]) or (hints[f.name],)) if k is not type(None)]
        flag = f"--{f.name.replace('_', '-')} {getattr(kinds[0], '__name__', 'VALUE').upper()}"
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        lines.append(f"  {flag:<24}{f.metadata.get('help', '')} (default: {default!r})")
    return "\n".join(lines)


def _sample_help(parser: argparse.ArgumentParser, rest: list[str]) -> str:
    """``tinkerflow sample [RUN] --help``: the command's flags, then the experiment's own
    options (those of every installed experiment when no readable run is named)."""
    from .runner import open_run

    registry = _registry()
    named = [a for a in rest if not a.startswith("-")]
    try:
        experiments = [type(open_run(named[0], registry)[1])] if named else []
    except TinkerflowError:
        experiments = []
    experiments = experiments or [e.cls for _, e in sorted(registry.experiments.items())]
    parts = [parser.format_help().rstrip()]
    parts += [sample_options_help(cls.SampleOptions, f"options of the {cls.name} experiment") for cls in experiments]
    return "\n\n".join(parts)


def cmd_sample(args: argparse.Namespace, extra: list[str]) -> int:
    from .lock import run_lock

    with run_lock(args.run):
        return _sample(args, extra)


def _sample(args: argparse.Namespace, extra: list[str]) -> int:
    from .runner import open_run

    run, experiment = open_run(args.run, _registry())
    options = parse_options(experiment.SampleOptions, extra)
    _quiet_tensorflow()
    model = run.load_model(experiment.custom_objects())
    out = Path(args.out) if args.out else run.samples_dir
    summary = experiment.sample(model, out, options)
    from rich.console import Console
    from rich.pretty import Pretty

    Console().print(f"[bold]samples of {run.path}[/] written to {out}", soft_wrap=True)
    Console().print(Pretty(summary, max_length=8))
    return 0


# -- tinkerflow export ---------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from .runner import open_run

    registry = _registry()
    open_run(args.run, registry)  # a bad run directory is reported before TensorFlow loads
    _quiet_tensorflow()
    from tinkerflow.exporters.pipeline import export_run

    report = export_run(args.run, registry, args.format, args.quantize, mediapipe=args.mediapipe)
    print_export_report(report)
    return 0 if report.ok and not (args.strict and report.rejected) else 1


def print_export_report(report) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"export of {report.run_dir}")
    for column in ("format", "variant", "status", "size", "max abs diff", "metric: keras -> exported"):
        table.add_column(column)
    for fmt, variants in report.results.items():
        for variant, rec in variants.items():
            size = sum(f["bytes"] for f in rec.get("files", []))
            parity = rec.get("parity", {}).get("max_abs_diff")
            metric = rec.get("metric")
            table.add_row(
                fmt, variant,
                {"passed": "[green]passed", "rejected": "[yellow]rejected"}.get(rec["status"], "[red]failed"),
                f"{size:,} B" if size else "-",
                f"{parity:.3g}" if parity is not None else "-",
                f"{metric['name']}: {metric['keras']:.4g} -> {metric['exported']:.4g}" if metric else "-",
            )
    Console(stderr=False).print(table)
    if report.bundle is not None:
        print(f"deploy bundle for apps (files, golden.json, README.md): {report.bundle}")
    for fmt, variant, reason in report.rejected:
        print(f"rejected: {fmt}/{variant}: {reason} (not shipped; --strict makes this an error)")
    for fmt, variant, error in report.failed:
        print(f"tinkerflow: export {fmt}/{variant} failed: {error}", file=sys.stderr)


def cmd_bench(args: argparse.Namespace) -> int:
    from .lock import run_lock

    with run_lock(args.run):
        return _bench(args)


def _bench(args: argparse.Namespace) -> int:
    from .runner import open_run

    registry = _registry()
    run, experiment = open_run(args.run, registry)
    _quiet_tensorflow()
    from tinkerflow.exporters import bench

    from .tf_quiet import native_output

    model = experiment.export_model(run.load_model(experiment.custom_objects()))
    with native_output(logging.getLogger("tinkerflow.bench"), "the timed runtimes"):
        record = bench.bench_run(run, experiment, model, batch=args.batch, min_seconds=args.seconds)
        if args.browser:
            from tinkerflow.web_export.browser_bench import browser_bench

            record["browser"] = browser_bench(run, experiment, model, registry, min_seconds=args.seconds)
    path = bench.save(run, record)
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"inference speed of {run.path} (batch {args.batch})")
    for column in ("runtime", "variant", "1 sample", f"batch of {args.batch}", "samples/s"):
        table.add_column(column, justify="right" if column != "runtime" else "left")
    for row in record["rows"]:
        table.add_row(row["name"], row["variant"], _duration(row["single_s"]),
                      _duration(row["batch_s"]) if row.get("batch_s") else "-",
                      f"{row['throughput_per_s']:,.0f}" if row.get("throughput_per_s") else "-")
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: no wrapped cells
        console = Console(width=max(console.width, 160))
    console.print(table)
    for name, value in record["ratios"].items():
        console.print(f"{name.replace('_', ' ')}: {value:,.2f}x")
    if "browser" in record:
        _print_browser(console, run, record["browser"])
    console.print(f"saved {path}", soft_wrap=True)
    return 0


def _print_browser(console, run, browser: dict) -> None:
    from rich.table import Table

    labels = {"litert": "native LiteRT", "litertjs": "LiteRT.js (Chromium)", "tfjs": "TensorFlow.js (Chromium)",
              "mediapipe": "MediaPipe Tasks (Chromium)"}
    table = Table(title=f"one call at the inference batch ({browser['batch']}), warm median")
    for column in ("runtime", "variant", "threads", "time"):
        table.add_column(column, justify="left" if column in ("runtime", "variant") else "right")
    for row in browser["rows"]:
        variant = row["variant"] + ("" if row.get("fixed_shape", True) else " (any batch)")
        time_text = _duration(row["warm_ms"] / 1000) if "warm_ms" in row else f"failed: {row.get('error', '')}"
        table.add_row(labels.get(row["runtime"], row["runtime"]) + ("" if row["runtime"] != "tfjs" else ", wasm"),
                      variant, str(row.get("threads", 1)), time_text)
    console.print(table)
    first = browser["first_visit"]
    console.print(f"first visit of the page ({first['runtime']}): {first['requests']} requests, "
                  f"{first['bytes'] / 1e6:,.2f} MB ({first['gzip_bytes'] / 1e6:,.2f} MB gzip), first result after "
                  f"{first['first_result_ms']:,.0f} ms")
    if browser.get("phone"):
        phone = Table(title=f"on the phone profile: 390×844 touch screen, CPU slowed {browser['phone'][0]['cpu_slowdown']:g}×")
        for column in ("runtime", "variant", "download (gzip)", "first result", "return visit", "one prediction"):
            phone.add_column(column, justify="left" if column in ("runtime", "variant") else "right")
        for row in browser["phone"]:
            if "error" in row:
                phone.add_row(labels.get(row["runtime"], row["runtime"]), row["variant"], f"failed: {row['error']}", "", "", "")
                continue
            phone.add_row(labels.get(row["runtime"], row["runtime"]), row["variant"],
                          f"{row['bytes'] / 1e6:,.2f} MB ({row['gzip_bytes'] / 1e6:,.2f})",
                          _duration(row["first_result_ms"] / 1000), _duration(row["return_first_result_ms"] / 1000),
                          _duration(row["warm_ms"] / 1000))
        console.print(phone)
    for name, value in browser["ratios"].items():
        console.print(f"{name.replace('_', ' ')}: {value:,.2f}x")


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def cmd_web(args: argparse.Namespace) -> int:
    from tinkerflow.web_export import build_site

    registry = _registry()
    report = build_site(args.runs, args.out, registry, force=args.force)
    for warning in report.warnings:
        print(f"tinkerflow: warning: {warning}", file=sys.stderr)
    print(f"built {len(report.pages)} model page(s) into {report.out}")
    print(f"preview: tinkerflow serve {report.out}   (then open http://127.0.0.1:8000/)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tinkerflow.web_export.serve import make_server

    server = make_server(Path(args.site), args.host, args.port, isolated=not args.no_isolation)
    host, port = server.server_address[:2]
    print(f"serving {args.site} on http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .report import compare, write_report

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))
    metrics = [m for m in (args.metrics or "").split(",") if m]
    if len(args.sweep) > 1:
        labels = [label for label in (args.labels or "").split(",") if label]
        result = compare([Path(s) for s in args.sweep], Path(args.out), _registry(), metrics, labels)
        title, header, body, where = " vs ".join(result["labels"]), result["header"], result["body"], args.out
    else:
        if metrics or args.labels or args.out != "comparison":
            raise ConfigError("--metrics, --labels and --out belong to a comparison; expected two or more sweep "
                              "directories")
        result = write_report(Path(args.sweep[0]), _registry())
        title, where = f"sweep {args.sweep[0]}", args.sweep[0]
        header, body = result["summary"] or (result["header"], result["body"])
    table = Table(title=title)
    for column in header:
        table.add_column(column.split(".")[-1] if "." in column and ":" not in column else column.replace("_", " "))
    for row in body:
        table.add_row(*row, style="red" if "failed" in row else None)
    console.print(table)
    if len(args.sweep) > 1:
        for key, values in result["differences"]:
            console.print(f"{key}: " + " | ".join(f"{label} {value}" for label, value in zip(result["labels"], values)),
                          soft_wrap=True)
    for warning in result["warnings"]:
        print(f"tinkerflow: warning: {warning}", file=sys.stderr)
    console.print(f"wrote {', '.join(result['files'])} in {where}", soft_wrap=True)
    return 0


def cmd_install_tfjs(args: argparse.Namespace) -> int:
    from tinkerflow.exporters.node import install_tfjs

    print(f"installed the pinned @tensorflow/tfjs into {install_tfjs(args.target)}")
    return 0


# -- entry point ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinkerflow",
        description="Plugin-based experiments: train with Hydra configs, export to the browser and phones.",
    )
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list installed plugins, their experiments and hooks")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("new", help="write a new experiment plugin package to start from (config, experiment, "
                                   "widget, tests)")
    p.add_argument("name", help="the experiment's name: lowercase letters, digits and underscores, e.g. noisy_xor")
    p.add_argument("--dir", default=".", help="where to create the tinkerflow-NAME folder (default: here)")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("train", help="train an experiment; arguments are Hydra overrides (-m for a sweep)",
                       add_help=False)
    p.set_defaults(overrides=[])
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="the experiment's own look at a trained run; extra --options per experiment",
                       add_help=False)
    p.add_argument("-h", "--help", action="store_true", help="show this help and the run's experiment's options")
    parser.sample_parser = p
    p.add_argument("run", help="a run directory, e.g. runs/addition/<timestamp>")
    p.add_argument("--out", help="write samples here instead of <run>/samples")
    p.set_defaults(func=cmd_sample, takes_extra=True)

    p = sub.add_parser("export", help="export a trained run (tfjs, tflite), checked in the real runtimes")
    p.add_argument("run", help="a run directory, e.g. runs/addition/<timestamp>")
    p.add_argument("--format", nargs="+", help="formats to export (default: all registered)")
    p.add_argument("--quantize", nargs="+", metavar="VARIANT",
                   help="only these variants, e.g. float16 int8 int8_dynamic uint8_io (default: every variant)")
    p.add_argument("--mediapipe", action="store_true",
                   help="an image classifier's .tflite files must pass MediaPipe Tasks' ImageClassifier "
                        "(needs tinkerflow[mobile]; without this flag the check runs where mediapipe is installed)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a quantized variant is rejected for accuracy (by default a rejection is "
                        "reported and only a float variant that fails is an error)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="inference latency and throughput: Keras against the run's exports")
    p.add_argument("run", help="a run directory with exports (tinkerflow export RUN)")
    p.add_argument("--batch", type=int, default=256, help="batch size for throughput (default 256)")
    p.add_argument("--seconds", type=float, default=0.5, help="time spent per measurement (default 0.5)")
    p.add_argument("--browser", action="store_true",
                   help="also the run's page in headless Chromium: LiteRT.js (1 and 2 threads) and tfjs against "
                        "native LiteRT, and what a first visit downloads")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("web", help="build a static site that runs the runs' exports in the browser (LiteRT.js, tfjs)")
    p.add_argument("runs", nargs="+", help="run directories with tflite or tfjs exports")
    p.add_argument("--out", default="site", help="output folder (default: site)")
    p.add_argument("--force", action="store_true", help="replace an earlier site in --out")
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("serve", help="preview a built site over HTTP")
    p.add_argument("site", nargs="?", default="site", help="the site folder (default: site)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--no-isolation", action="store_true",
                   help="leave out the COOP/COEP headers (as most static hosts do): LiteRT.js then runs one thread")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("report", help="table and plots of a multirun sweep (also while it runs), or of several "
                                      "sweeps side by side")
    p.add_argument("sweep", nargs="+", help="a sweep directory, e.g. runs/addition/multirun/<timestamp>; two or more: "
                                            "a comparison, a column per sweep")
    p.add_argument("--out", default="comparison", help="folder of a comparison's report (default: comparison)")
    p.add_argument("--metrics", help="a comparison's metrics, comma-separated (default: every test_ metric)")
    p.add_argument("--labels", help="names of the compared sweeps, comma-separated (default: their +sweep preset)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("install-tfjs", help="install the pinned npm @tensorflow/tfjs used for checks and pages")
    p.add_argument("--target", help="folder to install into (default: next to the package, or the user cache)")
    p.set_defaults(func=cmd_install_tfjs)
    _plugin_commands(sub)
    return parser


def _plugin_commands(sub) -> None:
    """Commands that plugins add through the ``register_commands`` hook (a disabled plugin is
    reported by the command that uses the registry, not here)."""
    from .plugins import make_plugin_manager

    registry = make_plugin_manager()

    def add_command(name: str, help: str, configure, run_command) -> None:
        if name in sub.choices:
            raise TinkerflowError(f"a plugin adds the command '{name}', which exists already; expected a new name")
        parser = sub.add_parser(name, help=help)
        configure(parser)
        parser.set_defaults(func=lambda args: run_command(args, registry))

    registry.hook.register_commands(add_command=add_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    passthrough: list[str] = []
    if "train" in argv and all(a.startswith("-") for a in argv[: argv.index("train")]):
        # everything after `train` belongs to Hydra, including flags such as -m and --cfg
        cut = argv.index("train") + 1
        argv, passthrough = argv[:cut], argv[cut:]
    if argv[:1] == ["sample"] and {"-h", "--help"} & set(argv):
        print(_sample_help(parser.sample_parser, argv[1:]))
        return 0
    args, extra = parser.parse_known_args(argv)
    if args.command == "train":
        args.overrides = passthrough
    if extra and not getattr(args, "takes_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    show_traceback = args.traceback or os.environ.get("HYDRA_FULL_ERROR") == "1"
    if args.command != "train" and "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"  # exporters and runtimes need TensorFlow
    try:
        return args.func(args, extra) if getattr(args, "takes_extra", False) else args.func(args)
    except TinkerflowError as exc:
        if show_traceback:
            raise
        print(f"tinkerflow: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the file system said no: permissions, a full disk, a path that vanished
        if show_traceback:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"tinkerflow: error: {exc.strerror or exc}{where}; expected a readable, writable path with free space "
              "(--traceback shows where)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tinkerflow: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
