"""The two architectures of the post: a small CNN, and MobileNetV2 with a new head.

Both take ``(size, size, 3)`` RGB pixels in 0..255 and end in a softmax named
``probabilities``; both name the feature map Grad-CAM looks at ``features``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from tinkerflow.core import DataError, knob

MOBILENET_ALPHAS = [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]


@dataclass
class SimpleModel:
    name: str = knob("simple", help="model=simple: three convolution blocks and one dense layer, as in the post")
    filters: list[int] = knob([32, 64, 128], help="filters of the three convolution blocks")
    dense: int = knob(128, min=1, help="units of the dense layer")
    dropout: float = knob(0.25, min=0.0, max=0.9, help="dropout after each block and the dense layer")


@dataclass
class MobileNetV2Model:
    name: str = knob("mobilenet_v2", help="model=mobilenet_v2: transfer learning from MobileNetV2")
    weights: str = knob("imagenet", help="imagenet (downloaded by Keras), none (from scratch) or a weights file")
    alpha: float = knob(1.0, choices=MOBILENET_ALPHAS, help="width multiplier")
    head_units: int = knob(64, min=0, help="units of the new hidden layer (0: straight to the softmax)")
    dropout: float = knob(0.2, min=0.0, max=0.9, help="dropout before the softmax")
    fine_tune_layers: int = knob(0, min=0, help="second phase: unfreeze this many top layers of the base (0: none)")
    fine_tune_epochs: int = knob(5, min=1, help="epochs of the second phase")
    fine_tune_learning_rate: float = knob(1e-5, gt=0.0, help="learning rate of the second phase")


def build_core(architecture, size: int, classes: int):
    """The inference model: pixels in, class probabilities out (no augmentation)."""
    import keras

    inputs = keras.Input((size, size, 3), name="image")
    if isinstance(architecture, SimpleModel):
        if len(architecture.filters) != 3 or min(architecture.filters) < 1:
            raise DataError(f"model.filters={architecture.filters}; expected three positive numbers")
        x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
        for i, filters in enumerate(architecture.filters):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                    name="features" if i == 2 else f"conv_{i + 1}")(x)
            x = keras.layers.MaxPooling2D(name=f"pool_{i + 1}")(x)
            x = keras.layers.Dropout(architecture.dropout, name=f"dropout_{i + 1}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        x = keras.layers.Dense(architecture.dense, activation="relu", name="dense")(x)
        x = keras.layers.Dropout(architecture.dropout, name="dropout")(x)
    else:
        x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="scale")(inputs)  # MobileNetV2's [-1, 1]
        base = mobilenet_base(architecture, size)
        scratch = architecture.weights.lower() == "none"
        base.trainable = scratch  # pre-trained features stay frozen, batch norms in inference mode too
        if scratch:  # MobileNetV2's batch-norm momentum (0.999) needs thousands of steps to settle
            for layer in base.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = 0.9
        x = base(x) if scratch else base(x, training=False)
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
        if architecture.head_units:
            x = keras.layers.Dense(architecture.head_units, activation="relu", name="dense")(x)
        x = keras.layers.Dropout(architecture.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="classifier")


def mobilenet_base(architecture: MobileNetV2Model, size: int):
    """MobileNetV2 without its top, named ``features``, with the weights the config names."""
    import keras

    if size < 32:
        raise DataError(f"experiment.image_size={size} is too small for MobileNetV2; expected at least 32")
    weights = architecture.weights
    kwargs = dict(input_shape=(size, size, 3), include_top=False, alpha=architecture.alpha, name="features")
    if weights.lower() == "none":
        return keras.applications.MobileNetV2(weights=None, **kwargs)
    if weights == "imagenet":
        try:
            return keras.applications.MobileNetV2(weights="imagenet", **kwargs)
        except Exception as exc:
            if "URL fetch failure" in str(exc) or "urlopen" in str(exc).lower() or isinstance(exc, OSError):
                raise DataError("could not download the ImageNet weights of MobileNetV2 (no internet here?); "
                                "expected model.weights=none or model.weights=<a local weights file>") from None
            raise
    path = Path(weights)
    if not path.is_file():
        raise DataError(f"model.weights='{weights}' is neither imagenet, none nor an existing file; "
                        "expected one of those")
    base = keras.applications.MobileNetV2(weights=None, **kwargs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns once per layer it cannot fill, then raises
            base.load_weights(str(path))
    except Exception as exc:
        raise DataError(f"weights file '{path}' does not fit MobileNetV2(alpha={architecture.alpha}, "
                        f"include_top=False): {' '.join(str(exc).split())[:160]}; expected weights of that "
                        "architecture") from None
    return base


def fine_tune(model, architecture: MobileNetV2Model) -> bool:
    """Unfreeze the base's top ``fine_tune_layers`` (batch norms stay frozen); True if any."""
    if not isinstance(architecture, MobileNetV2Model) or not architecture.fine_tune_layers:
        return False
    import keras

    base = find_layer(model, "features")
    base.trainable = True
    for layer in base.layers[:-architecture.fine_tune_layers]:
        layer.trainable = False
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    return True


def find_layer(model, name: str):
    """A layer by name, looking inside nested models too."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if hasattr(layer, "layers"):
            try:
                return find_layer(layer, name)
            except KeyError:
                pass
    raise KeyError(name)
