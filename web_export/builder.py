"""Build a static site from exported runs."""

from __future__ import annotations

import inspect
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.lock import run_lock
from tinkerflow.core.records import read_bench_record, read_export_record
from tinkerflow.core.rundir import copy_regular, regular_files, replace_folder

from .curves import training_charts
from .html import esc, json_for_script, page, safe_name

log = logging.getLogger("tinkerflow.web")
ASSETS = Path(__file__).parent / "assets"
MARKER = ".tinkerflow-site"


@dataclass
class SiteReport:
    out: Path
    pages: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def build_site(runs: list[str | Path], out: str | Path, registry, force: bool = False) -> SiteReport:
    """Build the site for ``runs`` into ``out``; see the package docstring.

    ``out`` must not exist, be empty, or (with ``force``) hold a site built earlier; the new
    site is assembled beside it and renamed into place, so a failed build changes nothing.
    """
    from tinkerflow.core.runner import open_run
    from tinkerflow.exporters.node import node_modules

    out = Path(out)
    _check_target(out, force)
    modules = node_modules()
    tfjs_dist = modules / "@tensorflow" / "tfjs" / "dist" / "tf.es2017.min.js"
    wasm_dist = modules / "@tensorflow" / "tfjs-backend-wasm" / "dist"
    if not (wasm_dist / "tf-backend-wasm.es2017.min.js").is_file():
        raise TinkerflowError(f"the pinned @tensorflow/tfjs-backend-wasm is missing from {modules}; "
                              "run 'tinkerflow install-tfjs' (or make setup)")
    report = SiteReport(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-building-", dir=out.parent))
    try:
        (staging / "assets").mkdir()
        for asset in ASSETS.iterdir():
            shutil.copy(asset, staging / "assets" / asset.name)
        shutil.copy(tfjs_dist, staging / "assets" / "tf.min.js")
        shutil.copy(wasm_dist / "tf-backend-wasm.es2017.min.js", staging / "assets" / "tf-backend-wasm.min.js")
        (staging / "assets" / "wasm").mkdir()
        for binary in ("tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"):  # threaded needs cross-origin isolation
            shutil.copy(wasm_dist / binary, staging / "assets" / "wasm" / binary)
        used: set[str] = set()
        for run_path in runs:
            with run_lock(run_path, shared=True):
                run, experiment = open_run(run_path, registry)
                entry = _model_page(run, experiment, staging, used, report)
            if entry:
                report.pages.append(entry)
        if not report.pages:
            raise TinkerflowError("none of the runs has a tfjs export that passed its checks; "
                                  "expected at least one (run 'tinkerflow export RUN --format tfjs')")
        (staging / "index.html").write_text(_index(report.pages))
        # what a widget may use from the other pages of the site (the captioner plays with a painter)
        (staging / "site.json").write_text(json.dumps({"pages": [
            {"slug": p["slug"], "experiment": p["experiment"], "run": p["run"],
             "default_variant": safe_name(p["variants"][0]["name"])} for p in report.pages]}))
        (staging / MARKER).write_text("built by tinkerflow web\n")
        replace_folder(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _check_target(out: Path, force: bool) -> None:
    if out.is_symlink():
        raise TinkerflowError(f"'{out}' is a symbolic link; expected a folder path for the site (the link's "
                              "target is not replaced)")
    if out.resolve() in (Path.cwd(), *Path.cwd().parents):
        raise TinkerflowError(f"--out '{out}' is the current folder or one holding it; expected a folder of the "
                              "site's own, e.g. --out site")
    if out.is_file():
        raise TinkerflowError(f"'{out}' is a file; expected a folder for the site")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise TinkerflowError(f"'{out}' already exists and is not empty; pass --force to replace the site there")
        if not (out / MARKER).is_file():
            raise TinkerflowError(f"'{out}' is not a site built by tinkerflow (no {MARKER}); "
                                  "refusing to replace it, expected an empty folder or an earlier site")


def _passed_tfjs(run) -> list[dict]:
    path = run.path / "export.json"
    formats = read_export_record(path).get("formats", {})
    variants = formats.get("tfjs", {}).get("variants", {})
    passed = []
    for name, record in variants.items():
        if name != safe_name(name):
            raise TinkerflowError(f"{path}: tfjs variant name {name!r} is not a plain folder name; expected the "
                                  "record 'tinkerflow export' writes")
        folder = run.export_dir / "tfjs" / name
        if record.get("status") == "passed" and (folder / "manifest.json").is_file():
            passed.append({"name": name, "bytes": sum(f["bytes"] for f in record.get("files", [])),
                           "parity": record.get("parity", {}), "metric": record.get("metric")})
    return sorted(passed, key=lambda v: (v["bytes"], v["name"]))


def _widget_dir(experiment) -> Path | None:
    folder = Path(inspect.getfile(type(experiment))).parent / "web"
    return folder if (folder / "widget.js").is_file() else None


def _model_page(run, experiment, site: Path, used: set[str], report: SiteReport) -> dict | None:
    variants = _passed_tfjs(run)
    if not variants:
        message = (f"run '{run.path}' has no tfjs export that passed its checks; skipped "
                   f"(run 'tinkerflow export {run.path} --format tfjs')")
        log.warning(message)
        report.warnings.append(message)
        return None
    slug = safe_name(f"{run.experiment_name}-{run.path.name}")
    while slug in used:
        slug += "-2"
    used.add(slug)
    folder = site / "models" / slug
    for variant in variants:
        source = run.export_dir / "tfjs" / variant["name"]
        target = folder / "tfjs" / safe_name(variant["name"])
        target.mkdir(parents=True)
        for item in regular_files(source, run.path):
            if item.parent == source and item.name == safe_name(item.name):
                copy_regular(item, target / item.name)
    widget = _widget_dir(experiment)
    fragment = ""
    if widget:
        (folder / "widget").mkdir()
        for name in ("widget.js", "widget.css"):  # widget.html is placed in the page itself
            if (widget / name).is_file():
                shutil.copy(widget / name, folder / "widget" / name)
        fragment = (widget / "widget.html").read_text() if (widget / "widget.html").is_file() else ""
    info = run.read_info()
    bench = read_bench_record(run.path / "bench.json")
    config = {
        "experiment": run.experiment_name,
        "run": run.path.name,
        "variants": [{"name": safe_name(v["name"]), "bytes": v["bytes"]} for v in variants],
        "default_variant": safe_name(variants[0]["name"]),
        "widget": "widget/widget.js" if widget else "../../assets/generic_widget.js",
    }
    body = (
        f'<header><a href="../../index.html">← all models</a><h1>{esc(run.experiment_name)}</h1>'
        f'<p class="sub">run {esc(run.path.name)} · {esc(type(experiment).description)}</p></header>'
        '<main><section class="panel"><h2>Try it</h2>'
        '<div class="controls"><label>variant <select id="variant"></select></label>'
        '<label>backend <select id="backend"><option value="">auto</option><option>webgl</option>'
        '<option>wasm</option><option>cpu</option></select></label>'
        '<span class="status">backend: <b id="backend-used">…</b> · last prediction: <b id="timing">…</b></span></div>'
        f'<div id="widget">{fragment}</div><p id="error" class="error" hidden></p></section>'
        f'<section class="panel"><h2>Training</h2>{training_charts(run.metrics_path)}</section>'
        f'<section class="panel"><h2>Model card</h2>{_card(info, variants, bench)}</section></main>'
        f'<script type="application/json" id="tinkerflow-config">{json_for_script(config)}</script>'
    )
    styles = ["widget/widget.css"] if widget and (widget / "widget.css").is_file() else []
    html = page(f"{run.experiment_name} · {run.path.name}", body, "../../",
                scripts=[("../../assets/tf.min.js", ""), ("../../assets/tf-backend-wasm.min.js", ""),
                         ("../../assets/tinkerflow.js", 'type="module" ')],
                styles=styles)
    (folder / "index.html").write_text(html)
    return {"slug": slug, "experiment": run.experiment_name, "run": run.path.name,
            "description": type(experiment).description, "metrics": info.get("metrics", {}),
            "variants": variants, "widget": bool(widget)}


def _table(rows: list[tuple], head: tuple | None = None) -> str:
    header = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>" if head else ""
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{header}{body}</table>"


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _card(info: dict, variants: list[dict], bench: dict) -> str:
    config = info.get("config", {})
    parts = ["<h3>Metrics</h3>", _table([(k, _fmt(v)) for k, v in info.get("metrics", {}).items()])]
    parts += ["<h3>Experiment config</h3>", _table([(k, _fmt(v)) for k, v in config.get("experiment", {}).items()])]
    trainer = config.get("trainer", {})
    parts += ["<h3>Training</h3>", _table([("seed", info.get("seed")), ("epochs run", info.get("epochs_run")),
                                           ("optimizer", trainer.get("optimizer")),
                                           ("learning rate", trainer.get("learning_rate")),
                                           ("batch size", trainer.get("batch_size")),
                                           ("fit time", f"{info.get('timings', {}).get('fit_s', 0):.1f} s")])]
    parts += ["<h3>Data</h3>", _table([(k, _fmt(v)) for k, v in info.get("data", {}).items()])]
    parts += ["<h3>Exports in this page</h3>", _table(
        [(v["name"], f"{v['bytes']:,} B", f"{v['parity'].get('max_abs_diff', float('nan')):.3g}",
          f"{v['metric']['keras']:.4g} → {v['metric']['exported']:.4g}" if v.get("metric") else "-") for v in variants],
        ("variant", "size", "max |tfjs − Keras|", "metric Keras → tfjs"))]
    if bench.get("rows"):
        parts += [f"<h3>Inference speed (batch {esc(bench.get('batch'))})</h3>", _table(
            [(r["name"], r["variant"], f"{r['single_s'] * 1e6:,.1f} µs",
              f"{r['throughput_per_s']:,.0f}/s" if r.get("throughput_per_s") else "-") for r in bench["rows"]],
            ("runtime", "variant", "1 sample", "throughput"))]
    versions = info.get("versions", {})
    parts += ["<h3>Versions</h3>", _table(sorted(versions.items()))]
    return "".join(parts)


def _index(pages: list[dict]) -> str:
    cards = []
    for p in pages:
        metrics = "".join(f"<li>{esc(k)}: {esc(_fmt(v))}</li>" for k, v in list(p["metrics"].items())[:4])
        sizes = ", ".join(f"{v['name']} {v['bytes']:,} B" for v in p["variants"])
        cards.append(f'<a class="card" href="models/{esc(p["slug"])}/index.html"><h2>{esc(p["experiment"])}</h2>'
                     f'<p class="sub">{esc(p["run"])}</p><p>{esc(p["description"])}</p>'
                     f'<ul>{metrics}</ul><p class="sub">{esc(sizes)}</p></a>')
    body = ('<header><h1>tinkerflow models</h1><p class="sub">Models trained with tinkerflow, running in your '
            'browser with TensorFlow.js. Nothing you type leaves this page.</p></header>'
            f'<main class="gallery">{"".join(cards)}</main>')
    return page("tinkerflow models", body, "")
