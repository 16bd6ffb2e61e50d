"""Recurrent models for export: an unrolled twin with the trained weights.

A Keras LSTM/GRU runs as a while loop, which TFLite cannot convert with builtin ops
(``TensorListReserve`` needs static shapes) and tfjs can only run with ``executeAsync``.
Unrolled over a fixed number of time steps it becomes plain ops both runtimes handle.
"""

from __future__ import annotations

from typing import Any


def unrolled_twin(model: Any) -> Any:
    """A copy of ``model`` whose recurrent layers are unrolled, with the same weights.

    The model's inputs need a fixed number of time steps (``keras.Input(shape=(14,))``).
    """
    import keras

    recurrent = (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, recurrent):
            config["unroll"] = True
        return layer.__class__.from_config(config)

    for tensor in model.inputs:
        if len(tensor.shape) > 1 and tensor.shape[1] is None:
            raise ValueError(f"input '{tensor.name}' has no fixed number of time steps; an unrolled twin needs one")
    twin = keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())
    return twin
