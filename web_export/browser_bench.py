"""``tinkerflow bench RUN --browser``: the run's page measured in headless Chromium.

In one process and one browser: native LiteRT on every .tflite variant (1 and 2 threads),
then the run's own page, built into a temporary folder and served with the cross-origin
isolation headers, on every runtime and variant it offers (LiteRT.js on wasm with 1 and 2
threads and on WebGPU — in a browser without a GPU, SwiftShader's emulated adapter —, tfjs on
its wasm backend), each timed on the same inputs — the experiment's golden inputs
at its inference batch. Also a first visit of the page as a viewer makes it: the bytes it
downloads (raw and gzip) and the time from the request to the first result. And the phone
budget: each runtime's default variant on the phone profile (:mod:`.browser`: 390×844 touch
screen, CPU slowed 4×): download, first result on a first and on a return visit, and the warm
latency of one prediction.
"""

from __future__ import annotations

import functools
import gzip
import statistics
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.records import read_export_record
from tinkerflow.exporters.bench import inputs_for, measure
from tinkerflow.exporters.runtime import TFLiteModel
from tinkerflow.exporters.savedmodel import tensor_names

from .browser import CPU_SLOWDOWN, chromium, phone_context, slow_down
from .builder import build_site
from .serve import serving

THREADS = (1, 2)
#: the page options each runtime is measured with, a row each (a runtime not listed: its
#: defaults); the first is the one its phone row uses. tfjs on wasm, the backend a page
#: without a GPU gets
OPTIONS = {"litertjs": [{"accelerator": "wasm", "threads": n} for n in THREADS] + [{"accelerator": "webgpu"}],
           "tfjs": [{"backend": "wasm"}]}


def _passed(run, fmt: str) -> list[str]:
    variants = read_export_record(run.path / "export.json").get("formats", {}).get(fmt, {}).get("variants", {})
    return [name for name, record in variants.items() if record.get("status") == "passed"]


def native_rows(run, inputs: dict[str, np.ndarray], min_seconds: float) -> list[dict]:
    """Python's LiteRT on every passed .tflite variant, 1 and 2 threads, at the inference batch."""
    rows = []
    for variant in _passed(run, "tflite"):
        for threads in THREADS:
            model = TFLiteModel(run.export_dir / "tflite" / variant / "model.tflite", num_threads=threads)
            ordered = [inputs[n] for n in model.input_names]
            seconds = measure(functools.partial(model.predict, *ordered), min_seconds)["median_s"]
            rows.append({"where": "native", "runtime": "litert", "variant": variant, "threads": threads,
                         "warm_ms": seconds * 1000, "fixed_shape": model.fixed_batch is not None})
            model.close()
    return rows


def page_rows(run, registry, inputs: dict, repeats: int = 20) -> tuple[list[dict], dict, list[dict]]:
    """The run's page in Chromium: every runtime, variant and thread count; a first visit; the
    phone budget."""
    feeds = {name: {"data": np.asarray(a).ravel().tolist(), "shape": list(np.shape(a))} for name, a in inputs.items()}
    with tempfile.TemporaryDirectory(prefix="tinkerflow-bench-") as tmp:
        site = Path(tmp) / "site"
        report = build_site([run.path], site, registry)
        page_entry = report.pages[0]
        path = f"models/{page_entry['slug']}/index.html"
        with serving(site) as base, chromium(webgpu=True) as browser:
            first = first_visit(browser, base + path, site, feeds)
            phone = [phone_row(browser, base + path, site, feeds, runtime, min(repeats, 5))
                     for runtime in page_entry["config"]["runtimes"]]
            rows = []
            rows = [page_row(browser, base + path, feeds, runtime["name"], variant["name"], options, repeats)
                    for runtime in page_entry["config"]["runtimes"] for variant in runtime["variants"]
                    for options in OPTIONS.get(runtime["name"], [{}])]
    return rows, first, phone


def page_row(browser, url: str, feeds: dict, runtime: str, variant: str, options: dict, repeats: int) -> dict:
    """One runtime, variant and set of page options, timed warm; a page that did not run, or
    ran on another accelerator than asked for (WebGPU's fallback to wasm), is a row with its error."""
    query = "&".join(f"{k}={v}" for k, v in {"runtime": runtime, "variant": variant, **options}.items())
    row = {"where": "browser", "runtime": runtime, "variant": variant, "threads": options.get("threads", 1),
           **({"accelerator": options["accelerator"]} if "accelerator" in options else {})}
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{url}?{query}")
        page.wait_for_function("() => document.body.dataset.ready", timeout=120_000)
        if page.evaluate("() => document.body.dataset.ready") != "true":
            return {**row, "error": page.text_content("#error")}
        backend = page.evaluate("() => document.body.dataset.backend")
        if options.get("accelerator") and not backend.startswith(options["accelerator"]):
            return {**row, "error": page.text_content("#note")}
        result = page.evaluate("(args) => window.tinkerflow.bench(args)", {"inputs": feeds, "repeats": repeats})
        return {**row, "backend": result["backend"], "warm_ms": statistics.median(result["times"])}
    finally:
        context.close()


def first_visit(browser, url: str, site: Path, feeds: dict) -> dict:
    """A fresh browser profile opens ``url``: what it downloads and when the first result is
    there (the widget's own first prediction, or for a widget that waits for the viewer —
    the lyrics page — one call made as soon as the page is ready)."""
    context = browser.new_context()
    page = context.new_page()
    fetched: list[str] = []
    page.on("requestfinished", lambda request: fetched.append(urlsplit(request.url).path))
    first_ms, runtime = _first_result(page, url, feeds)
    context.close()
    return {"runtime": runtime, "first_result_ms": first_ms, "requests": len(fetched), **_downloaded(fetched, site)}


def phone_row(browser, url: str, site: Path, feeds: dict, runtime: dict, repeats: int) -> dict:
    """One runtime's default variant on the phone profile, with the option its desktop rows
    use first (one LiteRT.js thread, tfjs on wasm): a first visit, a return visit (its files
    now in the browser's cache and the site's service worker), then warm predictions."""
    context = phone_context(browser)
    page = context.new_page()
    slow_down(context, page)
    fetched: list[str] = []
    page.on("requestfinished", lambda request: fetched.append(urlsplit(request.url).path))
    options = OPTIONS.get(runtime["name"], [{}])[0]  # as the desktop row it is compared with
    query = "?" + "&".join(f"{k}={v}" for k, v in
                           {"runtime": runtime["name"], "variant": runtime["default_variant"], **options}.items())
    row = {"runtime": runtime["name"], "variant": runtime["default_variant"], "cpu_slowdown": CPU_SLOWDOWN}
    try:
        row["first_result_ms"], _ = _first_result(page, url + query, feeds)
        row.update(_downloaded(fetched, site))
        page.wait_for_function("() => document.body.dataset.offline === 'ready'", timeout=120_000)
        row["return_first_result_ms"], _ = _first_result(page, url + query, feeds)
        result = page.evaluate("(args) => window.tinkerflow.bench(args)", {"inputs": feeds, "repeats": repeats})
        row["warm_ms"] = statistics.median(result["times"])
    except TinkerflowError as exc:
        row["error"] = str(exc)
    finally:
        context.close()
    return row


def _first_result(page, url: str, feeds: dict) -> tuple[float, str]:
    page.goto(url)
    page.wait_for_function("() => document.body.dataset.ready", timeout=120_000)
    if page.evaluate("() => document.body.dataset.ready") != "true":
        raise TinkerflowError(f"the page {url} did not run: {page.text_content('#error')}")
    first_ms = page.evaluate("async (feeds) => { const stats = window.tinkerflow.stats;"
                             " if (stats.firstPredictionMs === null) await window.tinkerflow.predict(feeds);"
                             " return stats.firstPredictionMs; }", feeds)
    return first_ms, page.evaluate("() => document.body.dataset.runtime")


def _downloaded(paths: list[str], site: Path) -> dict:
    raw = zipped = 0
    for path in paths:
        file = site / path.lstrip("/")
        if file.is_file():
            data = file.read_bytes()
            raw += len(data)
            zipped += len(gzip.compress(data, 6))
    return {"bytes": raw, "gzip_bytes": zipped}


def ratios(rows: list[dict], phone: list[dict] = ()) -> dict:
    """LiteRT.js against native LiteRT on the same file (1 thread), LiteRT.js on WebGPU against
    wasm, tfjs against LiteRT.js, the fixed-shape float32 file against the any-batch one
    (native), and each runtime on the phone profile against the same page unthrottled."""
    def ms(where, runtime, variant, threads=1, accelerator="wasm"):
        return next((r["warm_ms"] for r in rows if r["where"] == where and r["runtime"] == runtime
                     and r["variant"] == variant and r.get("threads") == threads
                     and r.get("accelerator", "wasm") == accelerator and "warm_ms" in r), None)

    out = {}
    for variant in sorted({r["variant"] for r in rows if r["runtime"] == "litertjs"}):
        native, page = ms("native", "litert", variant), ms("browser", "litertjs", variant)
        if native and page:
            out[f"litertjs_over_native_{variant}"] = page / native
        gpu = ms("browser", "litertjs", variant, accelerator="webgpu")
        if gpu and page:
            out[f"webgpu_over_wasm_{variant}"] = gpu / page
    tfjs, lite = ms("browser", "tfjs", "float32"), ms("browser", "litertjs", "float32")
    if tfjs and lite:
        out["tfjs_over_litertjs_float32"] = tfjs / lite
    fixed, dynamic = ms("native", "litert", "float32"), ms("native", "litert", "float32_any_batch")
    if fixed and dynamic:
        out["any_batch_over_fixed_float32"] = dynamic / fixed
    for row in phone:
        desktop = ms("browser", row["runtime"], row["variant"])
        if desktop and row.get("warm_ms"):
            out[f"phone_over_desktop_{row['runtime']}_{row['variant']}"] = row["warm_ms"] / desktop
    return out


def browser_bench(run, experiment, model, registry, min_seconds: float = 0.2, repeats: int = 20) -> dict:
    """The ``browser`` part of ``bench.json`` for the export ``model``: native and page rows,
    the first visit, ratios."""
    _, batch = inputs_for(experiment, type(experiment).export_spec.inference_batch)
    inputs = dict(zip(tensor_names(model)[0], batch))
    rows = native_rows(run, inputs, min_seconds)
    browser_rows, first, phone = page_rows(run, registry, inputs, repeats)
    rows += browser_rows
    return {"batch": type(experiment).export_spec.inference_batch, "rows": rows, "first_visit": first, "phone": phone,
            "ratios": ratios(rows, phone)}
