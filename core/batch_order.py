"""The order in which a training epoch visits the samples, the same on every Keras backend.

Keras shuffles with the backend's own random generator, so one seed visits the batches of
TensorFlow and JAX in different orders. Here NumPy draws epoch ``e``'s order from
``numpy.random.default_rng([seed, 1, e])``: the same batches on either backend, and a run
resumed at epoch ``e`` draws the ones it would have drawn had it never stopped.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of ``range(n)`` epoch ``epoch`` of a run seeded ``seed`` trains in."""
    return np.random.default_rng([seed, 1, epoch]).permutation(n).astype("int32")


def shuffled_batches(x: Any, y: Any, batch_size: int, seed: int, initial_epoch: int = 0) -> Any:
    """A ``keras.utils.PyDataset`` of ``(x, y)`` batches in :func:`epoch_order`, for
    ``model.fit(..., shuffle=False)`` (Keras would shuffle the batches again) from
    ``initial_epoch`` on; ``x`` and ``y`` may be nested structures of
    arrays. The last batch of an epoch may be smaller, as with ``fit(x, y, shuffle=True)``."""
    return _dataset_class()(x, y, batch_size, seed, initial_epoch)


@functools.cache
def _dataset_class() -> type:
    import keras

    class ShuffledBatches(keras.utils.PyDataset):
        def __init__(self, x, y, batch_size, seed, initial_epoch):
            super().__init__()
            self.data = (x, y)
            self.n = len(keras.tree.flatten(x)[0])
            self.batch_size = batch_size
            self.seed = seed
            self.epoch = initial_epoch - 1
            self.order = epoch_order(seed, initial_epoch, self.n)  # Keras reads a batch before the first epoch

        def __len__(self):
            return math.ceil(self.n / self.batch_size)

        def __getitem__(self, index):
            rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
            return keras.tree.map_structure(lambda v: v[rows], self.data)

        def on_epoch_begin(self):  # not on_epoch_end: Keras also calls that once before training
            self.epoch += 1
            self.order = epoch_order(self.seed, self.epoch, self.n)

    return ShuffledBatches
