"""Starting weights drawn by NumPy from the run's seed: the same start on every Keras backend.

Keras draws a layer's initial weights with the backend's own random generator, so one seed
gives TensorFlow and JAX different starting points (and different runs). :func:`redraw`
replaces them: each weight is drawn again with ``numpy.random.default_rng([seed, 0, index])``
(``index``: the weight's place in ``model.weights``) from the initializer its layer names
(``kernel_initializer``, ``recurrent_initializer``...), with the same distribution Keras
uses. Keras' built-in initializers are covered; a weight whose initializer is something
else keeps the backend's draw and is returned by name.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

#: a weight's short name -> the attribute of its layer (or its layer's cell) naming its initializer
INITIALIZER_OF = {
    "kernel": "kernel_initializer", "bias": "bias_initializer", "recurrent_kernel": "recurrent_initializer",
    "embeddings": "embeddings_initializer", "gamma": "gamma_initializer", "beta": "beta_initializer",
    "moving_mean": "moving_mean_initializer", "moving_variance": "moving_variance_initializer",
    "depthwise_kernel": "depthwise_initializer", "pointwise_kernel": "pointwise_initializer",
}

#: VarianceScaling's truncated normal keeps values within two standard deviations; this is
#: the standard deviation of a unit normal truncated there
_TRUNCATED_STD = 0.87962566103423978


def redraw(model: Any, seed: int, keep: Iterable[Any] = ()) -> list[str]:
    """Give ``model`` starting weights drawn by NumPy from ``seed``; the weights of the layers
    in ``keep`` (pretrained ones, say) stay as they are. Returns the paths of the weights left
    as the backend drew them (an initializer this module does not know)."""
    kept = {id(v) for layer in keep for v in layer.weights}
    owners = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        for variable in layer._trainable_variables + layer._non_trainable_variables:
            owners[id(variable)] = layer
    left = []
    for index, variable in enumerate(model.weights):
        if id(variable) in kept:
            continue
        layer = owners.get(id(variable))
        holder = getattr(layer, "cell", layer)
        short = variable.path.rsplit("/", 1)[-1]
        initializer = getattr(holder, INITIALIZER_OF.get(short, ""), None) if holder is not None else None
        shape = tuple(variable.shape)
        value = draw(initializer, shape, np.random.default_rng([seed, 0, index])) if initializer is not None else None
        if value is None:
            left.append(variable.path)
            continue
        if short == "bias" and getattr(holder, "unit_forget_bias", False):
            value[holder.units:2 * holder.units] = 1.0
        variable.assign(value.astype(variable.dtype))
    return left


def draw(initializer: Any, shape: tuple, rng: np.random.Generator) -> np.ndarray | None:
    """A float64 array of ``shape`` from the distribution of Keras ``initializer``, or None
    for an initializer this module does not know."""
    name = type(initializer).__name__
    config = initializer.get_config() if hasattr(initializer, "get_config") else {}
    if name == "Zeros":
        return np.zeros(shape)
    if name == "Ones":
        return np.ones(shape)
    if name == "Constant":  # a scalar, or a whole array (pretrained embeddings): kept as given
        return np.broadcast_to(np.asarray(initializer.value, dtype="float64"), shape).copy()
    if name == "RandomUniform":
        return rng.uniform(config["minval"], config["maxval"], shape)
    if name == "RandomNormal":
        return rng.normal(config["mean"], config["stddev"], shape)
    if name == "TruncatedNormal":
        return _truncated_normal(rng, config["mean"], config["stddev"], shape)
    if name == "Orthogonal":
        return float(config.get("gain", 1.0)) * _orthogonal(rng, shape)
    if all(hasattr(initializer, a) for a in ("scale", "mode", "distribution")):  # VarianceScaling, Glorot, He...
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[initializer.mode]
        variance = initializer.scale / max(1.0, fan)
        if initializer.distribution == "uniform":
            limit = np.sqrt(3 * variance)
            return rng.uniform(-limit, limit, shape)
        if initializer.distribution == "untruncated_normal":
            return rng.normal(0.0, np.sqrt(variance), shape)
        return _truncated_normal(rng, 0.0, np.sqrt(variance) / _TRUNCATED_STD, shape)
    return None


def _truncated_normal(rng: np.random.Generator, mean: float, stddev: float, shape: tuple) -> np.ndarray:
    out = rng.normal(mean, stddev, shape)
    outside = np.abs(out - mean) > 2 * stddev
    while outside.any():
        out[outside] = rng.normal(mean, stddev, int(outside.sum()))
        outside = np.abs(out - mean) > 2 * stddev
    return out


def _orthogonal(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    rows, cols = int(np.prod(shape[:-1])), shape[-1]
    q, r = np.linalg.qr(rng.normal(0.0, 1.0, (max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))
    q = q if rows >= cols else q.T
    return q[:rows, :cols].reshape(shape)


def _fans(shape: tuple) -> tuple[float, float]:
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive
