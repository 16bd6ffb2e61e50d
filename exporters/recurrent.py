"""Recurrent models for export: an unrolled twin, and a one-step sliding-window stepper.

A Keras LSTM/GRU runs as a while loop, which TFLite cannot convert with builtin ops
(``TensorListReserve`` needs static shapes) and tfjs can only run with ``executeAsync``.
Unrolled over a fixed number of time steps it becomes plain ops both runtimes handle.

A model that reads a window of the last ``W`` tokens (each window from a zero state) and is
used to write text token by token re-reads ``W - 1`` tokens for every new one. The stepper
computes exactly the same predictions with one recurrent step per token: it carries ``W``
states, one per window still being read, advances them all by the new token in one batched
cell call, predicts from the oldest (which has now read ``W`` tokens), drops it and starts a
fresh zero state.
"""

from __future__ import annotations

from typing import Any

RECURRENT = ("LSTM", "GRU", "SimpleRNN")


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


def _chain(model: Any) -> tuple[list, list, list]:
    """The model's layers as (per-token layers, recurrent layers, head layers); refuses a
    model that is not a single chain token layers -> stacked recurrent layers -> head."""
    layers = [layer for layer in model.layers if layer.__class__.__name__ != "InputLayer"]
    kinds = [layer.__class__.__name__ in RECURRENT for layer in layers]
    if len(model.inputs) != 1 or True not in kinds:
        raise ValueError("a stepper needs one input of token ids and at least one LSTM, GRU or SimpleRNN layer")
    first = kinds.index(True)
    last = len(kinds) - 1 - kinds[::-1].index(True)
    tokens, recurrent, head = layers[:first], layers[first:last + 1], layers[last + 1:]
    if not all(kinds[first:last + 1]):
        raise ValueError("a stepper needs the recurrent layers stacked one after another")
    for layer in recurrent:
        if layer.go_backwards or layer.stateful:
            raise ValueError(f"layer '{layer.name}' runs backwards or is stateful; a stepper needs plain forward "
                             "layers")
        if layer.return_sequences != (layer is not recurrent[-1]):
            raise ValueError(f"layer '{layer.name}': a stepper needs return_sequences on every recurrent layer "
                             "but the last")
    for layer in tokens:
        if getattr(layer, "mask_zero", False):
            raise ValueError(f"layer '{layer.name}' masks padding; a stepper needs the pads read like any token")
    return tokens, recurrent, head


def window_stepper(model: Any) -> Any:
    """A model computing ``model``'s next-token prediction one token at a time (see the
    module docstring), sharing its weights.

    ``model`` reads ``(batch, W)`` token ids through per-token layers (an Embedding), stacked
    recurrent layers and a head (Dropout, Dense). The stepper's inputs are ``token``
    ``(batch, 1)`` and ``state`` ``(batch, W, S)``; its outputs are the head's output and
    ``next_state``. Starting from a zero state and feeding the ``W`` tokens of a window one
    by one, the last step's prediction equals ``model(window)``; feeding one more token then
    predicts for the window shifted by one.
    """
    import keras
    from keras import ops

    tokens, recurrent, head = _chain(model)
    window = model.inputs[0].shape[1]
    if window is None:
        raise ValueError("a stepper needs a fixed window (keras.Input(shape=(W,)))")
    cells = [layer.cell for layer in recurrent]
    sizes = [[int(s) for s in (c.state_size if isinstance(c.state_size, (list, tuple)) else [c.state_size])]
             for c in cells]
    width = sum(sum(s) for s in sizes)

    class WindowStep(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.cells = cells  # tracked, so exports carry the cells' weights

        def call(self, x, state):
            x = ops.reshape(ops.tile(x, (1, window, 1)), (-1, x.shape[-1]))
            flat = ops.reshape(state, (-1, width))
            new, at = [], 0
            for cell, cell_sizes in zip(self.cells, sizes):
                states = []
                for size in cell_sizes:
                    states.append(flat[:, at:at + size])
                    at += size
                x, updated = cell(x, states, training=False)
                new += list(updated) if isinstance(updated, (list, tuple)) else [updated]
            stepped = ops.reshape(ops.concatenate(new, axis=-1), (-1, window, width))
            shifted = ops.concatenate([stepped[:, 1:], ops.zeros_like(stepped[:, :1])], axis=1)
            return ops.reshape(x, (-1, window, x.shape[-1]))[:, 0], shifted

    token = keras.Input(shape=(1,), dtype=model.inputs[0].dtype, name="token")
    state = keras.Input(shape=(window, width), name="state")
    x = token
    for layer in tokens:
        x = layer(x)
    oldest, shifted = WindowStep(name="window_step")(x, state)
    for layer in head:
        oldest = layer(oldest)
    next_state = keras.layers.Identity(name="next_state")(shifted)
    return keras.Model([token, state], [oldest, next_state], name=f"{model.name}_stepper")


def state_width(stepper: Any) -> tuple[int, int]:
    """``(W, S)``: the window and the per-window state size of a stepper's ``state`` input."""
    _, window, width = stepper.inputs[1].shape
    return int(window), int(width)


def read_windows(step: Any, windows: Any, state_shape: tuple[int, int], chunk: int = 32) -> Any:
    """The stepper's prediction for every row of ``windows`` (``(n, W)`` token ids), as the
    window model would give: ``step([tokens (b, 1), state (b, W, S)]) -> (outputs, next_state)``.

    Rows that continue the one before (``windows[i + 1, :-1] == windows[i, 1:]``, as the
    windows of one text are) cost one step each instead of ``W``: the rows are cut into
    chunks of at most ``chunk`` such windows, each chunk read as one token stream, all
    chunks side by side in one batch.
    """
    import numpy as np

    windows = np.asarray(windows, dtype="int32")
    n, window = windows.shape
    follows = np.concatenate([[False], np.all(windows[1:, :-1] == windows[:-1, 1:], axis=1)])
    starts: list[int] = []
    for i in range(n):
        if not follows[i] or i - starts[-1] >= chunk:
            starts.append(i)
    bounds = list(zip(starts, starts[1:] + [n]))
    longest = max(end - begin for begin, end in bounds)
    streams = np.zeros((len(bounds), window + longest - 1), "int32")
    for row, (begin, end) in enumerate(bounds):
        streams[row, :window] = windows[begin]
        streams[row, window:window + end - begin - 1] = windows[begin + 1:end, -1]
    state = np.zeros((len(bounds), *state_shape), "float32")
    results = None
    for t in range(streams.shape[1]):
        outputs, state = step([streams[:, t:t + 1], state])
        state = np.asarray(state)
        if t < window - 1:
            continue
        outputs = np.asarray(outputs)
        if results is None:
            results = np.zeros((n, *outputs.shape[1:]), outputs.dtype)
        k = t - (window - 1)
        for row, (begin, end) in enumerate(bounds):
            if begin + k < end:
                results[begin + k] = outputs[row]
    return results
