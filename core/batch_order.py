"""The order in which a training epoch visits the samples, the same on every Keras backend.

Keras shuffles with the backend's own random generator, so one seed visits the batches of
TensorFlow and JAX in different orders. Here NumPy draws epoch ``e``'s order from
``numpy.random.default_rng([seed, 1, e])``: the same batches on either backend, and a run
resumed at epoch ``e`` draws the ones it would have drawn had it never stopped.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of ``range(n)`` epoch ``epoch`` of a run seeded ``seed`` trains in."""
    return np.random.default_rng([seed, 1, epoch]).permutation(n).astype("int32")


def shuffled_batches(x: Any, y: Any, batch_size: int, seed: int, initial_epoch: int = 0) -> tuple[Any, Any]:
    """``(dataset, callback)`` for ``model.fit(dataset, callbacks=[..., callback])``: a
    ``tf.data`` pipeline of one epoch of ``(x, y)`` batches in the :func:`epoch_order` of the
    epoch the callback was told of last (``on_epoch_begin``; ``initial_epoch`` before that).
    NumPy draws the order, the gathering runs in TensorFlow's graph, as Keras' own shuffle
    does. ``x`` and ``y`` may be nested structures of arrays; the last batch of an epoch may
    be smaller, as with ``fit(x, y, shuffle=True)``, and an epoch ends with its data, so
    ``steps_per_execution`` never reaches into the next one."""
    import keras
    import tensorflow as tf

    data = tf.nest.map_structure(tf.convert_to_tensor, _tuples((x, y)))  # tf.data takes no lists
    n = len(tf.nest.flatten(x)[0])
    order = tf.Variable(epoch_order(seed, initial_epoch, n), trainable=False)

    def batch(index):
        rows = order[index * batch_size:(index + 1) * batch_size]
        return tf.nest.map_structure(lambda v: tf.gather(v, rows), data)

    batches = (tf.data.Dataset.range(-(-n // batch_size))
               .map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
               .prefetch(tf.data.AUTOTUNE))
    return batches, keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: order.assign(epoch_order(seed, epoch, n)))


def _tuples(structure: Any) -> Any:
    if isinstance(structure, (list, tuple)):
        return tuple(_tuples(item) for item in structure)
    if isinstance(structure, dict):
        return {key: _tuples(value) for key, value in structure.items()}
    return structure
