"""Keras model -> TF SavedModel with a serving signature whose names mean something."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.exporter import ExportContext

#: the signature that also returns the layers a page shows (``deploy_info().intermediate_layers``)
INTERMEDIATE_SIGNATURE = "with_intermediate"  # sorts after serving_default: LiteRT.js runs the first by default


def tensor_names(model: Any) -> tuple[list[str], list[str]]:
    """Input names (from ``keras.Input(name=...)``) and output names (the output layers' names)."""
    inputs = [t.name for t in model.inputs]
    outputs = []
    for tensor in model.outputs:
        history = getattr(tensor, "_keras_history", None)
        outputs.append(history.operation.name if history else tensor.name)
    if len(set(outputs)) != len(outputs):
        outputs = [f"output_{i}" for i in range(len(outputs))]
    return inputs, outputs


def input_shapes(model: Any, batch: int | None) -> list[tuple]:
    """The model's input shapes with the batch dimension set to ``batch`` (None: any batch).

    A fixed batch needs every other dimension known: a one-line error names the input that
    has an unknown one."""
    shapes = []
    for tensor, name in zip(model.inputs, tensor_names(model)[0]):
        rest = tuple(tensor.shape[1:])
        if batch is not None and None in rest:
            raise TinkerflowError(f"input '{name}' has shape {tuple(tensor.shape)}; a fixed-shape export needs every "
                                  "dimension but the batch known (e.g. keras.Input(shape=(14,)))")
        shapes.append((batch, *rest))
    return shapes


def export_saved_model(model: Any, path: Path, batch: int | None = None,
                       intermediate_layers: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Write ``model`` as a SavedModel whose ``serving_default`` signature takes the model's
    named inputs, with batch dimension ``batch`` (None: any), and returns a dict keyed by the
    output layers' names. With ``intermediate_layers``, a second signature
    (:data:`INTERMEDIATE_SIGNATURE`) also returns those layers' outputs under their names."""
    import keras
    import tensorflow as tf

    inputs, outputs = tensor_names(model)
    specs = [tf.TensorSpec(shape=shape, dtype=t.dtype, name=name)
             for t, name, shape in zip(model.inputs, inputs, input_shapes(model, batch))]

    def serve(*args):
        result = model(list(args) if len(args) > 1 else args[0], training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        return {name: value for name, value in zip(outputs, result)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=specs)
    if intermediate_layers:
        missing = [n for n in intermediate_layers if n not in {layer.name for layer in model.layers}]
        if missing:
            raise TinkerflowError(
                f"deploy_info() names the layer '{missing[0]}' among intermediate_layers; expected "
                f"one of the export model's layers: {', '.join(layer.name for layer in model.layers)}"
            )
        probe = keras.Model(model.inputs, [*model.outputs, *(model.get_layer(n).output for n in intermediate_layers)])
        names = [*outputs, *intermediate_layers]

        def serve_intermediate(*args):
            result = probe(list(args) if len(args) > 1 else args[0], training=False)
            return {name: value for name, value in zip(names, result)}

        archive.track(probe)
        archive.add_endpoint(name=INTERMEDIATE_SIGNATURE, fn=serve_intermediate, input_signature=specs)
    archive.write_out(str(path), verbose=False)
    return inputs, outputs


def saved_model(context: ExportContext, batch: int | None = None, intermediate: bool = False) -> Path:
    """``context.model`` as a TF SavedModel whose ``serving_default`` signature has the named
    inputs and outputs and batch dimension ``batch`` (None: any batch); with ``intermediate``,
    also the :data:`INTERMEDIATE_SIGNATURE` signature. Written once per export, then reused."""
    key = ("saved_model", batch, intermediate and bool(context.intermediate_layers))
    if key not in context.cache:
        path = context.work_dir / f"saved_model_{batch or 'any'}{'_intermediate' if key[2] else ''}"
        export_saved_model(context.model, path, batch, context.intermediate_layers if key[2] else None)
        context.cache[key] = path
    return context.cache[key]
