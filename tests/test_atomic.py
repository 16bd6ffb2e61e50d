"""Atomic artefacts: a write that fails or a process that is killed never leaves a file that
looks valid but is cut short.

Real ``tinkerflow train``, ``export`` and ``web`` processes are killed with SIGKILL at
random moments; after every kill each artefact is opened by the reader made for it (JSON,
Keras and HDF5 files, LiteRT, images, CSV, HTML) and every file a deploy manifest lists is
checked against its recorded size and SHA-256. Temporary names start with a dot; they are
the only files allowed to be incomplete.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import random
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import kill_group, read_run, run_cli, start_cli

TRAIN = ["experiment=addition", "experiment.samples=2000", "experiment.test_samples=200", "trainer.epochs=40",
         "trainer.early_stopping.enabled=false", "trainer.progress=none"]


def whole_files(root: Path) -> int:
    """Open every artefact under ``root`` with its own reader; returns how many were checked."""
    from PIL import Image

    checked = 0
    for path in sorted(Path(root).rglob("*")):
        parts = path.relative_to(root).parts
        if not path.is_file() or path.name == "run.log" or any(p.startswith(".") and p != ".hydra" for p in parts):
            continue
        suffix = path.suffix.lower()
        try:
            if suffix == ".json":
                json.loads(path.read_text())
            elif suffix == ".yaml":
                yaml.safe_load(path.read_text())
            elif suffix == ".keras":
                with zipfile.ZipFile(path) as archive:
                    assert archive.testzip() is None
            elif suffix == ".h5":
                import h5py

                with h5py.File(path, "r") as handle:
                    handle.visit(lambda name: None)
            elif suffix == ".npz":
                with np.load(path, allow_pickle=False) as saved:
                    [saved[name] for name in saved.files]
            elif suffix == ".tflite":
                from tinkerflow.exporters.runtime import TFLiteModel

                TFLiteModel(path).close()
            elif suffix in (".png", ".gif"):
                with Image.open(path) as image:
                    image.verify()
            elif suffix == ".csv":
                with path.open(newline="") as handle:
                    rows = list(csv.reader(handle))
                assert rows and all(len(row) == len(rows[0]) for row in rows), "a row is cut short"
            elif suffix == ".html":
                assert path.read_text().rstrip().endswith("</html>"), "the page is cut short"
            else:
                continue
        except Exception as exc:
            raise AssertionError(f"{path} is not whole: {type(exc).__name__}: {exc}") from exc
        checked += 1
    for record_file in Path(root).rglob("export.json"):  # a reader can trust what export.json says
        for fmt in json.loads(record_file.read_text())["formats"].values():
            for name, variant in fmt["variants"].items():
                for record in variant.get("files", []):
                    data = (record_file.parent / "export" / record["path"]).read_bytes()
                    assert variant["status"] == "passed", (name, variant["status"])
                    assert hashlib.sha256(data).hexdigest() == record["sha256"], f"export.json is wrong about {record}"
                    checked += 1
    for manifest in Path(root).rglob("manifest.json"):
        if any(p.startswith(".") for p in manifest.relative_to(root).parts):
            continue
        for record in json.loads(manifest.read_text()).get("files", []):
            data = (manifest.parent / record["path"]).read_bytes()
            assert len(data) == record["bytes"] and hashlib.sha256(data).hexdigest() == record["sha256"], record
            checked += 1
    return checked


def _entries(folder: Path) -> set[str]:
    """Every path under ``folder`` now, temporary ones included (they come and go while it
    is walked: a folder that vanishes is skipped)."""
    found = set()
    for top, dirs, names in os.walk(folder):
        found.update(os.path.relpath(os.path.join(top, name), folder) for name in dirs + names)
    return found


def _kill_when(args: list[str], cwd: Path, event) -> bool:
    """Start ``tinkerflow ARGS`` and SIGKILL it when ``event()`` is first true (an observed
    state of its files, never a moment on the clock); False if it ended first."""
    process = start_cli(args, cwd)
    deadline = time.monotonic() + 600
    while process.poll() is None:
        if event():
            kill_group(process)
            return True
        assert time.monotonic() < deadline, f"tinkerflow {' '.join(args)} neither ended nor got there in 600 s"
        time.sleep(0.01)
    return False


def _after_new_entries(folder: Path, count: int):
    """An event: ``count`` paths that were not there at the start have appeared under ``folder``."""
    seen, start = set(), _entries(folder)

    def event() -> bool:
        seen.update(_entries(folder) - start)
        return len(seen) >= count
    return event


def _checkpoint_epoch(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "checkpoints" / "state.json").read_text())["epoch"]
    except (OSError, ValueError):
        return 0


def test_killed_train_export_and_web_leave_only_whole_files(tmp_path):
    chooser = random.Random(7)
    run_dir, site = tmp_path / "run", tmp_path / "site"
    kills, checked = 0, 0
    train = ["train", *TRAIN, f"hydra.run.dir={run_dir}"]
    for attempt in range(3):  # each kill lands a few epochs further on (40 epochs in all)
        target = 8 * attempt + chooser.randint(1, 8)
        if _kill_when(train, tmp_path, lambda target=target: _checkpoint_epoch(run_dir) >= target):
            kills += 1
            checked += whole_files(run_dir)
        train = ["train", "--resume", str(run_dir)]
    finished = run_cli(*train, cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert kills == 3, "every train kill lands: the run has more epochs than the kills wait for"

    export = ["export", str(run_dir), "--format", "tflite", "tfjs", "--quantize", "float32", "float16"]
    for _ in range(4):  # the export writes dozens of paths (work, staging, final folders): kill after a few
        kills += _kill_when(export, tmp_path, _after_new_entries(run_dir / "export", chooser.randint(1, 12)))
        checked += whole_files(run_dir)
    assert run_cli(*export, cwd=tmp_path).returncode == 0
    record = json.loads((run_dir / "export.json").read_text())
    assert {v["status"] for f in record["formats"].values() for v in f["variants"].values()} == {"passed"}

    web = ["web", str(run_dir), "--out", str(site), "--force"]
    assert run_cli(*web, cwd=tmp_path).returncode == 0
    pages_before = (site / "index.html").read_text()
    for _ in range(3):
        kills += _kill_when(web, tmp_path, _after_new_entries(tmp_path, chooser.randint(1, 6)))
        if site.exists():
            checked += whole_files(site)
            assert (site / "index.html").read_text() == pages_before
    assert kills >= 5, f"only {kills} kills landed before the processes finished"
    assert not [p for p in (run_dir / "export").rglob(".*")], "the last export cleared what killed ones left"
    checked += whole_files(run_dir) + whole_files(site)
    assert read_run(run_dir)["status"] == "completed"
    print(f"\n{kills} kills; {checked} files checked whole")


@pytest.mark.parametrize("failure", ["fsync", "write"])
def test_a_write_that_fails_keeps_the_old_file(tmp_path, monkeypatch, failure):
    from tinkerflow.core import runfs as rundir

    target = tmp_path / "run.json"
    rundir.write_json_atomic(target, {"status": "completed"})
    before = target.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if failure == "fsync":
        monkeypatch.setattr(rundir.os, "fsync", disk_full)
    else:
        real_fdopen = rundir.os.fdopen

        class HalfWriter:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                self.handle.write(data[: len(data) // 2])
                disk_full()

        monkeypatch.setattr(rundir.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left") as caught:
        rundir.write_json_atomic(target, {"status": "failed", "padding": "x" * 10000})
    assert caught.value.filename == str(target), "the error names the file being written"
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"], "no temporary file is left behind"


def test_a_copy_onto_a_full_disk_names_the_destination(tmp_path, monkeypatch):
    """``web`` copying a model into a site on a full disk: the error names the site's file
    (the one that could not be written), not the run's file it was copied from."""
    from tinkerflow.core import runfs

    source, target = tmp_path / "model.tflite", tmp_path / "site" / "model.tflite"
    source.write_bytes(b"x" * 1000)
    target.parent.mkdir()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runfs.shutil, "copyfileobj", disk_full)
    with pytest.raises(OSError, match="No space left") as caught:
        runfs.copy_regular(source, target)
    assert caught.value.filename == str(target)


def test_a_model_save_that_fails_keeps_the_old_model(tmp_path, monkeypatch):
    import keras

    from tinkerflow.core.runfs import save_model_atomic

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    target = tmp_path / "model.keras"
    save_model_atomic(model, target)
    before = target.read_bytes()

    def interrupted(self, path, *args, **kwargs):
        Path(path).write_bytes(before[: len(before) // 3])
        raise KeyboardInterrupt

    monkeypatch.setattr(type(model), "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model_atomic(model, target)
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_a_folder_is_swapped_in_whole(tmp_path):
    import sys

    from tinkerflow.core.runfs import _exchange, replace_folder

    target, new = tmp_path / "site", tmp_path / ".site-building"
    for folder, text in ((target, "old"), (new, "new")):
        folder.mkdir()
        (folder / "index.html").write_text(text)
    replace_folder(new, target)
    assert (target / "index.html").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"], "the old folder is gone, nothing is left aside"
    fresh = tmp_path / ".fresh"
    fresh.mkdir()
    replace_folder(fresh, tmp_path / "first")
    assert (tmp_path / "first").is_dir() and not fresh.exists()
    if sys.platform == "linux":
        a, b = tmp_path / "a", tmp_path / "b"
        for folder in (a, b):
            folder.mkdir()
            (folder / "name").write_text(folder.name)
        assert _exchange(a, b), "Linux swaps two folders in one step"
        assert (a / "name").read_text() == "b" and (b / "name").read_text() == "a"
