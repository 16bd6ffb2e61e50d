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
import signal
import sys
import threading
import typing
from pathlib import Path
from typing import Any, Sequence

from .config import number_flag
from .errors import ConfigError, PluginError, Terminated, TinkerflowError


def _quiet_tensorflow() -> None:
    from .tf_quiet import import_keras

    import_keras()


_BUILT: dict = {}  # the registry of this command line, built once by main()


def _built_registry():
    if "registry" not in _BUILT:
        from .plugins import make_plugin_manager

        _BUILT["registry"] = make_plugin_manager()
    return _BUILT["registry"]


def _registry():
    """The plugin registry for a command that uses it: built once per command line, and a
    disabled plugin is named (once) by the commands that use the registry."""
    registry = _built_registry()
    if not _BUILT.get("warned"):
        _BUILT["warned"] = True
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
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="tinkerflow plugins")
    for column in ("plugin", "version", "experiments", "exporters", "trackers", "hooks", "status"):
        table.add_column(column)
    for row in rows:
        version = f"{row['distribution'] or '-'} {row['version'] or ''}".strip()
        status = f"[red]error: {escape(row['error'])}" if row["error"] else ("built-in" if row["builtin"] else "ok")
        table.add_row(row["name"], version, ", ".join(row["experiments"]) or "-",
                      ", ".join(row["exporters"]) or "-", ", ".join(row["trackers"]) or "-",
                      ", ".join(row["hooks"]) or "-", status, style=None)
    console = _console()
    console.print(table)
    table = Table(title="experiments")
    for column in ("experiment", "plugin", "description", "config"):
        table.add_column(column)
    for name, row in experiments.items():
        table.add_row(name, registry.experiments[name].plugin, escape(row["description"]) or "-",
                      f"[red]error: {escape(row['error'])}" if row["error"] else "ok")
    console.print(table)
    return 0


def _console():
    """A rich console; writing to a file or a pipe, one as wide as its longest line, so that
    no cell (an error message above all) is cut or wrapped for a reader that greps."""
    from rich.console import Console

    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=100_000)


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

def cmd_train(args: argparse.Namespace) -> int:
    from .orchestration import train

    outcome = train(list(args.overrides), _registry())
    if outcome.dry_run is not None:
        print_dry_run(outcome.dry_run, outcome.multirun)
        return 0
    for key, value in outcome.metrics.items():  # a completed run that --resume left as it was
        print(f"  {key} = {value:.6g}")
    if outcome.folder is not None and not outcome.multirun and (outcome.folder / "export.json").is_file():
        from tinkerflow.exporters.pipeline import ExportReport

        print_export_report(ExportReport.read(outcome.folder))
    if outcome.export_failures:
        print(f"tinkerflow: training completed, but the export failed its checks for: "
              f"{', '.join(outcome.export_failures)} (see export.json there)", file=sys.stderr)
    return outcome.code


def print_dry_run(plan, multirun: bool) -> None:
    """``tinkerflow train --dry-run``: the jobs a command would run, each checked, and where."""
    where = f"into {plan.out_dir} (nothing was written)"
    if plan.jobs is None:
        searched = "; ".join(f"{key}: {value}" for key, value in plan.search.items()) or "its own parameters"
        trials = plan.sweeper.get("n_trials", "its")
        print(f"the sweeper chooses {trials} trials {where}, over {searched}")
        return
    jobs = plan.jobs
    if not multirun:
        print(f"1 run {where}: {' '.join(jobs[0]) or '(the defaults)'}")
        return
    varying = [i for i in range(len(jobs[0])) if len({job[i] for job in jobs}) > 1] if jobs else []
    shared = [item for i, item in enumerate(jobs[0]) if i not in varying] if jobs else []
    every = f"; every job: {' '.join(shared)}" if shared else ""
    print(f"{len(jobs)} job{'s' if len(jobs) != 1 else ''} {where}{every}")
    for number, job in enumerate(jobs):
        print(f"  {number:>3}  {' '.join(job[i] for i in varying) or '(the shared overrides only)'}")


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
    from .runs import open_run

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
    from .runs import load_trained_model, open_run

    run, experiment = open_run(args.run, _registry())
    options = parse_options(experiment.SampleOptions, extra)
    _quiet_tensorflow()
    model = load_trained_model(run, experiment)
    out = Path(args.out) if args.out else run.samples_dir
    summary = experiment.sample(model, out, options)
    from rich.console import Console
    from rich.pretty import Pretty

    Console().print(f"[bold]samples of {run.path}[/] written to {out}", soft_wrap=True)
    Console().print(Pretty(summary, max_length=8))
    return 0


# -- tinkerflow export ---------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from tinkerflow.exporters.pipeline import check_request, export_run

    from .lock import run_lock

    from .rundir import tracking_notes, tracking_problems

    registry = _registry()
    with run_lock(args.run):  # a run still training is named as such, not as "not completed"
        check_request(args.run, registry, args.format, args.quantize, args.mediapipe)  # before TensorFlow loads
        _quiet_tensorflow()
        earlier = tracking_problems(Path(args.run))
        report = export_run(args.run, registry, args.format, args.quantize, mediapipe=args.mediapipe)
    print_export_report(report)
    for line in tracking_notes([Path(args.run)], since=earlier):
        print(line, file=sys.stderr)
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
    from .runs import load_trained_model, open_run

    registry = _registry()
    run, experiment = open_run(args.run, registry)
    from tinkerflow.exporters import bench

    bench.passed_exports(run)  # a broken export record is reported before TensorFlow loads
    _quiet_tensorflow()
    from .tf_quiet import native_output

    model = experiment.export_model(load_trained_model(run, experiment))
    with native_output(logging.getLogger("tinkerflow.bench"), "the timed runtimes"):
        record = bench.bench_run(run, experiment, model, batch=args.batch, min_seconds=args.seconds)
        if args.browser:
            from tinkerflow.web_export.browser_bench import browser_bench

            record["browser"] = browser_bench(run, experiment, model, registry, min_seconds=args.seconds)
    path = bench.save(run, record)
    from rich.table import Table

    table = Table(title=f"inference speed of {run.path} (batch {args.batch})")
    for column in ("runtime", "variant", "1 sample", f"batch of {args.batch}", "samples/s"):
        table.add_column(column, justify="right" if column != "runtime" else "left")
    for row in record["rows"]:
        table.add_row(row["name"], row["variant"], _duration(row["single_s"]),
                      _duration(row["batch_s"]) if row.get("batch_s") else "-",
                      f"{row['throughput_per_s']:,.0f}" if row.get("throughput_per_s") else "-")
    console = _console()
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
        where = {"tfjs": ", wasm"}.get(row["runtime"], "")
        if row.get("accelerator") == "webgpu":
            backend = row.get("backend", "webgpu")
            where = f", {backend}" + (" (emulated)" if "swiftshader" in backend else "")
        table.add_row(labels.get(row["runtime"], row["runtime"]) + where, variant,
                      "-" if row.get("accelerator") == "webgpu" else str(row.get("threads", 1)), time_text)
    console.print(table)
    first = browser["first_visit"]
    console.print(f"first visit of the page ({first['runtime']}): {first['requests']} requests, "
                  f"{first['bytes'] / 1e6:,.2f} MB ({first['gzip_bytes'] / 1e6:,.2f} MB gzip), first result after "
                  f"{first['first_result_ms']:,.0f} ms")
    if browser.get("phone"):
        phone = Table(title="on the phone profile: 390×844 touch screen, CPU slowed "
                            f"{browser['phone'][0]['cpu_slowdown']:g}×")
        for column in ("runtime", "variant", "download (gzip)", "first result", "return visit", "one prediction"):
            phone.add_column(column, justify="left" if column in ("runtime", "variant") else "right")
        for row in browser["phone"]:
            if "error" in row:
                phone.add_row(labels.get(row["runtime"], row["runtime"]), row["variant"], f"failed: {row['error']}",
                              "", "", "")
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
    out = args.embed or args.out
    report = build_site(args.runs, out, registry, force=args.force, tracking_links=args.tracking_links,
                        embed=bool(args.embed))
    for warning in report.warnings:
        print(f"tinkerflow: warning: {warning}", file=sys.stderr)
    if args.embed:
        entry = report.pages[0]
        print(f"built the embed of {entry['experiment']} · {entry['run']} into {report.out}; on the page of your site, "
              f"with ADDRESS where {report.out} is served:")
        print(entry["config"]["embed"]["snippet"].replace("{src}", f"ADDRESS/{entry['embed']}"))
    else:
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
    from rich.table import Table

    from .report import compare, write_report

    console = _console()
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
    from tinkerflow.exporters import tfjs_converter
    from .npm import install_tfjs

    if not args.npm_only:
        print(f"the TF.js converter: tensorflowjs {tfjs_converter.install()} (installed without its requirements)")
    print(f"installed the pinned @tensorflow/tfjs into {install_tfjs(args.target)}")
    return 0


# -- entry point ----------------------------------------------------------------------------

class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors (a bad flag, a value out of range) as one line and exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} -h)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tinkerflow",
        description="Plugin-based experiments: train with Hydra configs, export to the browser and phones.",
    )
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

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
    p.add_argument("--batch", type=number_flag(int, min=1, max=65536), default=256,
                   help="batch size for throughput, 1 to 65536 (default 256)")
    p.add_argument("--seconds", type=number_flag(float, gt=0, max=3600), default=0.5,
                   help="time spent per measurement, up to 3600 (default 0.5)")
    p.add_argument("--browser", action="store_true",
                   help="also the run's page in headless Chromium: LiteRT.js (1 and 2 threads) and tfjs against "
                        "native LiteRT, and what a first visit downloads")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("web", help="build a static site that runs the runs' exports in the browser (LiteRT.js, tfjs)")
    p.add_argument("runs", nargs="+", help="run directories with tflite or tfjs exports")
    p.add_argument("--out", default="site", help="output folder (default: site)")
    p.add_argument("--force", action="store_true", help="replace an earlier site in --out")
    p.add_argument("--tracking-links", action="store_true",
                   help="link each model card to its run on the tracking server it was logged to "
                        "(tracking.uri=http...)")
    p.add_argument("--embed", metavar="DIR",
                   help="instead of a site: one run's embed (its page, its embed view, the one runtime it runs) "
                        "into DIR, for a site that hosts it itself; prints the snippet")
    p.set_defaults(func=cmd_web)

    p = sub.add_parser("serve", help="preview a built site over HTTP")
    p.add_argument("site", nargs="?", default="site", help="the site folder (default: site)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=number_flag(int, min=0, max=65535), default=8000, help="port (default: 8000)")
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

    p = sub.add_parser("install-tfjs", help="install the pinned npm packages used for checks and pages "
                                            "(@tensorflow/tfjs, "
                                            "@litertjs/core) and the TF.js converter (tensorflowjs, without its pins)")
    p.add_argument("--target", help="folder to install the npm packages into (default: next to the package, or the "
                                    "user cache)")
    p.add_argument("--npm-only", action="store_true", help="leave the Python converter alone")
    p.set_defaults(func=cmd_install_tfjs)
    _plugin_commands(sub)
    return parser


def _plugin_commands(sub) -> None:
    """Commands that plugins add through the ``register_commands`` hook. A plugin whose hook
    raises, whose ``configure`` raises, or that adds a command that exists already is
    disabled (and named by the commands that use the registry); the others keep working."""
    from .plugins import disable_plugin

    registry = _built_registry()
    manager = registry.manager
    for plugin_name, _ in list(manager.list_name_plugin()):
        others = [p for n, p in manager.list_name_plugin() if n != plugin_name]
        caller = manager.subset_hook_caller("register_commands", remove_plugins=others)
        wanted: list[tuple] = []

        def add_command(name: str, help: str, configure, run_command, _wanted=wanted) -> None:
            _wanted.append((name, help, configure, run_command))

        try:
            caller(add_command=add_command)
            for name, _, configure, _ in wanted:
                if name in sub.choices or [n for n, *_ in wanted].count(name) > 1:
                    raise PluginError(f"plugin '{plugin_name}' adds the command '{name}', which exists already; "
                                      "expected a new name")
                configure(OneLineParser(prog=f"tinkerflow {name}"))
        except Exception as exc:  # a broken plugin must not take the built-in commands down
            message = str(exc) if isinstance(exc, PluginError) else (
                f"register_commands raised {type(exc).__name__}: {exc}")
            disable_plugin(registry, plugin_name, message)
            continue
        for name, help, configure, run_command in wanted:
            parser = sub.add_parser(name, help=help)
            configure(parser)
            parser.set_defaults(func=lambda args, _run=run_command: _run(args, registry))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _BUILT.clear()
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
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        return args.func(args, extra) if getattr(args, "takes_extra", False) else args.func(args)
    except Terminated:
        print("tinkerflow: terminated (SIGTERM); what was saved is kept", file=sys.stderr)
        return 143
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
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame) -> None:
    raise Terminated()


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
