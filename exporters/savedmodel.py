"""Keras model -> TF SavedModel with a serving signature whose names mean something."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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


def export_saved_model(model: Any, path: Path) -> tuple[list[str], list[str]]:
    """Write ``model`` as a SavedModel whose ``serving_default`` signature takes the model's
    named inputs and returns a dict keyed by the output layers' names."""
    import keras
    import tensorflow as tf

    inputs, outputs = tensor_names(model)
    specs = [tf.TensorSpec(shape=t.shape, dtype=t.dtype, name=name) for t, name in zip(model.inputs, inputs)]

    def serve(*args):
        result = model(list(args) if len(args) > 1 else args[0], training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        return {name: value for name, value in zip(outputs, result)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(name="serving_default", fn=serve, input_signature=specs)
    archive.write_out(str(path), verbose=False)
    return inputs, outputs
