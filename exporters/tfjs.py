"""The TensorFlow.js exporter: a graph model (tfjs 4.22 cannot load Keras 3 layers models).

Keras model -> SavedModel with a named signature -> ``convert_tf_saved_model``. Variants:
``float32``, and the converter's weight quantization ``float16`` and ``uint8`` (weights
are stored quantized and expanded to float32 when the model loads).
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from tinkerflow.core import hookimpl

from .base import ExportContext, Exporter, VariantResult
from .tfjs_graph import unfuse_unsupported_activations


def _converter():
    # tensorflowjs imports tensorflow_decision_forests, which prints an advert on import (and,
    # when stdout is not a terminal or a file, tries to show it with IPython)
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    from tensorflowjs.converters import tf_saved_model_conversion_v2

    return tf_saved_model_conversion_v2


class TFJSExporter(Exporter):
    name = "tfjs"
    description = "TensorFlow.js graph model for web pages (tf.loadGraphModel)"
    variants = ("float32", "float16", "uint8")
    default_variants = variants
    tolerances = {"float32": 1e-5, "float16": 5e-3}

    def convert(self, context: ExportContext, variant: str, out_dir: Path) -> VariantResult:
        quantization = {"float32": None, "float16": {"float16": True}, "uint8": {"uint8": True}}
        if variant not in quantization:
            raise ValueError(f"unknown tfjs variant {variant!r}")
        _converter().convert_tf_saved_model(str(context.saved_model_dir), str(out_dir),
                                            quantization_dtype_map=quantization[variant])
        split = unfuse_unsupported_activations(out_dir / "model.json")
        files = sorted(p.name for p in out_dir.iterdir() if p.is_file())
        return VariantResult(variant=variant, files=files, quantized=variant == "uint8",
                             notes={"unfused_activations": split} if split else {})

    def load(self, bundle_dir: Path, result: VariantResult):
        from .runtime import TFJSModel

        return TFJSModel(bundle_dir)

    def converter_versions(self) -> dict[str, str]:
        import json

        from .node import node_modules

        tfjs_npm = json.loads((node_modules() / "@tensorflow" / "tfjs" / "package.json").read_text())["version"]
        return {"tensorflowjs": importlib.metadata.version("tensorflowjs"),
                "tensorflow": importlib.metadata.version("tensorflow"), "@tensorflow/tfjs (node check)": tfjs_npm}


@hookimpl
def register_exporters(register):
    register(TFJSExporter)
