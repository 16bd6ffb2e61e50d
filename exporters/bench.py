"""Inference speed of a run: Keras against its exports in their real runtimes.

``tinkerflow bench RUN`` prints the table and writes ``<run>/bench.json``; the
pytest-benchmark suite in ``tests/benchmarks`` times the same callables.
"""

from __future__ import annotations

import functools
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinkerflow.core.records import read_export_record, read_tfjs_model_json
from tinkerflow.core.rundir import now_iso, versions
from tinkerflow.core.runfs import write_json_atomic

from . import runtime
from .runtime import TFJSModel, _interpreter_class
from .savedmodel import tensor_names


def measure(fn: Callable[[], Any], min_seconds: float = 0.2, rounds: int = 7) -> dict:
    """Time ``fn`` in ``rounds`` rounds of enough calls to last ``min_seconds``; seconds per call."""
    fn()
    calls, elapsed = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds / rounds or calls >= 1_000_000:
            break
        calls *= 10 if elapsed < min_seconds / rounds / 10 else 2
    per_call = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        per_call.append((time.perf_counter() - start) / calls)
    return {"median_s": statistics.median(per_call), "min_s": min(per_call), "rounds": rounds, "calls_per_round": calls}


def inputs_for(experiment, batch: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One sample and a batch of ``batch`` samples built from the experiment's golden inputs."""
    golden = experiment.example_inputs()
    golden = list(golden) if isinstance(golden, (list, tuple)) else [golden]
    single = [np.ascontiguousarray(g[:1]) for g in golden]
    repeats = -(-batch // len(golden[0]))
    batched = [np.ascontiguousarray(np.concatenate([g] * repeats)[:batch]) for g in golden]
    return single, batched


def candidates(run, experiment, model, batch: int = 256) -> list[dict]:
    """Every runtime to time, as dicts with ``name``, ``variant``, ``single`` and ``batch`` callables
    (or ``node`` for tfjs, which is timed inside Node)."""
    single, batched = inputs_for(experiment, batch)
    x1 = single if len(single) > 1 else single[0]
    xb = batched if len(batched) > 1 else batched[0]
    rows = [
        {"name": "keras model(x)", "variant": "float32", "single": lambda: model(x1, training=False),
         "batch": lambda: model(xb, training=False)},
        {"name": "keras predict", "variant": "float32", "single": lambda: model.predict(x1, verbose=0),
         "batch": lambda: model.predict(xb, batch_size=batch, verbose=0)},
    ]
    exports = passed_exports(run)
    names = tensor_names(model)[0]
    for variant in exports.get("tflite", []):
        loaded = runtime.load(run.export_dir / "tflite" / variant / "model.tflite")
        batch_model = runtime.load(run.export_dir / "tflite" / variant / "model.tflite")
        # the file's signature lists its inputs by name, not in the model's order
        order = [names.index(n) for n in loaded.input_names]
        rows.append({"name": f"{loaded.runtime} tflite", "variant": variant,
                     "single": functools.partial(loaded.predict, *(single[i] for i in order)),
                     "batch": functools.partial(batch_model.predict, *(batched[i] for i in order))})
        if variant == "float32" and len(single) == 1:
            rows.append({"name": "bare LiteRT invoke", "variant": variant,
                         "single": _bare_invoke(loaded.path, single[0]),
                         "batch": None})
    for variant in exports.get("tfjs", []):
        rows.append({"name": "tfjs in Node", "variant": variant, "node": run.export_dir / "tfjs" / variant,
                     "input_names": names, "single_inputs": single, "batch_inputs": batched})
    return rows


def _bare_invoke(path: Path, x: np.ndarray) -> Callable[[], None]:
    _, interpreter_cls = _interpreter_class()
    interpreter = interpreter_cls(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    if detail["shape"][0] != len(x):  # a fixed-batch file: one call of its own batch
        x = np.ascontiguousarray(np.resize(x, (int(detail["shape"][0]), *x.shape[1:])))
    interpreter.set_tensor(detail["index"], x)
    return interpreter.invoke


def passed_exports(run) -> dict[str, list[str]]:
    """The variants ``export.json`` records as passed (format -> variants), each tfjs
    variant's ``model.json`` checked; loads no runtime, so the CLI calls it before TensorFlow."""
    formats = read_export_record(run.path / "export.json").get("formats", {})
    passed = {fmt: [v for v, rec in entry.get("variants", {}).items() if rec.get("status") == "passed"]
              for fmt, entry in formats.items()}
    for variant in passed.get("tfjs", []):
        read_tfjs_model_json(run.export_dir / "tfjs" / variant / "model.json")
    return passed


def bench_run(run, experiment, model, batch: int = 256, min_seconds: float = 0.2) -> dict:
    """Measure every candidate; returns (and the CLI saves) the bench record."""
    rows = []
    for cand in candidates(run, experiment, model, batch):
        row = {"name": cand["name"], "variant": cand["variant"]}
        if "node" in cand:
            tfjs = TFJSModel(cand["node"])
            try:
                names = cand["input_names"]
                reply = tfjs.run(dict(zip(names, cand["single_inputs"])), repeat=200)
                one = reply["timings_ms"]
                many = tfjs.run(dict(zip(names, cand["batch_inputs"])), repeat=20)["timings_ms"]
            finally:
                tfjs.close()
            row["name"] = f"{cand['name']} ({reply['backend']})"
            row["single_s"] = statistics.median(one) / 1000
            row["batch_s"] = statistics.median(many) / 1000
        else:
            row["single_s"] = measure(cand["single"], min_seconds)["median_s"]
            row["batch_s"] = measure(cand["batch"], min_seconds)["median_s"] if cand["batch"] else None
        row["throughput_per_s"] = batch / row["batch_s"] if row.get("batch_s") else None
        rows.append(row)
    record = {"run": run.path.name, "experiment": run.experiment_name, "batch": batch, "measured": now_iso(),
              "versions": versions(), "rows": rows, "ratios": ratios(rows)}
    return record


def ratios(rows: list[dict]) -> dict:
    """The two ratios the exported fast path is held to (single-sample latency)."""
    by = {(r["name"], r["variant"]): r["single_s"] for r in rows}
    bare = by.get(("bare LiteRT invoke", "float32"))
    ours = next((v for (name, variant), v in by.items() if name.endswith("tflite") and variant == "float32"), None)
    predict = by.get(("keras predict", "float32"))
    out = {}
    if bare and ours:
        out["runtime_predict_over_bare_invoke"] = ours / bare
    if ours and predict:
        out["keras_predict_over_runtime_predict"] = predict / ours
    return out


def save(run, record: dict) -> Path:
    path = run.path / "bench.json"
    write_json_atomic(path, record)
    return path
