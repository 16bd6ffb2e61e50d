"""What the classifier sees and where it fails: confusion matrix, precision and recall, the
most confident mistakes, and Grad-CAM heat maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tinkerflow.core.runfs import save_figure


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """``[true, predicted]`` counts."""
    matrix = np.zeros((classes, classes), "int64")
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def precision_recall(matrix: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    result = {}
    for i, name in enumerate(names):
        predicted, actual = matrix[:, i].sum(), matrix[i].sum()
        result[name] = {"precision": float(matrix[i, i] / predicted) if predicted else 0.0,
                        "recall": float(matrix[i, i] / actual) if actual else 0.0, "images": int(actual)}
    return result


def confident_mistakes(labels: np.ndarray, probabilities: np.ndarray, positive: int, count: int) -> dict:
    """Indices of the most confident false positives (called ``positive``, are not) and false
    negatives (are ``positive``, called something else), most confident first."""
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    fp = np.flatnonzero((predicted == positive) & (labels != positive))
    fn = np.flatnonzero((predicted != positive) & (labels == positive))
    return {"false_positives": fp[np.argsort(-confidence[fp])][:count].tolist(),
            "false_negatives": fn[np.argsort(-confidence[fn])][:count].tolist()}


def grad_cam(model, images: np.ndarray, layer: str = "features") -> np.ndarray:
    """Heat maps in [0, 1], one per image at the image's size: where the evidence for the
    predicted class lies (gradient-weighted activations of ``layer``). TensorFlow backend."""
    import tensorflow as tf

    x = tf.convert_to_tensor(np.asarray(images, "float32"))
    features = None
    with tf.GradientTape() as tape:
        h = x
        for step in model.layers:  # a chain: input, scaling, ..., features, ..., probabilities
            if step.__class__.__name__ == "InputLayer":
                continue
            h = step(h, training=False)
            if step.name == layer:
                features = h
        score = tf.reduce_max(h, axis=1)
    if features is None:
        raise KeyError(f"the model has no layer named {layer!r}")
    gradients = tape.gradient(score, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[..., None]
    cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, cam / np.maximum(peak, 1e-12), 0.0)


def plot_confusion(matrix: np.ndarray, names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(names), 1.0 + 0.8 * len(names)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", color="white" if value > matrix.max() / 2 else "black")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def plot_gallery(images: np.ndarray, titles: list[str], path: Path, heat: np.ndarray | None = None,
                 columns: int = 4) -> None:
    """Images in a grid with a title each; with ``heat``, each image has its heat map beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if heat is not None else 1
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns * panels, figsize=(2.1 * columns * panels, 2.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, image in enumerate(images):
        row, col = divmod(k, columns)
        ax = axes[row, col * panels]
        ax.imshow(image)
        ax.set_title(titles[k], fontsize=7)
        if heat is not None:
            ax = axes[row, col * panels + 1]
            ax.imshow(image)
            ax.imshow(heat[k], cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_title("Grad-CAM", fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
