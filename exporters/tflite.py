"""The TFLite exporter: builtin ops only (the Python runtimes have no Flex delegate).

Every file has a ``serving_default`` signature with the manifest's input and output names
and **static shapes**: the batch is the experiment's ``inference_batch``. With a known batch
LiteRT picks its fast kernels (the dcgan generator ran 2.3x faster in float32 and 6x in
int8 than with a dynamic batch), and LiteRT.js accepts no other kind of model. Where the
experiment lists ``intermediate_layers`` a second signature, ``intermediate``, also returns
them (the addition page shows its hidden layer).

Variants: ``float32``; ``float16`` (weights stored as float16); ``int8_dynamic``
(dynamic-range: int8 weights, float activations); ``int8`` (full integer, calibrated on the
experiment's representative data, float32 inputs and outputs); ``uint8_io`` (``int8`` with
uint8 inputs and outputs, for experiments whose ``integer_io`` says a byte carries them:
what phone camera pipelines hand over and LiteRT.js takes); ``float32_any_batch`` (float32
with a dynamic batch dimension, for batched Python inference; slower, and not for LiteRT.js).

Every file carries TFLite metadata (:mod:`.tflite_metadata`): the run's name, description and
version and a description of each input and output; an image classifier's also has the
input's normalization and its labels, which MediaPipe Tasks' ImageClassifier needs.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from tinkerflow.core import DeployInfo, hookimpl
from tinkerflow.core.exporter import ExportContext, Exporter, VariantResult
from tinkerflow.core.runfs import write_atomic

from . import runtime
from .litertjs import write_assets
from .mediapipe_check import check_image_classifier
from .mediapipe_web import write_assets as write_mediapipe
from .savedmodel import INTERMEDIATE_SIGNATURE, saved_model
from .tflite_metadata import ModelInfo, TensorInfo, write_metadata

FILE = "model.tflite"
ANY_BATCH = "float32_any_batch"
MEDIAPIPE_RUNTIME = ("mediapipe", "MediaPipe Tasks")
#: the tensor types LiteRT.js's JavaScript ``Tensor`` takes and gives
PAGE_DTYPES = ("float32", "int32", "uint8")


class TFLiteExporter(Exporter):
    name = "tflite"
    description = "TensorFlow Lite flatbuffer for phones and small devices (LiteRT)"
    variants = ("float32", "float16", "int8_dynamic", "int8", "uint8_io", ANY_BATCH)
    default_variants = variants
    tolerances = {"float32": 1e-5, "float16": 5e-3, ANY_BATCH: 1e-5}
    page_runtime = ("litertjs", "LiteRT.js")

    def convert(self, context: ExportContext, variant: str, out_dir: Path) -> VariantResult:
        import tensorflow as tf

        fixed = variant != ANY_BATCH
        both = fixed and context.intermediate_layers
        signatures = ["serving_default", INTERMEDIATE_SIGNATURE] if both else ["serving_default"]
        saved = saved_model(context, context.inference_batch if fixed else None, intermediate=len(signatures) > 1)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=signatures)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if variant == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif variant == "int8_dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif variant in ("int8", "uint8_io"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = _representative(context, signatures)
            if variant == "uint8_io":
                converter.inference_input_type = converter.inference_output_type = tf.uint8
        elif variant not in ("float32", ANY_BATCH):
            raise ValueError(f"unknown tflite variant {variant!r}")
        flatbuffer = write_metadata(converter.convert(), model_info(context))
        write_atomic(out_dir / FILE, flatbuffer)
        return VariantResult(variant=variant, files=[FILE], quantized=variant in {"int8_dynamic", "int8", "uint8_io"})

    def unsupported(self, variant: str, experiment) -> str | None:
        if variant == "uint8_io" and not type(experiment).export_spec.integer_io:
            return (f"the {experiment.name} model's inputs and outputs are not all quantities a byte carries "
                    "(its export_spec.integer_io is False)")
        return None

    def consumer_check(self, context: ExportContext, result: VariantResult, folder: Path,
                       golden: dict, reference: dict, exported: dict) -> dict | None:
        """An image classifier's file must run as it is in MediaPipe Tasks' ImageClassifier."""
        experiment = context.experiment
        spec = type(experiment).export_spec
        if spec.image_classifier is None:
            return None
        image, scores = context.input_names[0], context.output_names[0]
        needed = 1.0 - spec.margin if result.quantized else 1.0
        return check_image_classifier(folder / FILE, golden[image], list(experiment.deploy_info().labels),
                                      reference[scores], exported[scores], context.require_consumers, needed)

    def load(self, bundle_dir: Path, result: VariantResult):
        return runtime.load(bundle_dir / FILE)

    def converter_versions(self) -> dict[str, str]:
        return {"tensorflow": importlib.metadata.version("tensorflow"), "runtime": runtime.tflite_runtime_name()}

    def manifest_fields(self, context: ExportContext, result: VariantResult, folder: Path) -> dict:
        """The file, and its inputs and outputs as the file itself declares them (static
        shapes: the batch is a number), with the names of its signatures."""
        model = runtime.TFLiteModel(folder / FILE)
        try:
            inputs = {spec["name"]: spec for spec in model.input_specs()}
            outputs = {spec["name"]: spec for spec in model.output_specs()}
        finally:
            model.close()
        # in the model's own order (the file's signature lists names alphabetically)
        return {"file": FILE, "inputs": [inputs[n] for n in context.input_names],
                "outputs": [outputs[n] for n in context.output_names], "signatures": model.signatures}

    def page_check(self, manifest: dict) -> str | None:
        for kind in ("inputs", "outputs"):
            for tensor in manifest.get(kind, []):
                if any(not isinstance(d, int) or d < 0 for d in tensor["shape"]):
                    return (f"{kind[:-1]} '{tensor['name']}' has shape {tensor['shape']}: LiteRT.js runs only "
                            "fixed shapes")
                if tensor["dtype"] not in PAGE_DTYPES:
                    return (f"{kind[:-1]} '{tensor['name']}' is {tensor['dtype']}: LiteRT.js tensors are "
                            f"{', '.join(PAGE_DTYPES)}")
        return None

    def extra_page_runtimes(self, experiment) -> list[tuple[str, str]]:
        """An image classifier's files also run in MediaPipe Tasks, as apps run them."""
        return [MEDIAPIPE_RUNTIME] if type(experiment).export_spec.image_classifier is not None else []

    def page_assets(self, folder: Path, modules: Path, runtime: str | None = None) -> str:
        if runtime == MEDIAPIPE_RUNTIME[0]:
            return write_mediapipe(folder, modules)
        return write_assets(folder, modules)


def model_info(context: ExportContext) -> ModelInfo:
    """The metadata a file of this export carries (see :mod:`.tflite_metadata`)."""
    experiment = context.experiment
    info = experiment.deploy_info() if experiment is not None else DeployInfo()
    described = info.description
    tensors = {name: TensorInfo(name, str(described.get(name, "")))
               for name in context.input_names + context.output_names}
    spec = type(experiment).export_spec.image_classifier if experiment is not None else None
    if spec is not None:
        image, scores = tensors[context.input_names[0]], tensors[context.output_names[0]]
        image.image, image.normalization, image.value_range = True, (list(spec.mean), list(spec.std)), (0, 255)
        scores.labels, scores.value_range = list(info.labels), (0, 1)
    name = experiment.name if experiment is not None else context.model.name
    return ModelInfo(name=context.about.get("name", name),
                     description=context.about.get("description", getattr(type(experiment), "description", "")),
                     version=context.about.get("version", ""), author=context.about.get("author", "tinkerflow"),
                     tensors=tensors)


def _representative(context: ExportContext, signatures: list[str]):
    """Calibration batches of the file's fixed batch, for each of its signatures."""
    names = context.input_names
    dtypes = [str(t.dtype) for t in context.model.inputs]
    size = context.inference_batch

    def rows():
        for batch in context.experiment.representative_data():
            arrays = batch if isinstance(batch, (list, tuple)) else [batch]
            if isinstance(batch, dict):
                arrays = [batch[n] for n in names]
            for i in range(len(arrays[0])):
                yield [np.asarray(a[i : i + 1], dtype=dtype) for a, dtype in zip(arrays, dtypes)]

    def batches():
        pool = list(rows())
        for start in range(0, len(pool), size):
            chunk = [pool[(start + k) % len(pool)] for k in range(size)]
            named = {name: np.concatenate([row[p] for row in chunk]) for p, name in enumerate(names)}
            for signature in signatures:
                yield (signature, named) if len(signatures) > 1 else named

    return batches


@hookimpl
def register_exporters(register):
    register(TFLiteExporter)
