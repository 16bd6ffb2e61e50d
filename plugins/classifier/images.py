"""Images for the classifier: a folder with one subfolder per class, or the LFW subset.

Every image becomes a square ``(size, size, 3)`` uint8 RGB array the same way the web page
prepares a photo: EXIF orientation applied, transparency composited over white, the
centre square cropped, resized with Pillow's antialiasing bilinear filter.
"""

from __future__ import annotations

import importlib.util
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinkerflow.core import DataError

LFW_CLASSES = ("face", "not_face")


@dataclass
class ImageSet:
    """Decoded images, their class indices, the class names and what was skipped."""

    images: np.ndarray                 # (n, size, size, 3) uint8
    labels: np.ndarray                 # (n,) int32 indices into classes
    classes: list[str]
    files: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)   # reason -> count
    skipped_examples: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.labels == i)) for i, name in enumerate(self.classes)}


def prepare(image, size: int) -> np.ndarray:
    """A PIL image as the model sees it: upright, over white, centre square, ``size`` pixels."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype="uint8")


def read_image(path: Path, size: int, max_pixels: int) -> np.ndarray:
    """One file, prepared; raises ``ValueError`` with the reason to skip it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.width * image.height > max_pixels:
                raise ValueError(f"too large ({image.width}x{image.height} pixels)")
            image.draft("RGB", (size * 2, size * 2))  # JPEG: decode at a reduced scale, much faster
            return prepare(image, size)
    except UnidentifiedImageError:
        raise ValueError("not an image") from None
    except Image.DecompressionBombError:
        raise ValueError(f"too large (over {Image.MAX_IMAGE_PIXELS * 2:,} pixels)") from None
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"corrupt ({' '.join(str(exc).split())[:80]})") from None


def _check_regular(path: Path) -> None:
    """Raise ``ValueError`` (skip it) for a FIFO, socket, device, dangling link or link loop:
    opening a FIFO would wait forever."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ValueError(f"unreadable ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise ValueError("not a regular file")


def read_folder(folder: str | Path, size: int, max_pixels: int) -> ImageSet:
    """Every readable image under ``folder/<class>/``; unreadable files are skipped and counted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder '{folder}' does not exist; expected a folder with one subfolder per class")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        found = f"one class folder ({classes[0]})" if classes else "no class folders"
        raise DataError(f"'{folder}' has {found}; expected two or more subfolders, one per class "
                        f"(e.g. {folder}/mila/ and {folder}/not_mila/)")
    images, labels, files = [], [], []
    skipped: Counter = Counter()
    examples: list[str] = []
    for index, name in enumerate(classes):
        for path in sorted(p for p in (folder / name).rglob("*") if not p.name.startswith(".") and not p.is_dir()):
            try:
                _check_regular(path)
                images.append(read_image(path, size, max_pixels))
            except ValueError as exc:
                reason = str(exc).split(" (")[0]
                skipped[reason] += 1
                if len(examples) < 5:
                    examples.append(f"{path.relative_to(folder)}: {exc}")
                continue
            labels.append(index)
            files.append(str(path.relative_to(folder)))
    result = ImageSet(np.stack(images) if images else np.zeros((0, size, size, 3), "uint8"),
                      np.array(labels, "int32"), classes, files, skipped, examples)
    empty = [name for name, count in result.counts().items() if count == 0]
    if empty:
        note = f" ({sum(skipped.values())} files skipped: {_describe(skipped)})" if skipped else ""
        raise DataError(f"class folder(s) {', '.join(empty)} in '{folder}' hold no readable image{note}; "
                        "expected JPEG, PNG, GIF, BMP or WebP photos in every class folder")
    return result


def _describe(skipped: Counter) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in skipped.most_common())


def lfw_file() -> Path:
    """scikit-image's ``lfw_subset.npy``, found without importing scikit-image."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("scikit-image is not installed; run the README's set-up (it installs scikit-image "
                        "--no-deps for its lfw_subset.npy) or give data.path=<folder of class folders>")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "lfw_subset.npy"
    if not path.is_file():
        raise DataError(f"'{path}' is missing from the installed scikit-image; expected its LFW subset "
                        "(reinstall scikit-image) or data.path=<folder>")
    return path


def read_lfw(size: int) -> ImageSet:
    """The LFW subset: 100 faces, then 100 non-faces, 25x25 grey levels in [0, 1]."""
    from PIL import Image

    try:
        grey = np.load(lfw_file(), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the LFW subset ({exc}); expected scikit-image's lfw_subset.npy") from None
    if grey.ndim != 3 or len(grey) != 200:
        raise DataError(f"the LFW subset has shape {grey.shape}; expected (200, 25, 25)")
    images = np.stack([prepare(Image.fromarray(np.uint8(np.clip(g, 0, 1) * 255), "L"), size) for g in grey])
    labels = np.repeat(np.arange(2, dtype="int32"), 100)
    return ImageSet(images, labels, list(LFW_CLASSES), [f"lfw_subset.npy[{i}]" for i in range(200)])


def balance(images: ImageSet, seed: int) -> ImageSet:
    """Equal counts per class (as the post had: 263 and 263), sampled down to the smallest class."""
    smallest = min(images.counts().values())
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(images.labels == c))[:smallest]
                                   for c in range(len(images.classes))]))
    return ImageSet(images.images[keep], images.labels[keep], images.classes, [images.files[i] for i in keep],
                    images.skipped, images.skipped_examples)


def stratified_split(labels: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Indices for each fraction (then the rest), taking the same share of every class;
    every non-zero fraction gets at least one image of each class."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for i, share in enumerate(fractions):
            take = max(1, round(len(members) * share)) if share > 0 else 0
            parts[i].extend(members[start:start + take])
            start += take
        parts[-1].extend(members[start:])
    return [np.sort(np.array(p, dtype="int64")) for p in parts]
