"""Export a trained run: convert, check in the real runtime, then (and only then) replace.

For every format and variant:

1. the exporter writes the bundle into a staging folder under ``<run>/export/``;
2. the golden inputs (``experiment.example_inputs()``) run through Keras and through the
   bundle in its real runtime (LiteRT for TFLite, tfjs in Node for TensorFlow.js);
3. the experiment's own metric is measured through the bundle on validation data;
4. the gate: a float variant must match Keras within the exporter's tolerance; a quantized
   one must keep the metric within ``experiment.export_spec.margin`` of Keras'; the
   experiment's own ``export_check`` on the golden outputs (e.g. the same labels) must pass;
   and so must the exporter's ``consumer_check``, which runs the file in the frameworks apps
   load it with (MediaPipe Tasks for an image classifier's .tflite);
5. a variant that passes gets its deploy ``manifest.json`` and is renamed into
   ``<run>/export/<format>/<variant>/``; one that fails is removed and the earlier good
   export of that variant, if any, stays untouched;
6. the deploy bundle for phone apps, ``<run>/export/deploy/`` (:mod:`.deploy`), is rewritten
   from the TFLite variants that passed.

``<run>/export.json`` records every format and variant: status, why it failed, files with
sizes and sha256, converter versions, parity figures and the metric.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinkerflow.core.config import run_log_format
from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.experiment import ExportSpec
from tinkerflow.core.exporter import ExportContext, VariantResult
from tinkerflow.core.lock import run_lock
from tinkerflow.core.plugins import make_plugin_manager
from tinkerflow.core.records import read_export_record
from tinkerflow.core.rundir import Run, clear_leftovers, now_iso, versions
from tinkerflow.core.runfs import (
    copy_tree_regular,
    make_staging,
    remove_tree,
    replace_folder,
    temporary_folder,
    write_json_atomic,
)
from tinkerflow.core.runs import load_trained_model, open_run
from tinkerflow.core.tf_quiet import native_output

from .deploy import write_bundle
from .savedmodel import tensor_names

log = logging.getLogger("tinkerflow.export")
EXPORT_FILE = "export.json"
MANIFEST = "manifest.json"
MAX_EXAMPLE_VALUES = 4096


class Rejected(TinkerflowError):
    """A quantized variant that runs but is less accurate than the gate allows."""


@dataclass
class ExportReport:
    """The outcome of one ``export_run`` call."""

    run_dir: Path
    results: dict = field(default_factory=dict)   # format -> variant -> record
    bundle: Path | None = None                     # the deploy bundle, when TFLite files were exported

    @property
    def failed(self) -> list[tuple[str, str, str]]:
        """Variants that could not be exported or do not match Keras: errors of the export."""
        return self._with_status("failed")

    @property
    def rejected(self) -> list[tuple[str, str, str]]:
        """Quantized variants that ran but lost more accuracy than the gate allows: results."""
        return self._with_status("rejected")

    @property
    def ok(self) -> bool:
        return not self.failed

    @classmethod
    def read(cls, run_dir: Path) -> "ExportReport":
        """The report of what ``export.json`` in ``run_dir`` records (every export so far)."""
        formats = read_export_record(Path(run_dir) / EXPORT_FILE).get("formats", {})
        bundle = Path(run_dir) / "export" / "deploy"
        return cls(Path(run_dir), {fmt: dict(entry.get("variants", {})) for fmt, entry in formats.items()},
                   bundle if (bundle / "README.md").is_file() else None)

    def _with_status(self, status: str) -> list[tuple[str, str, str]]:
        return [(fmt, variant, rec.get("error", "")) for fmt, variants in self.results.items()
                for variant, rec in variants.items() if rec["status"] == status]


def select_variants(registry, formats: list[str] | None, quantize: list[str] | None) -> dict[str, list[str]]:
    """Which variants of which formats to export; one-line errors for unknown names."""
    formats = list(formats or sorted(registry.exporters))
    chosen: dict[str, list[str]] = {}
    for fmt in formats:
        exporter = registry.exporter(fmt)
        problem = exporter.unavailable()
        if problem:
            raise TinkerflowError(f"format '{fmt}' cannot be exported here: {problem}")
        if quantize:
            unknown = [v for v in quantize if v not in exporter.variants]
            if unknown and len(formats) == 1:
                raise TinkerflowError(f"format '{fmt}' has no variant '{unknown[0]}'; expected one of: "
                                      f"{', '.join(exporter.variants)}")
            picked = [v for v in quantize if v in exporter.variants]
            if not picked:
                raise TinkerflowError(f"none of the variants {', '.join(quantize)} exists for format '{fmt}'; "
                                      f"expected one of: {', '.join(exporter.variants)}")
            chosen[fmt] = picked
        else:
            chosen[fmt] = list(exporter.default_variants)
    return chosen


def export_run(run_path: Path | str, registry, formats: list[str] | None = None,
               quantize: list[str] | None = None, mediapipe: bool = False) -> ExportReport:
    """Export a completed run; see the module docstring. Raises for unusable input, records
    per-variant failures in the report and in ``export.json``. ``mediapipe``: the run must
    be an image classifier, and every TFLite variant must pass the MediaPipe Tasks check
    (which otherwise runs only where mediapipe is installed)."""
    chosen = select_variants(registry, formats, quantize)
    with run_lock(run_path), _logged_to(Path(run_path) / "run.log"):
        return _export_locked(run_path, registry, chosen, explicit=bool(quantize), mediapipe=mediapipe)


def check_request(run_path: Path | str, registry, formats: list[str] | None = None,
                  quantize: list[str] | None = None, mediapipe: bool = False) -> dict[str, list[str]]:
    """What :func:`export_run` would export from the run: format -> variants, or the same
    one-line refusal it would give (unknown names, a run that is not completed, a variant or
    MediaPipe metadata that does not apply). Loads no model and no TensorFlow, so that
    ``tinkerflow export`` answers bad input at once; export_run checks again under the lock."""
    chosen = select_variants(registry, formats, quantize)
    run, experiment = open_run(run_path, registry)
    return _applicable_to(run, experiment, registry, chosen, explicit=bool(quantize), mediapipe=mediapipe)


def _applicable_to(run: Run, experiment, registry, chosen: dict[str, list[str]], explicit: bool,
                   mediapipe: bool) -> dict[str, list[str]]:
    status = run.read_info().get("status")
    if status != "completed":
        raise TinkerflowError(f"run '{run.path}' has status '{status}'; expected a completed run to export")
    if mediapipe and type(experiment).export_spec.image_classifier is None:
        able = sorted(name for name, entry in registry.experiments.items()
                      if entry.cls.export_spec.image_classifier is not None)
        raise TinkerflowError(f"run '{run.path}' is a run of the {experiment.name} experiment; MediaPipe metadata is "
                              "written for image "
                              "classifiers (one RGB image in, one score per label out): "
                              f"{', '.join(able) or 'none installed'}")
    return _applicable(registry, chosen, experiment, explicit)


@contextmanager
def _logged_to(path: Path):
    """The export's log (DEBUG included: the runtimes' own output) appended to the run's
    ``run.log``, unless the process already logs there (an export right after training)."""
    root = logging.getLogger()
    logged = any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in root.handlers)
    if logged or path.is_symlink() or not path.parent.is_dir():
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(run_log_format()))
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    saved = log.level, log.propagate
    log.addHandler(handler)
    log.addHandler(console)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.removeHandler(console)
        log.setLevel(saved[0])
        log.propagate = saved[1]
        handler.close()


def _export_locked(run_path: Path | str, registry, chosen: dict[str, list[str]], explicit: bool,
                   mediapipe: bool) -> ExportReport:
    run, experiment = open_run(run_path, registry)
    chosen = _applicable_to(run, experiment, registry, chosen, explicit, mediapipe)
    spec = type(experiment).export_spec
    data = experiment.load_data()
    model = load_trained_model(run, experiment)
    export_model = experiment.export_model(model)
    golden = _as_list(experiment.example_inputs())

    report = ExportReport(run.path)
    journal = ExportJournal(run)
    clear_leftovers(run.path)
    with temporary_folder(run.export_dir, ".work-") as work:
        input_names, output_names = tensor_names(export_model)
        context = ExportContext(export_model, experiment, input_names, output_names, Path(work),
                                inference_batch=spec.inference_batch,
                                intermediate_layers=list(experiment.deploy_info().intermediate_layers),
                                about=_about(run, experiment), require_consumers=mediapipe)
        golden_named = dict(zip(input_names, golden))
        keras_out = _keras_named(export_model, golden, output_names)
        def keras_predict(named):
            return _keras_named(export_model, [named[n] for n in input_names], output_names)

        keras_metric = experiment.export_metric(_positional(keras_predict, input_names, output_names), data)
        for fmt, variants in chosen.items():
            exporter = registry.exporter(fmt)()
            try:
                versions = exporter.converter_versions()
            except TinkerflowError as exc:
                versions = {}
                for variant in variants:
                    report.results.setdefault(fmt, {})[variant] = {"status": "failed", "error": str(exc)}
                continue
            for variant in variants:
                record = _export_variant(run, experiment, exporter, context, variant, golden_named,
                                         keras_out, keras_metric, data, journal)
                record["converter_versions"] = versions
                report.results.setdefault(fmt, {})[variant] = record
                journal.record(fmt, variant, record)
                log.info("%s/%s: %s%s", fmt, variant, record["status"],
                         f" ({record['error']})" if record.get("error") else "")
    for fmt, variants in report.results.items():  # formats whose converter was missing
        for variant, record in variants.items():
            journal.record(fmt, variant, record)
    if "tflite" in chosen:
        report.bundle = write_bundle(run, experiment, golden_named)
    try:
        registry.hook.after_export(run=run, report=report)
    except Exception as exc:
        log.warning("an after_export hook raised %s: %s", type(exc).__name__, exc)
    return report


def _export_variant(run: Run, experiment, exporter, context: ExportContext, variant: str,
                    golden: dict, keras_out: dict, keras_metric: float, data, journal: "ExportJournal") -> dict:
    started = time.perf_counter()
    staging = make_staging(run.export_dir, f".staging-{exporter.name}-{variant}-")
    record: dict[str, Any] = {"status": "failed", "exported": now_iso()}
    try:
        try:
            with native_output(log, f"converting {exporter.name}/{variant}"):
                result = exporter.convert(context, variant, staging)
        except TinkerflowError:
            raise
        except Exception as exc:
            raise TinkerflowError(f"conversion failed: {type(exc).__name__}: {_first_line(exc)}") from exc
        loaded = None
        try:
            with native_output(log, f"running {exporter.name}/{variant}"):
                loaded = exporter.load(staging, result)
                exported = loaded.predict_named(golden)
                metric_value = experiment.export_metric(
                    _positional(loaded.predict_named, context.input_names, context.output_names), data)
        except TinkerflowError:
            raise
        except Exception as exc:
            raise TinkerflowError(f"the exported model does not run in its runtime: {type(exc).__name__}: "
                                  f"{_first_line(exc)}") from exc
        finally:
            if loaded is not None:
                loaded.close()
        parity = compare(keras_out, exported)
        spec = type(experiment).export_spec
        metric = {"name": spec.metric.name, "keras": keras_metric, "exported": metric_value,
                  "higher_is_better": spec.metric.higher_is_better}
        record.update(parity=parity, metric=metric, quantized=result.quantized,
                      **({"notes": result.notes} if result.notes else {}))
        gate_error = _gate(exporter, variant, result, parity, spec, metric, record)
        checked = experiment.export_check(keras_out, exported, result.quantized)
        if checked is not None:
            record["check"] = checked
            gate_error = gate_error or checked.get("error")
        if gate_error:  # a float variant must match Keras; a quantized one may be less accurate
            raise (Rejected if result.quantized else TinkerflowError)(gate_error)
        consumer = exporter.consumer_check(context, result, staging, golden, keras_out, exported)
        if consumer is not None:
            record["consumer"] = consumer
            if consumer.get("error"):
                raise TinkerflowError(consumer["error"])
        files = _file_records(staging, result.files)
        manifest = build_manifest(run, experiment, exporter, context, result, parity, metric, files, staging)
        if exporter.page_runtime:
            unusable = exporter.page_check(manifest)
            record["page"] = {"runtime": exporter.page_runtime[0], "usable": unusable is None,
                              **({"reason": f"not for {exporter.page_runtime[1]}: {unusable}"} if unusable else {})}
        write_json_atomic(staging / MANIFEST, manifest)
        # export.json never vouches for files that are being replaced: a kill between these
        # steps leaves the variant recorded as "replacing", with no files claimed
        previous = journal.get(exporter.name, variant)
        journal.record(exporter.name, variant, {"status": "replacing", "exported": record["exported"]})
        try:
            _replace(staging, run.export_dir / exporter.name / variant)
        except OSError:  # nothing was swapped in: the folder holds what it held, and so does export.json
            journal.put_back(exporter.name, variant, previous)
            raise
        record.update(status="passed", files=[{**f, "path": f"{exporter.name}/{variant}/{f['path']}"} for f in files],
                      manifest=f"{exporter.name}/{variant}/{MANIFEST}")
    except TinkerflowError as exc:
        record.update(status="rejected" if isinstance(exc, Rejected) else "failed", error=str(exc))
    finally:
        remove_tree(staging)
        record["seconds"] = round(time.perf_counter() - started, 3)
    return record


def _gate(exporter, variant: str, result: VariantResult, parity: dict, spec: ExportSpec, metric: dict,
          record: dict) -> str | None:
    """Why the variant fails its gate (None: it passes): a float variant's parity with Keras,
    a quantized one's metric against Keras' within the experiment's margin."""
    drop, margin = spec.metric.drop(metric["exported"], metric["keras"]), spec.margin
    record["gate"] = {}
    if not result.quantized:
        tolerance = exporter.tolerances.get(variant, 1e-4)
        record["gate"] = {"kind": "parity", "tolerance": tolerance}
        if not parity["max_rel_diff"] <= tolerance:
            return (f"{exporter.name}/{variant} differs from Keras by {parity['max_rel_diff']:.3g} (relative), "
                    f"expected at most {tolerance:g}")
        return None
    record["gate"] = {"kind": "metric", "margin": margin, "drop": drop}
    if not drop <= margin:
        return (f"{exporter.name}/{variant} {metric['name']} is {metric['exported']:.4g} against Keras' "
                f"{metric['keras']:.4g}; expected a drop of at most {margin:g}")
    return None


def compare(reference: dict, candidate: dict) -> dict:
    """Max absolute and relative (to the reference's largest magnitude) difference over all outputs."""
    max_abs, scale, count = 0.0, 0.0, 0
    for name, ref in reference.items():
        if name not in candidate:
            raise TinkerflowError(f"the exported model has no output '{name}'; it has {', '.join(candidate)}")
        ref = np.asarray(ref, dtype="float64")
        got = np.asarray(candidate[name], dtype="float64").reshape(ref.shape)
        max_abs = max(max_abs, float(np.max(np.abs(ref - got))) if ref.size else 0.0)
        scale = max(scale, float(np.max(np.abs(ref))) if ref.size else 0.0)
        count += ref.shape[0] if ref.ndim else 1
    return {"max_abs_diff": max_abs, "max_rel_diff": max_abs / max(scale, 1e-12), "golden_inputs": count}


def build_manifest(run: Run, experiment, exporter, context: ExportContext, result: VariantResult,
                   parity: dict, metric: dict, files: list[dict], folder: Path) -> dict:
    """The deploy manifest: everything a page or an app needs to use the bundle."""
    model = context.model
    inputs = [{"name": name, "shape": _shape(t.shape), "dtype": str(t.dtype)}
              for name, t in zip(context.input_names, model.inputs)]
    outputs = [{"name": name, "shape": _shape(t.shape), "dtype": str(t.dtype)}
               for name, t in zip(context.output_names, model.outputs)]
    fields = {"file": files[0]["path"], "inputs": inputs, "outputs": outputs, "signature": "serving_default",
              **exporter.manifest_fields(context, result, folder)}
    # the first golden row of each input, for pages without a widget of their own; big ones (an
    # image) are left out: they would make every page load a larger manifest than model
    examples = {name: np.asarray(v)[:1].tolist()
                for name, v in zip(context.input_names, _as_list(experiment.example_inputs()))
                if np.asarray(v)[:1].size <= MAX_EXAMPLE_VALUES}
    return {
        "tinkerflow_manifest": 1,
        "experiment": experiment.name,
        "run": run.path.name,
        "format": exporter.name,
        "variant": result.variant,
        "quantized": result.quantized,
        "files": [{"path": f["path"], "bytes": f["bytes"], "sha256": f["sha256"]} for f in files],
        "bytes": sum(f["bytes"] for f in files),
        **fields,
        **experiment.deploy_info().manifest(),
        "config": run.read_info().get("config", {}).get("experiment", {}),
        "example_inputs": examples,
        "parity": parity,
        "metric": metric,
        "created": now_iso(),
    }


def _applicable(registry, chosen: dict[str, list[str]], experiment, explicit: bool) -> dict[str, list[str]]:
    """``chosen`` without the variants that do not apply to the experiment; one asked for by
    name that does not apply is refused."""
    kept: dict[str, list[str]] = {}
    for fmt, variants in chosen.items():
        exporter = registry.exporter(fmt)()
        kept[fmt] = []
        for variant in variants:
            reason = exporter.unsupported(variant, experiment)
            if reason and explicit:
                raise TinkerflowError(f"variant {fmt}/{variant} does not apply to this run: {reason}")
            if not reason:
                kept[fmt].append(variant)
    return kept


def _about(run: Run, experiment) -> dict:
    return {"name": f"{experiment.name} ({run.path.name})",
            "description": type(experiment).description or experiment.name,
            "version": run.path.name, "author": f"tinkerflow {versions().get('tinkerflow', '')}".strip()}


def _shape(shape) -> list:
    return [None if d is None else int(d) for d in shape]


def _file_records(folder: Path, names: list[str]) -> list[dict]:
    records = []
    for name in names:
        path = folder / name
        if Path(name).is_absolute() or ".." in Path(name).parts or not path.is_file() or path.is_symlink():
            raise TinkerflowError(f"the exporter lists '{name}' among its files; expected names of files it wrote "
                                  "inside its own folder")
        records.append({"path": name, "bytes": path.stat().st_size,
                        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "abs": str(path)})
    return records


def _replace(staging: Path, target: Path) -> None:
    """Put a copy of ``staging`` where ``target`` is (see :func:`replace_folder`): ``target`` is
    never half-written."""
    keep = make_staging(target.parent, f".final-{target.name}-")
    remove_tree(keep)
    copy_tree_regular(staging, keep, staging)
    replace_folder(keep, target)


class ExportJournal:
    """``export.json``, rewritten (atomically) after every change to a variant's folder, so
    that what it says is true of the files whenever the process dies."""

    def __init__(self, run: Run):
        self.run = run
        self.path = run.path / EXPORT_FILE
        self.formats = read_export_record(self.path).get("formats", {})

    def get(self, fmt: str, variant: str) -> dict | None:
        """What export.json records for one variant now (None: nothing)."""
        return self.formats.get(fmt, {}).get("variants", {}).get(variant)

    def put_back(self, fmt: str, variant: str, record: dict | None) -> None:
        """Record ``record`` (from :meth:`get`) again, or nothing for the variant when None."""
        if record is not None:
            self.record(fmt, variant, record)
            return
        self.formats.get(fmt, {}).get("variants", {}).pop(variant, None)
        if fmt in self.formats and not self.formats[fmt].get("variants"):
            del self.formats[fmt]
        self._write()

    def record(self, fmt: str, variant: str, record: dict) -> None:
        entry = self.formats.setdefault(fmt, {"variants": {}})
        entry.setdefault("variants", {})[variant] = {
            **record, "files": [{k: v for k, v in f.items() if k != "abs"} for f in record.get("files", [])]}
        if not entry["variants"][variant]["files"]:
            del entry["variants"][variant]["files"]
        self._write()

    def _write(self) -> None:
        for entry in self.formats.values():
            statuses = [v["status"] for v in entry.get("variants", {}).values()]
            entry["status"] = "passed" if all(s == "passed" for s in statuses) else (
                "partial" if any(s == "passed" for s in statuses) else "failed")
        write_json_atomic(self.path, {"run": self.run.path.name, "experiment": self.run.experiment_name,
                                      "updated": now_iso(), "formats": self.formats})


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _keras_named(model, inputs: list, output_names: list[str]) -> dict:
    import keras

    result = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    result = result if isinstance(result, (list, tuple)) else [result]
    return {name: keras.ops.convert_to_numpy(value) for name, value in zip(output_names, result)}


def _positional(named_predict, input_names: list[str], output_names: list[str]):
    """Adapt a named-in, named-out predictor to the ``predict(x)`` form experiments use."""
    def predict(x):
        arrays = _as_list(x) if len(input_names) > 1 else [x]
        out = named_predict(dict(zip(input_names, arrays)))
        values = [out[n] for n in output_names]
        return values[0] if len(values) == 1 else values
    return predict


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def main(argv: list[str] | None = None) -> int:
    """``python -m tinkerflow.exporters.pipeline RUN --format F... [--quantize V...]``: the
    export a training process on another backend asks of a TensorFlow process. The outcome
    is in ``export.json``; the exit code says whether every variant passed."""

    parser = argparse.ArgumentParser(prog="python -m tinkerflow.exporters.pipeline")
    parser.add_argument("run")
    parser.add_argument("--format", nargs="+")
    parser.add_argument("--quantize", nargs="+")
    args = parser.parse_args(argv)
    try:
        return 0 if export_run(args.run, make_plugin_manager(), args.format, args.quantize).ok else 1
    except TinkerflowError as exc:
        print(f"tinkerflow: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
