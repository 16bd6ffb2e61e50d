"""The training film: one 4x4 grid of the same 16 latent vectors per epoch, stitched into an
animated GIF (and an MP4 where ffmpeg is installed), the loss curves of both networks, and a
diversity number per epoch so that mode collapse shows up as a number."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tinkerflow.core.runfs import save_figure, save_image, write_atomic


def to_pixels(images) -> np.ndarray:
    """Generator output in [-1, 1] -> uint8."""
    return np.clip((np.asarray(images, "float32") + 1.0) * 127.5, 0, 255).round().astype("uint8")


def grid(images: np.ndarray, columns: int = 4, gap: int = 2) -> np.ndarray:
    """uint8 images (n, h, w, 3) side by side, ``columns`` per row, on grey."""
    n, h, w, _ = images.shape
    rows = -(-n // columns)
    out = np.full((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), 128, "uint8")
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        out[gap + r * (h + gap):gap + r * (h + gap) + h, gap + c * (w + gap):gap + c * (w + gap) + w] = image
    return out


def diversity(images: np.ndarray, reference: np.ndarray) -> float:
    """Mean pairwise distance between ``images`` over the same for ``reference`` (real
    images): about 1 when the samples vary as much as the data, near 0 when they collapse."""
    def spread(batch):
        flat = np.asarray(batch, "float32").reshape(len(batch), -1) / 255.0
        d = np.sqrt(((flat[:, None, :] - flat[None, :, :]) ** 2).sum(-1))
        return d[np.triu_indices(len(flat), 1)].mean()

    base = spread(reference)
    return float(spread(images) / base) if base > 0 else 0.0


def film_callback(generator_inputs, reference: np.ndarray, folder: Path):
    """A Keras callback writing ``epoch_NNN.png`` into ``folder`` and ``film.json`` (diversity
    per epoch) after every epoch."""
    import keras

    class Film(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.scores: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            from PIL import Image

            pixels = to_pixels(self.model.generator(generator_inputs, training=False))
            save_image(Image.fromarray(grid(pixels)), folder / f"epoch_{epoch + 1:03d}.png")
            del self.scores[epoch:]
            self.scores.append(round(diversity(pixels, reference), 4))
            if logs is not None:
                logs["diversity"] = self.scores[-1]
            write_atomic(folder / "film.json", json.dumps({"diversity": self.scores}))

        def resume_state(self) -> dict:
            return {"scores": self.scores}

        def restore_state(self, state: dict) -> None:
            self.scores = [float(v) for v in state.get("scores", [])]

    return Film()


def stitch(folder: Path, out: Path, scale: int = 3, ms_per_frame: int = 250) -> list[str]:
    """The epoch grids as ``training.gif`` (and ``training.mp4`` with ffmpeg); returns the names."""
    from PIL import Image

    frames = sorted(folder.glob("epoch_*.png"))
    if not frames:
        return []
    images = [Image.open(f).convert("RGB") for f in frames]
    images = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) for im in images]
    save_image(images[0], out / "training.gif", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    names = ["training.gif"]
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        done = subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-framerate", str(1000 // ms_per_frame), "-i",
                               str(folder / "epoch_%03d.png"), "-vf", f"scale=iw*{scale}:ih*{scale}:flags=neighbor,"
                               "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", str(out / "training.mp4")],
                              capture_output=True)
        if done.returncode == 0:
            names.append("training.mp4")
    return names


def plot_curves(history: dict, scores: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for key in ("d_loss", "g_loss"):
        if history.get(key):
            left.plot(range(1, len(history[key]) + 1), history[key], label=key)
    left.set_xlabel("epoch")
    left.set_title("losses")
    left.legend()
    right.plot(range(1, len(scores) + 1), scores, color="tab:green")
    right.axhline(1.0, color="grey", lw=0.8, ls="--")
    right.set_ylim(0, max(1.2, max(scores, default=1) * 1.1))
    right.set_xlabel("epoch")
    right.set_title("diversity (1 = as varied as the data)")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
