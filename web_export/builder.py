"""Build a static site from exported runs."""

from __future__ import annotations

import glob
import hashlib
import inspect
import json
import logging
import re
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.lock import run_lock, site_lock
from tinkerflow.core.npm import node_binary, node_modules
from tinkerflow.core.records import read_bench_record, read_export_record, read_manifest, read_tfjs_model_json
from tinkerflow.core.runfs import (
    copy_file,
    copy_regular,
    guarded,
    make_folder,
    make_staging,
    remove_tree,
    replace_folder,
    write_atomic,
)
from tinkerflow.core.runs import open_run

from .curves import training_charts
from .html import CSP, esc, json_for_script, page, safe_name
from .offline import write_app_files

log = logging.getLogger("tinkerflow.web")
ASSETS = Path(__file__).parent / "assets"
MARKER = ".tinkerflow-site"
#: cross-origin isolation (LiteRT.js threads) for hosts that read a ``_headers`` file
#: (Netlify, Cloudflare Pages); elsewhere pages run one thread
HEADERS_FILE = "/*\n  Cross-Origin-Opener-Policy: same-origin\n  Cross-Origin-Embedder-Policy: require-corp\n"


@dataclass
class SiteReport:
    out: Path
    pages: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    version: str = ""   # the site's content hash (its service worker's cache version)


def build_site(runs: list[str | Path], out: str | Path, registry, force: bool = False,
               tracking_links: bool = False, embed: bool = False) -> SiteReport:
    """Build the site for ``runs`` into ``out``; see the package docstring.

    ``out`` must not exist, be empty, or (with ``force``) hold a site built earlier; the new
    site is assembled beside it and renamed into place, so a failed build changes nothing.
    ``tracking_links``: each model card links to the run's page on the tracking server it was
    logged to (http(s) addresses only; off by default, so that a server's address is not published).
    ``embed``: one run's embed for a site that hosts it itself: its page with only the runtime
    it runs by default (``SiteReport.pages[0]["embed"]`` is the path of its embed view).
    """
    out = Path(out)
    if embed and len(runs) != 1:
        raise TinkerflowError(f"--embed takes one run; got {len(runs)} (build a site of several with --out)")
    _check_target(out, force)
    modules = node_modules()
    exporters = [registry.exporter(name)() for name in sorted(registry.exporters)
                 if registry.exporter(name).page_runtime]
    report = SiteReport(out)
    make_folder(out.parent)
    with site_lock(out):  # a second build of the same site waits for none: it is refused
        _check_target(out, force)
        for leftover in out.parent.glob(f".{glob.escape(out.name)}-building-*"):  # from a killed build
            remove_tree(leftover)
        staging = make_staging(out.parent, f".{out.name}-building-")
        try:
            with guarded(staging, check=False):
                _assemble(runs, staging, registry, exporters, modules, report, tracking_links, embed)
            replace_folder(staging, out)
        finally:
            remove_tree(staging)
    return report


def _assemble(runs: list[str | Path], staging: Path, registry, exporters: list, modules: Path,
              report: SiteReport, tracking_links: bool = False, embed: bool = False) -> None:
    """Every file of the site, into ``staging``."""
    for asset in ASSETS.iterdir():
        copy_file(asset, staging / "assets" / asset.name)
    used: set[str] = set()
    for run_path in runs:
        with run_lock(run_path, shared=True):
            run, experiment = open_run(run_path, registry)
            entry = _model_page(run, experiment, exporters, staging, used, report, tracking_links, embed)
        if entry:
            report.pages.append(entry)
    if not report.pages:
        formats = " or ".join(e.name for e in exporters)
        raise TinkerflowError(f"none of the runs has a {formats} export that passed its checks; "
                              f"expected at least one (run 'tinkerflow export RUN')")
    page_modules = {}
    for entry in report.pages:  # only the runtimes some page uses
        for name, exporter in entry.pop("runtime_exporters").items():
            if name not in page_modules:
                make_folder(staging / "assets" / name)
                written = exporter.page_assets(staging / "assets" / name, modules, name)
                page_modules[name] = f"../../assets/{name}/{written}"
    for entry in report.pages:
        write_page(staging, entry, page_modules)
    write_atomic(staging / "index.html", _index(report.pages))
    # what a widget may use from the other pages of the site (the captioner plays with a painter)
    write_atomic(staging / "site.json", json.dumps({"pages": [
        {"slug": p["slug"], "experiment": p["experiment"], "run": p["run"],
         "runtimes": [{"name": r["name"], "folder": r["folder"], "default_variant": r["default_variant"]}
                      for r in p["config"]["runtimes"]]} for p in report.pages]}))
    write_atomic(staging / "_headers", HEADERS_FILE)
    write_atomic(staging / "404.html", NOT_FOUND)
    write_atomic(staging / MARKER, "built by tinkerflow web\n")
    shell = ["index.html", "site.json", *(f"assets/{a.name}" for a in ASSETS.iterdir()),
             *(f"models/{p['slug']}/{name}" for p in report.pages for name in ("index.html", "embed.html"))]
    report.version = write_app_files(staging, shell)


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


def _passed_variants(run, exporter) -> tuple[list[dict], dict[str, str]]:
    """The variants of ``exporter``'s format that passed their export checks and that its page
    runtime can run (smallest first), and why each other passed variant cannot be used."""
    path = run.path / "export.json"
    variants = read_export_record(path).get("formats", {}).get(exporter.name, {}).get("variants", {})
    passed, unusable = [], {}
    for name, record in variants.items():
        if name != safe_name(name):
            raise TinkerflowError(f"{path}: {exporter.name} variant name {name!r} is not a plain folder name; "
                                  "expected the record 'tinkerflow export' writes")
        folder = run.export_dir / exporter.name / name
        if record.get("status") != "passed" or not (folder / "manifest.json").is_file():
            continue
        reason = exporter.page_check(read_manifest(folder / "manifest.json"))
        if reason:
            unusable[name] = f"not for {exporter.page_runtime[1]}: {reason}"
            continue
        files = record.get("files", [])
        passed.append({"name": name, "bytes": sum(f["bytes"] for f in files), "files": files,
                       "parity": record.get("parity", {}), "metric": record.get("metric")})
    return sorted(passed, key=lambda v: (v["bytes"], v["name"])), unusable


def _copy_variant(run, fmt: str, variant: dict, source: Path, target: Path) -> None:
    """The files ``export.json`` lists for one variant, each checked against its recorded size
    and sha256 while it is copied, and the variant's manifest (read and validated before);
    nothing else in the variant's folder reaches the site."""
    make_folder(target)
    if fmt == "tfjs":
        read_tfjs_model_json(source / "model.json")  # its weight files must be plain names beside it
    for entry in variant["files"]:
        prefix = f"{fmt}/{variant['name']}/"
        name = entry["path"].removeprefix(prefix)
        if not entry["path"].startswith(prefix) or name != safe_name(name):
            raise TinkerflowError(f"{run.path / 'export.json'}: file {entry['path']!r} is not a plain name in "
                                  f"{prefix}; expected the record 'tinkerflow export' writes")
        copy_regular(source / name, target / name)
        size, digest = _size_and_sha256(target / name)
        if (size, digest) != (entry["bytes"], entry["sha256"]):
            raise TinkerflowError(f"'{source / name}' is {size:,} bytes (sha256 {digest[:12]}…), but export.json "
                                  "records "
                                  f"{entry['bytes']:,} bytes (sha256 {entry['sha256'][:12]}…); expected the files "
                                  f"'tinkerflow export' wrote (export the run again)")
    copy_regular(source / "manifest.json", target / "manifest.json")


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _widget_dir(experiment) -> Path | None:
    folder = Path(inspect.getfile(type(experiment))).parent / type(experiment).widget_folder
    return folder if (folder / "widget.js").is_file() else None


def check_widget_syntax(folder: Path, experiment_name: str) -> None:
    """Parse every ``.js`` module of a widget folder with Node (as an ES module, not run): a
    one-line error with the file and line of the first syntax error, before any page is built."""
    node = node_binary()
    for source in sorted(folder.glob("*.js")):
        if not source.is_file() or source.is_symlink():
            continue
        done = subprocess.run([node, "--input-type=module", "--check"], input=source.read_text(encoding="utf-8"),
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            continue
        lines = done.stderr.splitlines()
        line = next((m[1] for m in (re.match(r"^\[stdin\]:(\d+)", x) for x in lines) if m), "?")
        error = next((x.strip() for x in lines if re.match(r"^\w*Error: ", x.strip())), "cannot parse it")
        raise TinkerflowError(f"the widget of experiment '{experiment_name}' does not parse: {error} "
                              f"({source}:{line}); expected an ES module exporting mount (docs/widgets.md)")


#: the default runtime of a page whose run has no browser benchmark: the order measured on
#: every experiment's page (README, "Speed in the browser"); `tinkerflow bench RUN --browser`
#: records a measurement that replaces it
UNMEASURED_ORDER = ("litertjs", "tfjs", "mediapipe")


def _model_page(run, experiment, exporters: list, site: Path, used: set[str], report: SiteReport,
                tracking_links: bool = False, embed: bool = False) -> dict | None:
    runtimes, notes, runtime_exporters = [], [], {}
    for exporter in exporters:
        variants, unusable = _passed_variants(run, exporter)
        for name, label in [exporter.page_runtime, *exporter.extra_page_runtimes(experiment)]:
            if unusable and not variants:  # shown on the page: it falls back to another runtime
                notes.append(f"{label} cannot run this model's exports: " +
                             "; ".join(f"{exporter.name}/{v}: {reason}" for v, reason in unusable.items()))
            if variants:
                runtime_exporters[name] = exporter
                runtimes.append({"name": name, "label": label, "folder": safe_name(exporter.name),
                                 "variants": variants, "default_variant": safe_name(variants[0]["name"])})
    if not runtimes:
        formats = " or ".join(e.name for e in exporters)
        message = (f"run '{run.path}' has no {formats} export that passed its checks and runs in a page; skipped "
                   f"(run 'tinkerflow export {run.path}')" + (f"; {'; '.join(notes)}" if notes else ""))
        log.warning(message)
        report.warnings.append(message)
        return None
    bench = read_bench_record(run.path / "bench.json")
    default, reason = _default_runtime(runtimes, bench)
    if embed:  # only the runtime the embed runs
        runtimes = [r for r in runtimes if r["name"] == default]
        runtime_exporters = {default: runtime_exporters[default]}
        reason += "; the only runtime of this embed"
    height = type(experiment).embed_height
    if not isinstance(height, int) or isinstance(height, bool) or not 120 <= height <= 4000:
        raise TinkerflowError(f"experiment '{run.experiment_name}' has embed_height {height!r}; expected a whole "
                              "number of CSS pixels from 120 to 4000")
    slug = safe_name(f"{run.experiment_name}-{run.path.name}")
    while slug in used:
        slug += "-2"
    used.add(slug)
    folder = site / "models" / slug
    for runtime in {r["folder"]: r for r in runtimes}.values():  # runtimes of one format share its files
        for variant in runtime["variants"]:
            source = run.export_dir / runtime["folder"] / variant["name"]
            target = folder / runtime["folder"] / safe_name(variant["name"])
            _copy_variant(run, runtime["folder"], variant, source, target)
    widget = _widget_dir(experiment)
    fragment = ""
    if widget:
        check_widget_syntax(widget, run.experiment_name)
        for item in sorted(widget.iterdir()):  # widget.html is placed in the page itself
            if item.suffix in (".js", ".css") and item.is_file() and not item.is_symlink():
                copy_file(item, folder / "widget" / item.name)
        fragment = (widget / "widget.html").read_text() if (widget / "widget.html").is_file() else ""
    info = run.read_info()
    config = {
        "experiment": run.experiment_name,
        "run": run.path.name,
        "runtimes": [{k: v for k, v in r.items() if k != "variants"} | {
            "variants": [{"name": safe_name(v["name"]), "bytes": v["bytes"]} for v in r["variants"]]}
            for r in runtimes],
        "default_runtime": default,
        "default_reason": reason,
        "notes": notes,
        "widget": "widget/widget.js" if widget else "../../assets/generic_widget.js",
        "embed": {"snippet": embed_snippet("{src}", f"{run.experiment_name} · {run.path.name} (tinkerflow)", height)},
    }
    return {"slug": slug, "experiment": run.experiment_name, "run": run.path.name,
            "description": type(experiment).description, "metrics": info.get("metrics", {}),
            "formats": [(folder, [r["label"] for r in runtimes if r["folder"] == folder], variants)
                        for folder, variants in {r["folder"]: r["variants"] for r in runtimes}.items()],
            "widget": bool(widget),
            "runtimes": [r["name"] for r in runtimes], "runtime_exporters": runtime_exporters,
            "config": config, "fragment": fragment,
            "styles": ["widget/widget.css"] if widget and (widget / "widget.css").is_file() else [],
            "card": _card(info, runtimes, bench, tracking_links), "charts": training_charts(run.metrics_path),
            "title": f"{run.experiment_name} · {run.path.name}", "embed": f"models/{slug}/embed.html"}


def _default_runtime(runtimes: list[dict], bench: dict) -> tuple[str, str]:
    """The page's default runtime: the fastest in the run's browser benchmark, if it has one."""
    names = [r["name"] for r in runtimes]
    measured = {}
    for row in (bench.get("browser") or {}).get("rows", []):  # WebGPU rows aside: a page's default is wasm
        if row.get("runtime") in names and isinstance(row.get("warm_ms"), (int, float)) \
                and row.get("accelerator", "wasm") == "wasm":
            measured[row["runtime"]] = min(measured.get(row["runtime"], float("inf")), row["warm_ms"])
    if measured:
        fastest = min(measured, key=measured.get)
        return fastest, f"fastest in this run's browser benchmark ({measured[fastest]:.3g} ms)"
    ranked = sorted(names, key=lambda n: UNMEASURED_ORDER.index(n) if n in UNMEASURED_ORDER else len(UNMEASURED_ORDER))
    return ranked[0], "no browser benchmark for this run; the runtime that was faster on every page measured"


#: the page a static host serves for an address with nothing there (GitHub Pages, Netlify and
#: ``tinkerflow serve`` use the nearest ``404.html``): an embed whose model was moved says so
#: (served at any address: it links to nothing)
NOT_FOUND = ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
             f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
             '<meta name="viewport" content="width=device-width, initial-scale=1"><title>Not found</title></head>\n'
             '<body><p id="not-found">This tinkerflow model is not at this address: it was moved, removed or rebuilt '
             'under another name. Copy its embed snippet again from its page.</p></body></html>\n')

_CONTROLS = ('<div class="controls"><label>runtime <select id="runtime"></select></label>'
             '<label>variant <select id="variant"></select></label><span id="options"></span>'
             '<span class="status">running on: <b id="backend-used">…</b> · last prediction: <b '
             'id="timing">…</b></span></div>')


def embed_snippet(src: str, title: str, height: int) -> str:
    """The ``<iframe>`` a page of another site pastes to show a model: attributes only (no style,
    no script), so that it works under the strictest CSP that allows the frame."""
    return (f'<iframe src="{esc(src)}" title="{esc(title)}" width="100%" height="{int(height)}" frameborder="0" '
            'loading="lazy" allow="camera"></iframe>')


def write_page(site: Path, entry: dict, modules: dict[str, str]) -> None:
    """The model page of ``entry`` and its embed view; ``modules`` maps runtime names to their
    page module's URL."""
    config = {**entry["config"], "runtimes": [{**r, "module": modules[r["name"]]} for r in entry["config"]["runtimes"]]}
    data = f'<script type="application/json" id="tinkerflow-config">{json_for_script(config)}</script>'
    snippet = entry["config"]["embed"]["snippet"].replace("{src}", "embed.html")
    body = (
        f'<header><a href="../../index.html">← all models</a><h1>{esc(entry["experiment"])}</h1>'
        f'<p class="sub">run {esc(entry["run"])} · {esc(entry["description"])}</p></header>'
        f'<main><section class="panel"><h2>Try it</h2>{_CONTROLS}'
        '<p id="note" class="note" hidden></p>'
        f'<div id="widget">{entry["fragment"]}</div><p id="error" class="error" hidden></p></section>'
        '<section class="panel"><h2>Embed</h2><p class="sub">This model in a page of your own site, on any host: '
        'paste this where it should appear (the frame needs no script of yours; '
        '<a href="embed.html">the embed view</a>).</p>'
        f'<pre class="snippet"><code id="embed-snippet">{esc(snippet)}</code></pre>'
        '<button id="embed-copy" type="button">Copy</button></section>'
        f'<section class="panel"><h2>Training</h2>{entry["charts"]}</section>'
        f'<section class="panel"><h2>Model card</h2>{entry["card"]}</section></main>{data}'
    )
    scripts = [("../../assets/tinkerflow.js", 'type="module" ')]
    folder = site / "models" / entry["slug"]
    write_atomic(folder / "index.html", page(entry["title"], body, "../../", scripts=scripts, styles=entry["styles"]))
    embed = (
        f'<main id="embed" class="embed"><div id="widget">{entry["fragment"]}</div>'
        '<p id="note" class="note" hidden></p><p id="error" class="error" hidden></p>'
        f'<details class="embed-controls"><summary>{esc(entry["experiment"])} · {esc(entry["run"])}</summary>'
        f'{_CONTROLS}</details><p class="embed-foot"><a href="index.html" target="_blank" rel="noopener">'
        'full page ↗</a> <span id="offline-state" class="offline-state" hidden></span></p></main>' + data
    )
    write_atomic(folder / "embed.html", page(entry["title"], embed, "../../", styles=entry["styles"], scripts=[
        *scripts, ("../../assets/embed.js", 'type="module" ')]))


def _table(rows: list[tuple], head: tuple | None = None) -> str:
    """A card table; with ``head``, each cell carries its column's name, which a phone-width
    page shows beside the value when it lays the rows out one under another."""
    if not head:
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f'<table class="pairs">{body}</table>'
    header = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead>"
    body = "".join("<tr>" + "".join(f'<td data-label="{esc(h)}">{esc(c)}</td>' for h, c in zip(head, row)) + "</tr>"
                   for row in rows)
    return f'<table class="columns">{header}<tbody>{body}</tbody></table>'


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def tracked_pages(info: dict) -> list[tuple[str, str]]:
    """(tracker, address) of each http(s) page a tracker recorded for the run in run.json
    (``tracking.<name>.url``); anything else there (another scheme, no host) is left out."""
    found = []
    for tracker, kept in sorted((info.get("tracking") or {}).items()):
        url = kept.get("url") if isinstance(kept, dict) else None
        if isinstance(url, str) and urllib.parse.urlsplit(url).scheme in ("http", "https") \
                and urllib.parse.urlsplit(url).hostname:
            found.append((str(tracker), url))
    return found


def _card(info: dict, runtimes: list[dict], bench: dict, tracking_links: bool = False) -> str:
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
        [(r["label"], v["name"], f"{v['bytes']:,} B", f"{v['parity'].get('max_abs_diff', float('nan')):.3g}",
          f"{v['metric']['keras']:.4g} → {v['metric']['exported']:.4g}" if v.get("metric") else "-")
         for r in runtimes for v in r["variants"]],
        ("runtime", "variant", "size", "max |exported − Keras|", "metric Keras → exported"))]
    if bench.get("rows"):
        parts += [f"<h3>Inference speed (batch {esc(bench.get('batch'))})</h3>", _table(
            [(r["name"], r["variant"], f"{r['single_s'] * 1e6:,.1f} µs",
              f"{r['throughput_per_s']:,.0f}/s" if r.get("throughput_per_s") else "-") for r in bench["rows"]],
            ("runtime", "variant", "1 sample", "throughput"))]
    phone = [r for r in (bench.get("browser") or {}).get("phone", []) if r.get("warm_ms")]
    if phone:
        labels = {r["name"]: r["label"] for r in runtimes}
        parts += [f"<h3>On a phone-class CPU</h3><p class=\"sub\">Chromium with a 390×844 touch screen and its CPU "
                  f"slowed {esc(_fmt(phone[0].get('cpu_slowdown', 4)))}× (tinkerflow bench --browser).</p>", _table(
            [(labels.get(r["runtime"], r["runtime"]), r["variant"],
              f"{_scaled(r.get('bytes'), 1e6, 'MB')} ({_scaled(r.get('gzip_bytes'), 1e6, 'MB')} gzip)",
              _scaled(r.get("first_result_ms"), 1e3, "s"), _scaled(r.get("return_first_result_ms"), 1e3, "s"),
              f"{r['warm_ms']:,.1f} ms")
             for r in phone],
            ("runtime", "variant", "download", "first result", "on a return visit", "one prediction"))]
    versions = info.get("versions", {})
    parts += ["<h3>Versions</h3>", _table(sorted(versions.items()))]
    pages = tracked_pages(info) if tracking_links else []
    if pages:
        parts += ["<h3>Tracked run</h3><ul>", *(f'<li>{esc(tracker)}: <a href="{esc(url)}" rel="noopener" '
                                                 f'target="_blank">{esc(url)}</a></li>' for tracker, url in pages),
                  "</ul>"]
    return "".join(parts)


def _scaled(value: float | None, unit: float, name: str) -> str:
    """``value / unit`` with two decimals and ``name``; "-" where the benchmark has no value."""
    return "-" if value is None else f"{value / unit:,.2f} {name}"


def _sizes(folder: str, labels: list[str], variants: list[dict]) -> str:
    """``tflite (LiteRT.js, MediaPipe): float32 5,255 B, float16 5,652 B`` for an index card."""
    return f"{folder} ({', '.join(labels)}): " + ", ".join(f"{v['name']} {v['bytes']:,} B" for v in variants)


def _index(pages: list[dict]) -> str:
    cards = []
    for p in pages:
        metrics = "".join(f"<li>{esc(k)}: {esc(_fmt(v))}</li>" for k, v in list(p["metrics"].items())[:4])
        sizes = "".join(f'<p class="sub">{esc(_sizes(folder, labels, variants))}</p>'
                        for folder, labels, variants in p["formats"])
        cards.append(f'<a class="card" href="models/{esc(p["slug"])}/index.html"><h2>{esc(p["experiment"])}</h2>'
                     f'<p class="sub">{esc(p["run"])}</p><p>{esc(p["description"])}</p>'
                     f'<ul>{metrics}</ul>{sizes}</a>')
    body = ('<header><h1>tinkerflow models</h1><p class="sub">Models trained with tinkerflow, running in your '
            'browser with LiteRT.js or TensorFlow.js. Nothing you type leaves this page.</p></header>'
            f'<main class="gallery">{"".join(cards)}</main>')
    return page("tinkerflow models", body, "")
