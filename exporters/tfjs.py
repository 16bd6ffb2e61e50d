"""The TensorFlow.js exporter: a graph model (tfjs 4.22 cannot load Keras 3 layers models).

The converter is loaded by :mod:`.tfjs_converter` (tensorflowjs without its TF 2.19 pins).

Keras model -> SavedModel with a named signature -> ``convert_tf_saved_model``. Variants:
``float32``, and the converter's weight quantization ``float16`` and ``uint8`` (weights
are stored quantized and expanded to float32 when the model loads).
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

from tinkerflow.core import hookimpl
from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.exporter import ExportContext, Exporter, VariantResult
from tinkerflow.core.npm import node_modules
from tinkerflow.core.runfs import copy_file

from .runtime import TFJSModel
from .savedmodel import saved_model
from .tfjs_converter import converter, not_installed
from .tfjs_graph import layer_output_nodes, unfuse_unsupported_activations

PAGE_MODULE = Path(__file__).parent / "web" / "tfjs_page.js"


class TFJSExporter(Exporter):
    name = "tfjs"
    description = "TensorFlow.js graph model for web pages (tf.loadGraphModel)"
    variants = ("float32", "float16", "uint8")
    default_variants = variants
    tolerances = {"float32": 1e-5, "float16": 5e-3}
    page_runtime = ("tfjs", "TensorFlow.js")

    def convert(self, context: ExportContext, variant: str, out_dir: Path) -> VariantResult:
        quantization = {"float32": None, "float16": {"float16": True}, "uint8": {"uint8": True}}
        if variant not in quantization:
            raise ValueError(f"unknown tfjs variant {variant!r}")
        converter().convert_tf_saved_model(str(saved_model(context)), str(out_dir),
                                            quantization_dtype_map=quantization[variant])
        split = unfuse_unsupported_activations(out_dir / "model.json")
        files = sorted(p.name for p in out_dir.iterdir() if p.is_file())
        return VariantResult(variant=variant, files=files, quantized=variant == "uint8",
                             notes={"unfused_activations": split} if split else {})

    @classmethod
    def unavailable(cls) -> str | None:
        return not_installed()

    def load(self, bundle_dir: Path, result: VariantResult):
        return TFJSModel(bundle_dir)

    def manifest_fields(self, context: ExportContext, result: VariantResult, folder: Path) -> dict:
        """``model.json``, each input's and output's graph node, and the nodes of the
        experiment's ``intermediate_layers`` (``intermediate``: layer name -> node)."""
        model_json = folder / "model.json"
        signature = json.loads(model_json.read_text()).get("signature", {})
        spec_in, spec_out = signature.get("inputs", {}), signature.get("outputs", {})
        inputs = [{**t, "node": (spec_in.get(t["name"]) or spec_in.get(f"{t['name']}:0") or {}).get("name", t["name"])}
                  for t in _keras_specs(context.model.inputs, context.input_names)]
        outputs = [{**t, "node": spec_out.get(t["name"], {}).get("name")}
                   for t in _keras_specs(context.model.outputs, context.output_names)]
        fields = {"file": "model.json", "inputs": inputs, "outputs": outputs}
        if context.intermediate_layers:
            fields["intermediate"] = layer_output_nodes(model_json, context.intermediate_layers)
        return fields

    def page_assets(self, folder: Path, modules: Path, runtime: str | None = None) -> str:
        wasm_dist = modules / "@tensorflow" / "tfjs-backend-wasm" / "dist"
        if not (wasm_dist / "tf-backend-wasm.es2017.min.js").is_file():
            raise TinkerflowError(f"the pinned @tensorflow/tfjs-backend-wasm is missing from {modules}; "
                                  "run 'tinkerflow install-tfjs' (or make setup)")
        copy_file(modules / "@tensorflow" / "tfjs" / "dist" / "tf.es2017.min.js", folder / "tf.min.js")
        copy_file(wasm_dist / "tf-backend-wasm.es2017.min.js", folder / "tf-backend-wasm.min.js")
        for binary in ("tfjs-backend-wasm.wasm", "tfjs-backend-wasm-simd.wasm"):  # threaded needs a blob: worker
            copy_file(wasm_dist / binary, folder / binary)
        copy_file(PAGE_MODULE, folder / PAGE_MODULE.name)
        return PAGE_MODULE.name

    def converter_versions(self) -> dict[str, str]:
        tfjs_npm = json.loads((node_modules() / "@tensorflow" / "tfjs" / "package.json").read_text())["version"]
        return {"tensorflowjs": importlib.metadata.version("tensorflowjs"),
                "tensorflow": importlib.metadata.version("tensorflow"), "@tensorflow/tfjs (node check)": tfjs_npm}


def _keras_specs(tensors, names: list[str]) -> list[dict]:
    return [{"name": name, "shape": [None if d is None else int(d) for d in t.shape], "dtype": str(t.dtype)}
            for name, t in zip(names, tensors)]


@hookimpl
def register_exporters(register):
    register(TFJSExporter)
