"""The deploy bundle: ``<run>/export/deploy/``, what a phone app needs of a run and nothing else.

- ``<variant>.tflite``: every TFLite variant that passed the export gate (metadata inside);
- ``labels.txt`` (classifiers) or ``vocabulary.json`` (text models);
- ``model.json``: each file's signature, its inputs and outputs in the signature's order (names,
  shapes, dtypes, quantization), their positions for index-based APIs, and the run's
  preprocessing, postprocessing and generation settings;
- ``golden.json``: example inputs with the outputs LiteRT gave for them, per file, as the
  tensors take and give them (a uint8 file's bytes), with the difference an app may accept:
  an app's own test runs them and knows it uses the model right;
- ``README.md``: how to load it with LiteRT's Kotlin ``CompiledModel`` API, Swift, MediaPipe
  Tasks (image classifiers) and Python ``ai-edge-litert``, with this run's tensor names. Its
  Python blocks run as they are in the bundle folder (a test does).

The bundle is rewritten after every export from the variants ``export.json`` lists as passed,
through a staging folder, so it is never half-written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from tinkerflow.core.records import read_export_record
from tinkerflow.core.rundir import Run, now_iso
from tinkerflow.core.runfs import (
    copy_regular,
    make_staging,
    remove_tree,
    replace_folder,
    write_atomic,
    write_json_atomic,
)

from .deploy_readme import render_readme
from .runtime import TFLiteModel, quantize
from .tflite import FILE, TFLiteExporter

BUNDLE = "deploy"
#: tensors with more values than this get one golden call, others up to three
SMALL_CALL = 4096
def write_bundle(run: Run, experiment, golden: dict[str, np.ndarray]) -> Path | None:
    """(Re)write ``<run>/export/deploy/`` from the run's passed TFLite variants; None (and
    no bundle) when there is none. ``golden`` maps input names to example rows."""
    variants = _passed_tflite(run)
    target = run.export_dir / BUNDLE
    if not variants:
        remove_tree(target)
        return None
    staging = make_staging(run.export_dir, f".staging-{BUNDLE}-")
    try:
        info = experiment.deploy_info()
        files, described, cases = {}, {}, {}
        for variant in variants:
            name = f"{variant}.tflite"
            copy_regular(run.export_dir / "tflite" / variant / FILE, staging / name)
            model = TFLiteModel(staging / name, dequantize=False)
            try:
                described[variant] = _describe(model, name, staging / name, variants[variant])
                cases[variant] = _golden_case(model, name, golden, described[variant])
            finally:
                model.close()
            files[name] = described[variant]["bytes"]
        if info.labels:
            write_atomic(staging / "labels.txt", "".join(f"{label}\n" for label in info.labels))
            files["labels.txt"] = (staging / "labels.txt").stat().st_size
        if info.vocabulary:
            write_json_atomic(staging / "vocabulary.json", {"tokens": list(info.vocabulary)})
            files["vocabulary.json"] = (staging / "vocabulary.json").stat().st_size
        manifest = {
            "tinkerflow_bundle": 1, "experiment": experiment.name, "run": run.path.name, "created": now_iso(),
            "summary": type(experiment).description,
            "variants": described,
            **info.for_apps(),
        }
        write_json_atomic(staging / "model.json", manifest)
        write_atomic(staging / "golden.json", _golden_json({"experiment": experiment.name, "run": run.path.name,
                                                          "variants": cases}))
        write_atomic(staging / "README.md", render_readme(run, experiment, manifest, cases, info.manifest(), files))
        staging.chmod(0o755)
        for item in staging.iterdir():
            item.chmod(0o644)
        replace_folder(staging, target)
    finally:
        remove_tree(staging)
    return target


def _passed_tflite(run: Run) -> dict[str, bool]:
    """The passed TFLite variants, in the exporter's order, and whether each is quantized."""
    record = read_export_record(run.path / "export.json").get("formats", {}).get("tflite", {})
    passed = {v: bool(r.get("quantized")) for v, r in record.get("variants", {}).items() if r.get("status") == "passed"}
    return {v: passed[v] for v in TFLiteExporter.variants
            if v in passed and (run.export_dir / "tflite" / v / FILE).is_file()}


def _describe(model, name: str, path: Path, quantized: bool) -> dict:
    """The file's signature as an app sees it: inputs and outputs in the signature's own
    (alphabetical) order, which the index-based APIs follow for the main subgraph."""
    data = path.read_bytes()
    return {
        "file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "quantized": quantized,
        "signature": "serving_default", "signatures": model.signatures,
        "inputs": model.input_specs(), "outputs": model.output_specs(),
        "input_positions": model.input_positions(),
    }


def _golden_case(model, name: str, golden: dict[str, np.ndarray], described: dict) -> dict:
    batch = described["inputs"][0]["shape"][0] or 1
    rows = len(next(iter(golden.values())))
    values = sum(int(np.prod([d or 1 for d in t["shape"]])) for t in described["inputs"] + described["outputs"])
    count = max(1, min(3 if values <= SMALL_CALL else 1, rows // batch))
    calls = []
    for k in range(count):
        picked = [(k * batch + i) % rows for i in range(batch)]
        feeds = {}
        for spec in described["inputs"]:
            array = np.asarray(golden[spec["name"]])[picked]
            feeds[spec["name"]] = _as_tensor(array, spec)
        outputs = model.predict_named(feeds)
        calls.append({"inputs": {n: _tensor(a) for n, a in feeds.items()},
                      "outputs": {n: _tensor(np.asarray(outputs[n])) for n in model.output_names}})
    return {"file": name, "signature": "serving_default", "tolerance": _tolerance(described, calls), "calls": calls}


def _as_tensor(array: np.ndarray, spec: dict) -> np.ndarray:
    """Golden values as the tensor takes them (a uint8 file's bytes)."""
    dtype, q = np.dtype(spec["dtype"]), spec.get("quantization")
    array = quantize(array, dtype, (q["scale"], q["zero_point"])) if q else array.astype(dtype)
    return np.ascontiguousarray(array)


def _tolerance(described: dict, calls: list[dict]) -> float:
    """The largest difference from golden.json an app should accept, in the outputs' own units:
    one step of a quantized output; for float outputs 1e-4 of their scale (float files) or 1%
    (files with quantized weights or activations, whose kernels round differently across CPUs)."""
    if all(o.get("quantization") for o in described["outputs"]):
        return 1.0
    scale = max(float(np.max(np.abs(out["data"]))) if out["data"].size else 0.0
                for call in calls for out in call["outputs"].values())
    return float(f"{max(scale, 1.0) * (1e-2 if described['quantized'] else 1e-4):.3g}")


def _tensor(array: np.ndarray) -> dict:
    return {"dtype": array.dtype.name, "shape": list(array.shape), "data": array.ravel()}


def _golden_json(payload: dict) -> str:
    """JSON with float32 values in their shortest exact form (not float64's 17 digits)."""
    def default(value):
        if isinstance(value, np.ndarray):
            if np.issubdtype(value.dtype, np.floating):
                return [float(np.format_float_positional(v, unique=True, trim="-")) for v in value.astype(np.float32)]
            return value.tolist()
        raise TypeError(f"not JSON: {type(value).__name__}")

    return json.dumps(payload, default=default, separators=(",", ":")) + "\n"
