"""Image-caption pairs: generated scenes (the offline default, :mod:`scenes`), Noto emoji with
their names, or a folder of images with a COCO-style captions JSON; and the caption tokens.

COCO's layout: ``{"images": [{"id": 1, "file_name": "a.jpg"}, ...],
"annotations": [{"image_id": 1, "caption": "a dog on a sofa"}, ...]}``. Every image may
have several captions; every pair is kept.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinkerflow.core import DataError
from tinkerflow.plugins.classifier.images import prepare
from tinkerflow.plugins.dcgan.datasets import emoji_root

from . import scenes
from .scenes import words

PAD, START, END, UNKNOWN = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNKNOWN)


@dataclass
class CaptionSet:
    """Images (uint8, square) and, for each, one or more captions."""

    images: np.ndarray                                  # (n, size, size, 3)
    captions: list[list[str]]                           # per image
    names: list[str] = field(default_factory=list)      # file or emoji name per image
    info: dict = field(default_factory=dict)
    truth: list | None = None                           # generated scenes: the Scene of each image


def scene_captions(size: int, count: int, seed: int, captions_per_scene: int, max_shapes: int) -> CaptionSet:
    """Generated scenes (:mod:`scenes`): ``count`` images with their captions and ground truth."""
    found, images, captions = scenes.scene_set(count, size, seed, captions_per_scene, max_shapes)
    return CaptionSet(images, captions, [f"scene {i}" for i in range(count)],
                      {"source": "generated scenes", "seed": seed, "images": count,
                       "captions": sum(len(c) for c in captions)}, found)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class Vocabulary:
    tokens: list[str]

    def __post_init__(self):
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, captions: list[str], size: int, min_count: int = 1, tokenize=words) -> "Vocabulary":
        """The specials and the ``size`` - 4 most frequent tokens (``tokenize`` splits a caption)."""
        if size < len(SPECIALS) + 1:
            raise DataError(f"experiment.vocab_size={size} leaves no room for words; expected at least "
                            f"{len(SPECIALS) + 1}")
        counts = Counter(w for c in captions for w in tokenize(c))
        kept = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]
        return cls(list(SPECIALS) + kept[:size - len(SPECIALS)])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, caption: str, length: int) -> np.ndarray:
        """``<start> words <end>`` padded or cut to ``length`` ids."""
        ids = [self.index[START]] + [self.index.get(w, self.index[UNKNOWN]) for w in words(caption)]
        ids = ids[:length - 1] + [self.index[END]]
        return np.array(ids + [self.index[PAD]] * (length - len(ids)), "int32")

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            token = self.tokens[int(i)]
            if token == END:
                break
            if token not in (PAD, START):
                out.append(token)
        return " ".join(out)


def square(image, size: int) -> np.ndarray:
    """A PIL image as the captioner sees it: the classifier's preparation (upright, over
    white, centre square, ``size`` pixels)."""
    return prepare(image, size)


def emoji_captions(size: int, categories: list[str], modules: Path | None = None) -> CaptionSet:
    """Noto emoji and their names: "DOG FACE" gives "dog face", its short names "dog" more captions."""
    from PIL import Image

    root = emoji_root(modules)
    entries = [e for e in json.loads((root / "emoji.json").read_text(encoding="utf-8"))
               if e.get("has_img_google") and e.get("name") and (not categories or e["category"] in categories)]
    if not entries:
        raise DataError(f"no emoji in the categories {categories}; expected names from emoji.json's categories")
    images = np.stack([square(Image.open(root / "img" / "google" / "64" / e["image"]), size) for e in entries])
    captions = []
    for e in entries:
        texts = [e["name"].lower()] + [s.replace("_", " ") for s in e.get("short_names", [])]
        captions.append(list(dict.fromkeys(t for t in texts if words(t))))
    return CaptionSet(images, captions, [e["name"].lower() for e in entries],
                      {"source": "emoji-datasource-google", "images": len(entries),
                       "captions": sum(len(c) for c in captions)})


def coco_captions(folder: str | Path, captions_file: str | Path, size: int) -> CaptionSet:
    """Images from ``folder`` named by a COCO-style captions JSON."""
    from PIL import Image, UnidentifiedImageError

    folder, captions_file = Path(folder), Path(captions_file)
    if not folder.is_dir():
        raise DataError(f"data.images='{folder}' is not a folder; expected the folder the captions JSON names files in")
    try:
        spec = json.loads(captions_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"captions file '{captions_file}' does not exist; expected a COCO-style captions "
                        "JSON") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"captions file '{captions_file}' is not valid JSON ({exc}); expected COCO's layout") from None
    except RecursionError:
        raise DataError(f"captions file '{captions_file}' nests its values too deeply to read; expected COCO's "
                        "layout (a few levels)") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("images"), list) \
            or not isinstance(spec.get("annotations"), list):
        raise DataError(f"captions file '{captions_file}' has no 'images' and 'annotations' lists; expected COCO's "
                        "layout")
    files = {}
    for entry in spec["images"]:
        if not isinstance(entry, dict) or "file_name" not in entry or not isinstance(entry.get("id"), (int, str)):
            raise DataError(f"captions file '{captions_file}': image entry {_short(entry)} lacks a whole-number or "
                            "text 'id' or a 'file_name'; expected COCO's layout")
        name = entry["file_name"]
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise DataError(f"captions file '{captions_file}': image file_name {name!r} is not a path inside the "
                            "images folder; expected a relative name such as 'a.jpg'")
        files[entry["id"]] = name
    by_image: dict = {}
    for note in spec["annotations"]:
        if not isinstance(note, dict) or not isinstance(note.get("caption"), str):
            raise DataError(f"captions file '{captions_file}': annotation {_short(note)} has no text 'caption'; "
                            "expected COCO's layout")
        text = note["caption"].strip()
        if not isinstance(note.get("image_id"), (int, str)) or note["image_id"] not in files:
            raise DataError(f"captions file '{captions_file}': a caption names image_id "
                            f"{_short(note.get('image_id'))}, "
                            "which 'images' does not list; expected every caption to name a listed image")
        if not words(text):
            raise DataError(f"captions file '{captions_file}': image {files[note['image_id']]} has an empty caption "
                            f"({text!r}); expected words")
        by_image.setdefault(note["image_id"], []).append(text)
    missing = [files[i] for i in by_image if not (folder / files[i]).is_file()]
    if missing:
        raise DataError(f"{len(missing)} image(s) named in '{captions_file}' are not in '{folder}' (e.g. "
                        f"{missing[0]}); "
                        "expected every captioned file to exist")
    images, captions, names = [], [], []
    for image_id, texts in by_image.items():
        path = folder / files[image_id]
        try:
            with Image.open(path) as image:
                images.append(square(image, size))
        except (UnidentifiedImageError, OSError) as exc:
            detail = " ".join(str(exc).split())[:80]
            raise DataError(f"{path}: not a readable image ({detail}); expected a photo") from None
        captions.append(texts)
        names.append(files[image_id])
    if not images:
        raise DataError(f"captions file '{captions_file}' has no captions; expected at least one annotation")
    return CaptionSet(np.stack(images), captions, names,
                      {"source": str(captions_file), "images": len(images), "captions": sum(len(c) for c in captions)})
