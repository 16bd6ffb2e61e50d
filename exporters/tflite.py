"""The TFLite exporter: builtin ops only (the Python runtimes have no Flex delegate).

Variants: ``float32``; ``float16`` (weights stored as float16); ``int8_dynamic``
(dynamic-range: int8 weights, float activations); ``int8`` (full integer, calibrated on the
experiment's representative data, float32 inputs and outputs).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np

from tinkerflow.core import hookimpl

from .base import ExportContext, Exporter, VariantResult

FILE = "model.tflite"


class TFLiteExporter(Exporter):
    name = "tflite"
    description = "TensorFlow Lite flatbuffer for phones and small devices (LiteRT)"
    variants = ("float32", "float16", "int8_dynamic", "int8")
    default_variants = variants
    tolerances = {"float32": 1e-5, "float16": 5e-3}

    def convert(self, context: ExportContext, variant: str, out_dir: Path) -> VariantResult:
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_saved_model(str(context.saved_model_dir),
                                                             signature_keys=["serving_default"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if variant == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif variant == "int8_dynamic":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        elif variant == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = _representative(context)
        elif variant != "float32":
            raise ValueError(f"unknown tflite variant {variant!r}")
        flatbuffer = converter.convert()
        (out_dir / FILE).write_bytes(flatbuffer)
        return VariantResult(variant=variant, files=[FILE], quantized=variant in {"int8_dynamic", "int8"})

    def load(self, bundle_dir: Path, result: VariantResult):
        from . import runtime

        return runtime.load(bundle_dir / FILE)

    def converter_versions(self) -> dict[str, str]:
        from . import runtime

        return {"tensorflow": importlib.metadata.version("tensorflow"), "runtime": runtime.tflite_runtime_name()}


def _representative(context: ExportContext):
    names = context.input_names
    dtypes = [str(t.dtype) for t in context.model.inputs]

    def batches():
        for batch in context.experiment.representative_data():
            arrays = batch if isinstance(batch, (list, tuple)) else [batch]
            if isinstance(batch, dict):
                arrays = [batch[n] for n in names]
            for i in range(len(arrays[0])):
                yield {name: np.asarray(a[i : i + 1], dtype=dtype) for name, a, dtype in zip(names, arrays, dtypes)}

    return batches


@hookimpl
def register_exporters(register):
    register(TFLiteExporter)
