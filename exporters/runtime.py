"""Run exported models without Keras: ``load(path).predict(x)``.

``path`` may be a ``.tflite`` file, a tfjs bundle folder or its ``model.json``, or a
variant folder holding a deploy ``manifest.json``. TFLite files run in LiteRT
(``ai-edge-litert``); where it is missing, ``tflite-runtime`` (its predecessor, which only
works with numpy < 2) and then ``tf.lite`` are tried. Set ``TINKERFLOW_TFLITE_RUNTIME`` to
``litert``, ``tflite_runtime`` or ``tensorflow`` to choose one. tfjs bundles run in Node.js
with the pinned ``@tensorflow/tfjs``.

::

    from tinkerflow.exporters import runtime
    model = runtime.load("runs/addition/<run>/export/tflite/float32/model.tflite")
    model.predict([[2, 2]])          # -> array([[4.01]], dtype=float32)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.records import read_manifest, read_tfjs_model_json
from tinkerflow.core.tf_quiet import import_keras

from .node import TFJSWorker

_RUNTIMES = ("litert", "tflite_runtime", "tensorflow")
_ndarray = np.ndarray


def _interpreter_class(name: str | None = None):
    chosen = name or os.environ.get("TINKERFLOW_TFLITE_RUNTIME")
    order = [chosen] if chosen else list(_RUNTIMES)
    errors = []
    for candidate in order:
        try:
            if candidate == "litert":
                from ai_edge_litert.interpreter import Interpreter
            elif candidate == "tflite_runtime":
                from tflite_runtime.interpreter import Interpreter
            elif candidate == "tensorflow":
                import_keras()
                import tensorflow as tf

                Interpreter = tf.lite.Interpreter
            else:
                raise ImportError(f"unknown runtime {candidate!r}; expected one of {', '.join(_RUNTIMES)}")
            return candidate, Interpreter
        except Exception as exc:  # tflite-runtime raises AttributeError/ImportError under numpy 2
            errors.append(f"{candidate}: {type(exc).__name__}: {exc}")
    raise TinkerflowError("no TFLite runtime could be loaded (" + "; ".join(errors) + ")")


def tflite_runtime_name() -> str:
    return _interpreter_class()[0]


class TFLiteModel:
    """A ``.tflite`` file in a TFLite interpreter, called through its serving signature."""

    def __init__(self, path: Path | str, runtime: str | None = None, num_threads: int = 1,
                 signature: str = "serving_default", dequantize: bool = True):
        self.path = Path(path)
        #: outputs of integer type (a uint8 file's) come back as floats; False: as the file gives them
        self.dequantize = dequantize
        self.runtime, interpreter_cls = _interpreter_class(runtime)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tf.lite.Interpreter announces its deprecation
                self.interpreter = interpreter_cls(model_path=str(self.path), num_threads=num_threads)
        except Exception as exc:
            detail = " ".join(str(exc).split())[:200]
            raise TinkerflowError(f"{self.path}: not a loadable TFLite model ({detail})") from exc
        signatures = self.interpreter.get_signature_list()
        self.signatures = sorted(signatures)
        self._runner = None
        if signature != "serving_default" and signature not in signatures:
            raise TinkerflowError(f"{self.path} has no signature '{signature}'; it has "
                                  f"{', '.join(self.signatures) or 'none'}")
        if signature in signatures:
            runner = self.interpreter.get_signature_runner(signature)
            self.input_names = list(signatures[signature]["inputs"])
            self.output_names = list(signatures[signature]["outputs"])
            in_details = runner.get_input_details()
            out_details = runner.get_output_details()
            self._inputs = [in_details[n]["index"] for n in self.input_names]
            self._outputs = [out_details[n]["index"] for n in self.output_names]
            main = {d["name"] for d in self.interpreter.get_input_details()}
            if {d["name"] for d in in_details.values()} != main:
                # not the interpreter's main subgraph: its tensors are reached only through the runner
                self._runner = runner
                self._in_details = [in_details[n] for n in self.input_names]
                self._out_details = {out_details[n]["index"]: out_details[n] for n in self.output_names}
            del runner  # it holds the interpreter's internals, which allocate_tensors refuses
        else:
            details = self.interpreter.get_input_details()
            self.input_names = [d["name"] for d in details]
            self._inputs = [d["index"] for d in details]
            out = self.interpreter.get_output_details()
            self.output_names = [d["name"] for d in out]
            self._outputs = [d["index"] for d in out]
        if self._runner is None:
            by_index = {d["index"]: d for d in self.interpreter.get_input_details()}
            self._out_details = {d["index"]: d for d in self.interpreter.get_output_details()}
            self._in_details = [by_index[i] for i in self._inputs]
        self._dtypes = [d["dtype"] for d in self._in_details]
        self._in_scales = [_quantization(d) for d in self._in_details]
        self._out_scales = [_quantization(self._out_details[i]) for i in self._outputs]
        self._shapes = [tuple(int(x) for x in d["shape"]) for d in self._in_details]
        batches = {int(d["shape_signature"][0]) for d in self._in_details if len(d["shape_signature"])}
        #: the batch every call of a fixed-shape file takes (None: any batch)
        self.fixed_batch = batches.pop() if len(batches) == 1 and all(
            -1 not in d["shape_signature"] for d in self._in_details) else None
        if self._runner is None:  # a runner allocates its own subgraph
            self.interpreter.allocate_tensors()
        self._static = self._runner is None and self._outputs_static()
        self._attach_views()

    # The fast path. The interpreter's Python ``invoke`` refuses to run while numpy views of
    # its tensors exist, so a plain predict pays for set_tensor + invoke + get_tensor (about
    # 3x a bare invoke). With one input and one output we keep views of both tensors and
    # call the C++ Invoke directly; the views are dropped before any resize or reallocation
    # and taken again afterwards, which is what the safety check protects.
    # An output whose size is only known while the model runs (e.g. after Conv2DTranspose) has
    # no buffer right after allocation and may get a new one on every run: no fast path then.
    def _attach_views(self) -> None:
        self._fast_shape = None  # disables the fast path until the views below exist
        self._in = self._out_copy = self._invoke_c = None
        quantized_io = any(self._in_scales) or (self.dequantize and any(self._out_scales))
        single = len(self._inputs) == 1 and len(self._outputs) == 1
        if self._static and not quantized_io and single and hasattr(self.interpreter, "_interpreter"):
            self._in = self.interpreter.tensor(self._inputs[0])()
            self._out_copy = self.interpreter.tensor(self._outputs[0])().copy
            self._invoke_c = self.interpreter._interpreter.Invoke
            self._fast_dtype = np.dtype(self._dtypes[0])
            self._fast_shape = self._shapes[0]

    def _outputs_static(self) -> bool:
        """Call right after allocate_tensors: are all outputs in the static arena?"""
        try:
            for index in self._outputs:
                self.interpreter.tensor(index)()
        except ValueError:
            return False
        return True

    def predict(self, x: Any, *more: Any) -> Any:
        """Inputs in signature order; returns one array, or a list for several outputs."""
        if more or x.__class__ is not _ndarray or x.shape != self._fast_shape or x.dtype != self._fast_dtype:
            return self._predict_general((x, *more))
        self._in[...] = x
        self._invoke_c()
        return self._out_copy()

    def input_specs(self) -> list[dict]:
        """``{name, shape, dtype}`` of each input as the file declares it (None: any size)."""
        return [_spec(name, d) for name, d in zip(self.input_names, self._in_details)]

    def output_specs(self) -> list[dict]:
        return [_spec(name, self._out_details[i]) for name, i in zip(self.output_names, self._outputs)]

    def input_positions(self) -> list[str] | None:
        """The signature's input names in the order index-based APIs (``input(at: i)``) take
        them: the main subgraph's; None when the signature is not the main subgraph."""
        main = [d["index"] for d in self.interpreter.get_input_details()]
        by_index = {d["index"]: name for name, d in zip(self.input_names, self._in_details)}
        return [by_index[i] for i in main] if self._runner is None and set(main) == set(by_index) else None

    def _predict_general(self, inputs: tuple) -> Any:
        arrays = [quantize(np.asarray(value), dtype, scale) if scale else np.asarray(value, dtype=dtype)
                  for value, dtype, scale in zip(inputs, self._dtypes, self._in_scales)]
        sizes = {len(a) for a in arrays if a.ndim}
        if self.fixed_batch is not None and sizes and sizes != {self.fixed_batch}:
            return self._predict_in_fixed_batches(arrays, sizes.pop() if len(sizes) == 1 else None)
        return self._run(arrays)

    def _predict_in_fixed_batches(self, arrays: list[np.ndarray], total: int | None) -> Any:
        """A fixed-shape file runs any batch in calls of its own batch, the last one padded."""
        if total is None:
            raise TinkerflowError(f"{self.path}: the inputs have different batch sizes "
                                  f"({', '.join(str(len(a)) for a in arrays)}); expected one batch for all")
        size, parts = self.fixed_batch, []
        for start in range(0, total, size):
            chunk = [a[start:start + size] for a in arrays]
            short = size - len(chunk[0])
            if short:
                chunk = [np.concatenate([c, np.repeat(c[-1:], short, axis=0)]) for c in chunk]
            result = self._run(chunk)
            parts.append(result if isinstance(result, list) else [result])
        outputs = [np.concatenate([p[k] for p in parts])[:total] for k in range(len(parts[0]))]
        return outputs[0] if len(outputs) == 1 else outputs

    def _run(self, arrays: list[np.ndarray]) -> Any:
        if self._runner is not None:
            named = self._runner(**dict(zip(self.input_names, arrays)))
            return self._finish([named[n] for n in self.output_names])
        self._fast_shape = None
        self._in = self._out_copy = self._invoke_c = None  # no view may outlive a reallocation
        resized = [p for p, array in enumerate(arrays) if array.shape != self._shapes[p]]
        for position in resized:  # all inputs first: a batch size must agree across them
            self.interpreter.resize_tensor_input(self._inputs[position], list(arrays[position].shape))
            self._shapes[position] = arrays[position].shape
        if resized:
            self.interpreter.allocate_tensors()
            self._static = self._outputs_static()
        for position, array in enumerate(arrays):
            self.interpreter.set_tensor(self._inputs[position], array)
        self.interpreter.invoke()
        outputs = [self.interpreter.get_tensor(i) for i in self._outputs]
        self._attach_views()
        return self._finish(outputs)

    def _finish(self, outputs: list[np.ndarray]) -> Any:
        if self.dequantize:
            outputs = [((o.astype(np.float32) - scale[1]) * scale[0]).astype(np.float32) if scale else o
                       for o, scale in zip(outputs, self._out_scales)]
        return outputs[0] if len(outputs) == 1 else outputs

    def close(self) -> None:
        self._fast_shape = None
        self._in = self._out_copy = self._invoke_c = None

    def predict_named(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.predict(*(inputs[n] for n in self.input_names))
        result = result if isinstance(result, list) else [result]
        return {n: np.array(r) for n, r in zip(self.output_names, result)}


def _spec(name: str, detail: dict) -> dict:
    shape = [None if d < 0 else int(d) for d in detail["shape_signature"]]
    spec = {"name": name, "shape": shape, "dtype": np.dtype(detail["dtype"]).name}
    scale = _quantization(detail)
    if scale:
        spec["quantization"] = {"scale": scale[0], "zero_point": scale[1]}
    return spec


def _quantization(detail: dict) -> tuple[float, int] | None:
    """(scale, zero point) of an integer tensor that stands for real numbers, else None:
    ``real = (stored - zero_point) * scale``."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not np.issubdtype(detail["dtype"], np.integer) or not scale:
        return None
    return float(scale), int(zero_point)


def quantize(values: np.ndarray, dtype, scale: tuple[float, int]) -> np.ndarray:
    """Real numbers into a quantized tensor's integers; integers of its own type pass as they are."""
    if values.dtype == dtype:
        return values
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale[0] + scale[1]), info.min, info.max).astype(dtype)


class TFJSModel:
    """A tfjs graph model bundle, run in Node.js with the pinned @tensorflow/tfjs."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        model_json = read_tfjs_model_json(self.folder / "model.json")
        signature = model_json.get("signature") or {}
        # the converter keys some signatures by tensor name ("latent:0"): keep the plain name
        self.input_nodes = {key.split(":")[0]: spec.get("name", key).split(":")[0]
                            for key, spec in signature.get("inputs", {}).items()}
        self.input_names = list(self.input_nodes)
        self.output_nodes = {name: spec["name"].split(":")[0] for name, spec in signature.get("outputs", {}).items()}
        self.output_names = list(self.output_nodes)
        self.runtime = "tfjs-node-cpu"

        self._worker = None

    def run(self, inputs: dict[str, np.ndarray], repeat: int = 0) -> dict:
        """The Node worker's full reply: outputs, backend, and ``timings_ms`` of ``repeat`` timed runs."""
        if self._worker is None:
            self._worker = TFJSWorker(self.folder)
        feeds = {self.input_nodes[name]: np.asarray(inputs[name]) for name in self.input_names}
        return self._worker.run(feeds, self.output_nodes, repeat=repeat)

    def predict_named(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.run(inputs)["outputs"]

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def predict(self, *inputs: Any) -> Any:
        outputs = self.predict_named(dict(zip(self.input_names, inputs)))
        values = [outputs[n] for n in self.output_names]
        return values[0] if len(values) == 1 else values


def load(path: Path | str, runtime: str | None = None):
    """Load an exported model for inference (see the module docstring for accepted paths)."""
    path = Path(path)
    if not path.exists():
        raise TinkerflowError(f"'{path}' does not exist; expected a .tflite file, a tfjs bundle or an export variant "
                              "folder")
    if path.is_dir() and (path / "manifest.json").is_file():
        name = read_manifest(path / "manifest.json")["file"]
        if Path(name).name != name or name.startswith("."):
            raise TinkerflowError(f"{path / 'manifest.json'} names the file {name!r}; expected a file name in its "
                                  "own folder")
        return load(path / name, runtime)
    if path.suffix == ".tflite":
        return TFLiteModel(path, runtime)
    if path.name == "model.json":
        return TFJSModel(path.parent)
    if path.is_dir() and (path / "model.json").is_file():
        return TFJSModel(path)
    raise TinkerflowError(f"'{path}' is not an exported model; expected a .tflite file, a tfjs bundle or an export "
                          "variant folder")
