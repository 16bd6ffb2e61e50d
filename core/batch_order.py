"""The order in which a training epoch visits the samples, the same on every Keras backend.

Keras shuffles with the backend's own random generator, so one seed visits the batches of
TensorFlow and JAX in different orders. Here NumPy draws epoch ``e``'s order from
``numpy.random.default_rng([seed, 1, e])``: the same batches on either backend, and a run
resumed at epoch ``e`` draws the ones it would have drawn had it never stopped.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of ``range(n)`` epoch ``epoch`` of a run seeded ``seed`` trains in."""
    return np.random.default_rng([seed, 1, epoch]).permutation(n).astype("int32")


def shuffled_batches(x: Any, y: Any, batch_size: int, seed: int, initial_epoch: int = 0) -> tuple[Any, int]:
    """``(dataset, steps_per_epoch)`` for ``model.fit(dataset, steps_per_epoch=...)`` from
    ``initial_epoch`` on: a ``tf.data`` pipeline of ``(x, y)`` batches, each epoch in
    :func:`epoch_order` (NumPy draws one order per epoch; the gathering runs in TensorFlow's
    graph, as Keras' own shuffle does). ``x`` and ``y`` may be nested structures of arrays;
    the last batch of an epoch may be smaller, as with ``fit(x, y, shuffle=True)``."""
    import tensorflow as tf

    data = tf.nest.map_structure(tf.convert_to_tensor, (x, y))
    n = len(tf.nest.flatten(x)[0])

    def order(epoch):
        rows = tf.numpy_function(lambda e: epoch_order(seed, int(e), n), [epoch], tf.int32, stateful=False)
        return tf.ensure_shape(rows, [n])

    batches = (tf.data.Dataset.range(initial_epoch, 2**31 - 1)
               .flat_map(lambda epoch: tf.data.Dataset.from_tensor_slices(order(epoch)).batch(batch_size))
               .map(lambda rows: tf.nest.map_structure(lambda v: tf.gather(v, rows), data),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
               .prefetch(tf.data.AUTOTUNE))
    return batches, math.ceil(n / batch_size)
