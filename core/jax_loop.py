"""Whole-epoch training on the JAX backend: one compiled call per epoch.

Keras' ``fit`` on JAX slices every batch in Python and hands ``steps_per_execution``
of them to an XLA program that unrolls the steps. For the small models of these
experiments that Python work costs more than the arithmetic. Here the training data
lives on the device, an epoch is a ``lax.scan`` of the model's own ``train_step``
over the epoch's order of samples, and validation is a scan of ``test_step`` in the same
call. Callbacks work as under ``fit``: the state is written back into the model's
variables after every epoch and read again before the next, so a callback that
changes the learning rate, stops training or restores weights is honoured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .batch_order import epoch_order


def supports(model: Any, train: Any, validation: Any) -> bool:
    """Whether :func:`fit` can train ``model`` on these splits: JAX backend, and in-memory
    ``(x, y)`` arrays (or nested structures of them) for training and validation."""
    import keras

    if keras.backend.backend() != "jax":
        return False
    for split in (train, validation):
        if split is None and split is validation:
            continue
        if not (isinstance(split, tuple) and len(split) == 2):
            return False
        leaves = keras.tree.flatten(split)
        if not leaves or not all(isinstance(v, np.ndarray) for v in leaves):
            return False
        if len({len(v) for v in leaves}) != 1:
            return False
    return True


def fit(model: Any, train: tuple, validation: tuple | None, *, epochs: int, batch_size: int,
        callbacks: list, seed: int, shuffle: bool = True, initial_epoch: int = 0):
    """Train like ``model.fit(x, y, batch_size, epochs, validation_data, shuffle)`` and return
    its ``History``. Every epoch visits the samples in
    :func:`~tinkerflow.core.batch_order.epoch_order` (the order TensorFlow's path trains in
    too, and a run resumed at ``initial_epoch`` draws the same ones); the last batch of an
    epoch may be smaller, as in Keras."""
    import jax
    import jax.numpy as jnp
    import keras

    x, y = train
    n = len(keras.tree.flatten(x)[0])
    model._symbolic_build(data_batch=keras.tree.map_structure(lambda v: v[:batch_size], (x, y)))
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.reset_metrics()
    fresh_metrics = [v.value for v in model.metrics_variables]

    train_data = keras.tree.map_structure(jnp.asarray, (x, y))
    val_data = keras.tree.map_structure(jnp.asarray, validation) if validation is not None else None
    n_val = len(keras.tree.flatten(validation[0])[0]) if validation is not None else 0

    def take(data, idx):
        return keras.tree.map_structure(lambda v: jnp.take(v, idx, axis=0), data)

    def run_batches(step, state, data, order, size):
        full, rest = divmod(order.shape[0], size)
        logs = None
        if full:
            def body(carry, idx):
                logs, carry = step(carry, take(data, idx))
                return carry, logs

            state, stacked = jax.lax.scan(body, state, order[: full * size].reshape(full, size), )
            logs = keras.tree.map_structure(lambda v: v[-1], stacked)
        if rest:
            logs, state = step(state, take(data, order[full * size:]))
        return logs, state

    def epoch(state, order):
        trainable, non_trainable, optimizer_vars, _ = state
        state = (trainable, non_trainable, optimizer_vars, fresh_metrics)
        logs, state = run_batches(model.train_step, state, train_data, order, batch_size)
        val_logs = {}
        if val_data is not None:
            eval_state = (state[0], state[1], fresh_metrics)
            val_logs, _ = run_batches(model.test_step, eval_state, val_data, jnp.arange(n_val), batch_size)
        return state, logs, val_logs

    epoch = jax.jit(epoch)
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=False, verbose=0, epochs=epochs,
        steps=-(-n // batch_size), model=model,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    for index in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(index)
        state = _read_state(model)
        order = epoch_order(seed, index, n) if shuffle else np.arange(n, dtype="int32")
        state, logs, val_logs = epoch(state, jnp.asarray(order))
        _write_state(model, state)
        epoch_logs = {k: float(v) for k, v in logs.items()}
        epoch_logs.update({f"val_{k}": float(v) for k, v in val_logs.items()})
        callback_list.on_epoch_end(index, epoch_logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return model.history


def _read_state(model):
    return tuple([v.value for v in group] for group in _groups(model))


def _write_state(model, state) -> None:
    for group, values in zip(_groups(model), state):
        for variable, value in zip(group, values):
            variable.assign(value)


def _groups(model):
    return (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
            model.metrics_variables)
