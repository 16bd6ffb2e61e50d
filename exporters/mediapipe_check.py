"""MediaPipe Tasks as a gate: an image classifier's .tflite must run, as it is, in the
ImageClassifier that Android, iOS, web and Python apps use (one C++ core for all four).

MediaPipe is optional (``pip install tinkerflow[mobile]``); without it the check says it did
not run. Images reach it as the project prepares them: ``(size, size, 3)`` uint8 RGB at the
model's own size, so MediaPipe neither resizes nor converts them (a grey ``GRAY8`` image
crashes its classifier, and a later classifier in the same process then hangs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinkerflow.core.errors import TinkerflowError

FRAMEWORK = "mediapipe"
INSTALL_HINT = "install tinkerflow[mobile] to run it"


def available() -> bool:
    try:
        import mediapipe  # noqa: F401
        from mediapipe.tasks.python import vision  # noqa: F401
    except ImportError:
        return False
    return True


def rgb_images(images) -> np.ndarray:
    """``images`` as a ``(n, h, w, 3)`` uint8 RGB batch, or one line saying what they are."""
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise TinkerflowError(f"images of shape {tuple(array.shape)} cannot go to MediaPipe's ImageClassifier; "
                              "expected (n, height, width, 3) RGB: prepare grey or RGBA photos the way the "
                              "classifier does (tinkerflow.plugins.classifier.images.prepare)")
    if array.dtype != np.uint8:
        if np.any(array < 0) or np.any(array > 255) or np.any(array != np.round(array)):
            raise TinkerflowError("images for MediaPipe's ImageClassifier must hold whole pixel values in 0..255; "
                                  f"got {array.dtype} values from {array.min():g} to {array.max():g}")
        array = array.astype(np.uint8)
    return np.ascontiguousarray(array)


def classify(model_path: Path, images, labels: list[str]) -> np.ndarray:
    """Scores ``(n, len(labels))`` that MediaPipe's ImageClassifier gives for ``images``."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    batch = rgb_images(images)
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model_path)),
                                            max_results=len(labels))
    index = {label: k for k, label in enumerate(labels)}
    scores = np.zeros((len(batch), len(labels)), dtype=np.float32)
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for row, image in enumerate(batch):
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
            for category in result.classifications[0].categories:
                if category.category_name not in index:
                    raise TinkerflowError(f"MediaPipe read the label {category.category_name!r} from {model_path}; "
                                          f"expected one of the model's labels {labels}")
                scores[row, index[category.category_name]] = category.score
    return scores


def check_image_classifier(model_path: Path, images, labels: list[str], keras_scores, litert_scores,
                           required: bool, keras_agreement_needed: float) -> dict:
    """The gate's record: MediaPipe must give LiteRT's label on every image (it runs the
    same file on the same pixels) and Keras' label as often as ``keras_agreement_needed``."""
    if not available():
        record = {"framework": FRAMEWORK, "checked": False, "reason": f"mediapipe is not installed: {INSTALL_HINT}"}
        if required:
            record["error"] = f"the MediaPipe check was asked for, but mediapipe is not installed; {INSTALL_HINT}"
        return record
    try:
        scores = classify(model_path, images, labels)
    except TinkerflowError:
        raise
    except Exception as exc:
        return {"framework": FRAMEWORK, "checked": True,
                "error": f"MediaPipe's ImageClassifier refused the file: {' '.join(str(exc).split())[:300]}"}
    keras_scores = np.asarray(keras_scores, dtype=np.float32).reshape(scores.shape)
    litert_scores = np.asarray(litert_scores, dtype=np.float32).reshape(scores.shape)
    labels_given = scores.argmax(axis=1)
    record = {
        "framework": FRAMEWORK, "checked": True, "task": "ImageClassifier", "images": int(len(scores)),
        "agrees_with_keras": float(np.mean(labels_given == keras_scores.argmax(axis=1))),
        "agrees_with_litert": float(np.mean(labels_given == litert_scores.argmax(axis=1))),
        "max_score_diff_keras": float(np.max(np.abs(scores - keras_scores))),
        "max_score_diff_litert": float(np.max(np.abs(scores - litert_scores))),
    }
    if record["agrees_with_litert"] < 1.0 or record["agrees_with_keras"] < keras_agreement_needed:
        record["error"] = (f"MediaPipe's ImageClassifier gives Keras' label for {record['agrees_with_keras']:.0%} and "
                           f"LiteRT's for {record['agrees_with_litert']:.0%} of {len(scores)} golden images; "
                           f"expected LiteRT's for all and Keras' for at least {keras_agreement_needed:.0%}")
    return record
