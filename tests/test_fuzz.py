"""Fuzzed readers: every data reader and the config validation take arbitrary input and either
return data or raise tinkerflow's one-line error; never another exception, a hang (each
example has a deadline) or memory out of proportion to the input (traced per example).

``FUZZ_EXAMPLES`` (environment) sets the examples per reader; 150 by default.
"""

from __future__ import annotations

import dataclasses
import csv
import io
import json
import os
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinkerflow.core.errors import TinkerflowError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=5000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
MEMORY_LIMIT = 64 * 2**20  # bytes a reader may allocate for an input of a few kilobytes

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400)
raw = st.binary(max_size=2000)


@contextmanager
def answered(what: str):
    """The block returns or raises a TinkerflowError whose message is one line; bounded memory."""
    tracemalloc.start()
    try:
        yield
    except TinkerflowError as exc:
        assert "\n" not in str(exc).strip(), f"{what}: a multi-line message: {exc}"
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"{what}: {peak / 2**20:.0f} MiB for a small input"


def _fresh(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


# -- lyrics: songs CSV, text folders, fortunes files ------------------------------------------------

rows = st.lists(st.tuples(text, text, text, text), max_size=8)


@FUZZ
@given(header=st.sampled_from(["artist,song,link,text", "text", "Artist,Song,Text", "a,b", ""]), rows=rows,
       junk=raw, artists=st.lists(text, max_size=2), min_songs=st.integers(0, 3), first=st.integers(0, 3))
def test_songs_csv_reader(tmp_path, header, rows, junk, artists, min_songs, first):
    from tinkerflow.plugins.lyrics.corpus import read_songs_csv

    buffer = io.StringIO()
    buffer.write(header + "\n")
    csv.writer(buffer).writerows(rows)
    path = _fresh(tmp_path, "csv") / "songs.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8") + junk)
    with answered("songs CSV"):
        corpus = read_songs_csv(path, artists, min_songs, first)
        assert corpus.songs and all(s.text.strip() for s in corpus.songs)


@FUZZ
@given(files=st.lists(st.one_of(text.map(str.encode), raw), max_size=4))
def test_text_folder_reader(tmp_path, files):
    from tinkerflow.plugins.lyrics.corpus import read_text_folder

    folder = _fresh(tmp_path, "texts")
    for i, data in enumerate(files):
        (folder / f"{i}.txt").write_bytes(data)
    with answered("text folder"):
        assert read_text_folder(folder).songs


@FUZZ
@given(data=st.one_of(st.lists(st.one_of(text, st.just("%"), st.just("\t\t-- someone")), max_size=12)
                      .map(lambda parts: "\n".join(parts).encode()), raw))
def test_fortunes_reader(tmp_path, data):
    from tinkerflow.plugins.lyrics.corpus import read_fortunes

    path = _fresh(tmp_path, "fortunes") / "songs-poems"
    path.write_bytes(data)
    with answered("fortunes file"):
        assert read_fortunes(path).songs


# -- images: class folders, dcgan folders --------------------------------------------------------

def _png(width: int, height: int, mode: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (width, height), 128 if mode == "L" else None).save(buffer, format="PNG")
    return buffer.getvalue()


image_bytes = st.one_of(
    raw,
    st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from(["RGB", "RGBA", "L", "P", "1"]))
    .map(lambda t: _png(*t)),
    st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from(["RGB", "L"]), st.integers(1, 400))
    .map(lambda t: _png(t[0], t[1], t[2])[: t[3]]),  # cut short
)


@FUZZ
@given(classes=st.lists(st.tuples(st.text("abcxyz_-. ", min_size=1, max_size=8),
                                  st.lists(st.tuples(st.sampled_from([".png", ".jpg", ".gif", "", ".txt"]),
                                                     image_bytes), max_size=4)), max_size=3))
def test_image_folder_reader(tmp_path, classes):
    from tinkerflow.plugins.classifier.images import read_folder

    root = _fresh(tmp_path, "photos")
    for name, files in classes:
        (root / name).mkdir(exist_ok=True)
        for i, (suffix, data) in enumerate(files):
            (root / name / f"{i}{suffix}").write_bytes(data)
    with answered("image folder"):
        images = read_folder(root, 16, 10_000)
        assert images.images.shape[1:] == (16, 16, 3) and len(images.labels) == len(images.images)


@FUZZ
@given(files=st.lists(st.tuples(st.sampled_from([".png", ".jpg"]), image_bytes), max_size=4),
       attributes=st.lists(st.one_of(text, st.lists(st.text(max_size=12), max_size=4).map(
           lambda cells: "\n".join(",".join(cells) for _ in range(2)))), max_size=4),
       resize=st.booleans(), conditional=st.booleans())
def test_dcgan_folder_and_attribute_reader(tmp_path, files, attributes, resize, conditional):
    from tinkerflow.plugins.dcgan.datasets import FolderData, folder

    root = _fresh(tmp_path, "faces")
    for i, (suffix, data) in enumerate(files):
        (root / f"{i}{suffix}").write_bytes(data)
        if i < len(attributes):
            (root / f"{i}.csv").write_text(attributes[i], encoding="utf-8")
    with answered("dcgan folder"):
        data = folder(FolderData(path=str(root), resize=resize), 8, conditional)
        assert data.images.shape[1:3] == (8, 8)


@FUZZ
@given(lines=st.lists(st.lists(st.one_of(text, st.integers(-5, 9).map(str)), max_size=4), max_size=6), junk=raw)
def test_attribute_file_reader(tmp_path, lines, junk):
    from tinkerflow.plugins.dcgan.datasets import read_attributes

    buffer = io.StringIO()
    csv.writer(buffer).writerows(lines)
    path = _fresh(tmp_path, "attrs") / "a.csv"
    path.write_bytes(buffer.getvalue().encode() + junk)
    with answered("attribute file"):
        read_attributes(path)


# -- caption JSON ---------------------------------------------------------------------------------

json_values = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                           max_leaves=12)
coco_like = st.fixed_dictionaries({
    "images": st.lists(st.one_of(json_values, st.fixed_dictionaries(
        {"id": st.integers(0, 3) | text, "file_name": st.sampled_from(["0.png", "1.png", "missing.png", "../x.png"])
         | text | json_values})), max_size=4),
    "annotations": st.lists(st.one_of(json_values, st.fixed_dictionaries(
        {"image_id": st.integers(0, 3) | json_values, "caption": text | json_values})), max_size=5),
})


@FUZZ
@given(spec=st.one_of(coco_like, json_values), junk=st.one_of(st.just(b""), raw))
def test_caption_json_reader(tmp_path, spec, junk):
    from tinkerflow.plugins.captioning.captions import coco_captions

    folder = _fresh(tmp_path, "images")
    (folder / "0.png").write_bytes(_png(8, 8, "RGB"))
    (folder / "1.png").write_bytes(b"not a png")
    captions = tmp_path / "captions.json"
    captions.write_bytes(json.dumps(spec).encode() + junk)
    with answered("caption JSON"):
        data = coco_captions(folder, captions, 8)
        assert len(data.images) == len(data.captions)


# -- config validation ----------------------------------------------------------------------------

def _fields():
    from tinkerflow.core.plugins import make_plugin_manager

    registry = make_plugin_manager()
    keys = [(name, f"experiment.{f.name}") for name in ("addition", "lyrics")
            for f in dataclasses.fields(registry.experiment(name).Config)]
    keys += [("addition", f"trainer.{f}") for f in ("epochs", "batch_size", "learning_rate", "optimizer", "progress",
                                                     "checkpoint_seconds", "backend")]
    keys += [("addition", k) for k in ("seed", "trainer.early_stopping.patience", "export.formats", "nonsense.key")]
    return registry, keys


VALUES = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True).map(str),
                   st.sampled_from(["null", "true", "[]", "[1,2]", "{a: 1}", "${oc.env:HOME}", "${nope}", "'",
                                    "\"", "inf", "-0", "1e400", "adam", "a b", "=", ",", "[", "}"]),
                   st.text(st.characters(codec="ascii", exclude_characters="\x00"), max_size=12))


@pytest.fixture(scope="module")
def config_fields():
    return _fields()


@settings(FUZZ, max_examples=min(EXAMPLES, 100))
@given(choice=st.data(), value=VALUES)
def test_config_validation(config_fields, choice, value):
    from tinkerflow.core.config import compose_config, register_schemas, to_typed

    registry, keys = config_fields
    register_schemas({name: entry.cls for name, entry in registry.experiments.items()})
    experiment, key = choice.draw(st.sampled_from(keys))
    with answered(f"{key}={value}"):
        cfg = compose_config([f"experiment={experiment}", f"{key}={value}"])
        to_typed(cfg, experiment, registry.experiment(experiment))
