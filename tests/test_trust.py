"""A run folder or a site from elsewhere is data, never code (docs/threat-model.md).

Real commands against folders made hostile the way a stranger's zip could be: links out of
the run, FIFOs, a second process writing the same run, a server asked for what is not the
site's. The one-line answers to broken records are rows of tests/test_bad_inputs.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import kill_group, read_run, run_cli, start_cli

#: a run that trains for a while: TensorFlow (JAX would end it in a second), a checkpoint every epoch
LONG = ["experiment=addition", "experiment.samples=2000", "experiment.test_samples=200", "trainer.epochs=400",
        "trainer.early_stopping.enabled=false", "trainer.progress=none", "trainer.backend=tensorflow",
        "trainer.checkpoint_seconds=0"]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _checkpoint_epoch(run_dir: Path) -> int:
    try:
        return json.loads((run_dir / "checkpoints" / "state.json").read_text())["epoch"]
    except (OSError, ValueError):
        return 0


def _wait_until(event, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 600
    while not event():
        assert process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within 600 s"
        time.sleep(0.05)


def test_only_regular_files_inside_the_run_are_ever_copied(tmp_path):
    from tinkerflow.core.errors import RunDirError
    from tinkerflow.core.runfs import copy_tree_regular, regular_files

    run = tmp_path / "run"
    bundle = run / "export" / "tfjs" / "float32"
    bundle.mkdir(parents=True)
    (bundle / "model.json").write_text("{}")
    (bundle / "shard.bin").write_bytes(b"\0" * 8)
    assert [p.name for p in regular_files(bundle, run)] == ["model.json", "shard.bin"]
    copy_tree_regular(bundle, tmp_path / "copy", run)
    assert _digest(tmp_path / "copy") == _digest(bundle)

    hostile = {
        "a link to /etc/passwd": lambda p: p.symlink_to("/etc/passwd"),
        "a link to a file of the run": lambda p: p.symlink_to(bundle / "model.json"),
        "a link to a folder outside": lambda p: p.symlink_to("/etc", target_is_directory=True),
        "a FIFO": lambda p: os.mkfifo(p),
        "a dangling link": lambda p: p.symlink_to(tmp_path / "nowhere"),
    }
    for what, make in hostile.items():
        bad = bundle / "extra"
        make(bad)
        with pytest.raises(RunDirError, match=r"'.*extra' is (a symbolic link|not a regular file); expected only "
                                              "regular files inside"):
            regular_files(bundle, run)
        with pytest.raises(RunDirError):
            copy_tree_regular(bundle, tmp_path / f"copy-{len(what)}", run)
        bad.unlink()


def test_a_site_never_carries_a_file_from_outside_its_runs(tmp_path):
    run = tmp_path / "run"
    done = run_cli("train", "experiment=addition", "debug=smoke", f"hydra.run.dir={run}", "export=tfjs",
                   "export.variants=[float32]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    (run / "export" / "tfjs" / "float32" / "group1-shard9of9.bin").symlink_to("/etc/passwd")
    refused = run_cli("web", str(run), "--out", "site", cwd=tmp_path)
    assert refused.returncode == 2 and "is a symbolic link; expected only regular files" in refused.stderr
    assert not (tmp_path / "site").exists() and not list(tmp_path.glob(".site-building-*"))
    secret = Path("/etc/passwd").read_bytes()
    (run / "export" / "tfjs" / "float32" / "group1-shard9of9.bin").unlink()
    built = run_cli("web", str(run), "--out", "site", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert all(p.read_bytes() != secret for p in (tmp_path / "site").rglob("*") if p.is_file())


def test_a_site_holds_only_what_export_json_lists_and_one_builder_at_a_time(tmp_path):
    """A file export.json does not list (a 1 GB sparse extra.bin once became 1.1 GB of site)
    stays out; a changed listed file is refused by its sha256; a killed build's staging is
    cleared by the next; a second builder of the same site is refused while one holds it."""
    from tinkerflow.core.lock import site_lock

    run = tmp_path / "run"
    done = run_cli("train", "experiment=addition", "debug=smoke", f"hydra.run.dir={run}", "export=tfjs",
                   "export.variants=[float32]", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    variant = run / "export" / "tfjs" / "float32"
    with (variant / "extra.bin").open("wb") as handle:
        handle.truncate(1024**3)
    (tmp_path / ".site-building-killed").mkdir()
    (tmp_path / ".site-building-killed" / "half.js").write_text("half")
    built = run_cli("web", str(run), "--out", "site", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    copied = {p.name for p in (tmp_path / "site").rglob("*") if p.is_file() and "float32" in p.parts}
    assert copied == {"model.json", "group1-shard1of1.bin", "manifest.json"}, copied
    assert not list(tmp_path.glob(".site-building-*")), "the killed build's staging is gone"

    with site_lock(tmp_path / "site"):
        busy = run_cli("web", str(run), "--out", "site", "--force", cwd=tmp_path)
    assert busy.returncode == 2 and "'site' is in use by process" in busy.stderr, busy.stderr

    weights = variant / "group1-shard1of1.bin"
    weights.write_bytes(weights.read_bytes()[::-1])
    changed = run_cli("web", str(run), "--out", "site", "--force", cwd=tmp_path)
    lines = [line for line in changed.stderr.splitlines() if "error:" in line]
    assert changed.returncode == 2 and len(lines) == 1 and "but export.json records" in lines[0], changed.stderr


def test_serve_answers_only_with_the_sites_regular_files(tmp_path):
    from tinkerflow.web_export.serve import serving

    site = tmp_path / "site"
    (site / "models" / "a").mkdir(parents=True)
    (site / "assets").mkdir()
    (site / "index.html").write_text("<html>home</html>")
    (site / "models" / "a" / "index.html").write_text("<html>a</html>")
    (site / "assets" / "app.js").write_text("export {};")
    (site / ".tinkerflow-site").write_text("built")
    (site / ".hidden").mkdir()
    (site / ".hidden" / "x.txt").write_text("hidden")
    (site / "passwd").symlink_to("/etc/passwd")
    (site / "etc").symlink_to("/etc", target_is_directory=True)
    os.mkfifo(site / "fifo")
    (site / "alias.js").symlink_to(site / "assets" / "app.js")

    def get(path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(base + path.lstrip("/"), timeout=60) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    with serving(site) as base:
        assert get("/") == (200, b"<html>home</html>")
        assert get("/models/a/") == (200, b"<html>a</html>")
        assert get("/assets/app.js") == (200, b"export {};")
        assert get("/alias.js") == (200, b"export {};"), "a link that stays inside the site is served"
        assert get("/models/a")[0] == 200, "a folder without its slash is redirected to it"
        for path in ["/models/", "/assets/", "/.tinkerflow-site", "/.hidden/x.txt", "/passwd", "/etc/passwd",
                     "/fifo", "/nowhere.js", "/models/../../run.json", "/%2e%2e/%2e%2e/etc/passwd", "/assets/.%2e/"]:
            code, body = get(path)
            assert code == 404, (path, code, body[:200])
            assert b"root:" not in body and b"Directory listing" not in body
        for path in ["/%00", "/index.html%00.js", "/%ff%fe"]:
            assert get(path)[0] == 400, path
        assert get("/" + "a" * 300)[0] == 404, "a name longer than the file system allows is just not there"
        assert get("/models/" + "b" * 300 + "/index.html")[0] == 404


def test_serve_drops_a_request_that_is_never_finished(tmp_path):
    """Half-sent requests (400 of them, each a connection) are closed after the request
    timeout, and the server still answers a whole request meanwhile."""
    import socket

    from tinkerflow.web_export.serve import serving

    (tmp_path / "index.html").write_text("<html>home</html>")
    with serving(tmp_path, timeout=1) as base:
        port = int(base.rstrip("/").rsplit(":", 1)[1])
        stalled = []
        for _ in range(400):
            connection = socket.create_connection(("127.0.0.1", port), timeout=120)
            connection.sendall(b"GET /index.html HTTP/1.1\r\nHost: x")  # never ends its headers
            stalled.append(connection)
        with urllib.request.urlopen(base, timeout=120) as reply:
            assert reply.read() == b"<html>home</html>"
        for connection in stalled:
            assert connection.recv(1024) == b"", "the server closes the connection (the event waited for)"
            connection.close()


def test_a_second_writer_is_refused_and_a_killed_one_releases_at_once(tmp_path):
    run_dir = tmp_path / "run"
    first = start_cli(["train", *LONG, "experiment.max_sum=16", f"hydra.run.dir={run_dir}"], tmp_path)
    try:
        _wait_until(lambda: _checkpoint_epoch(run_dir) >= 2, first, "its second checkpoint")
        config = (run_dir / ".hydra" / "config.yaml").read_bytes()
        for args, message in [
            (["train", "experiment=addition", "experiment.max_sum=65536", f"hydra.run.dir={run_dir}"],
             "already holds a run"),
            (["train", "--resume", str(run_dir)], "is in use by process"),
            (["export", str(run_dir), "--format", "tflite"], "is in use by process"),
            (["sample", str(run_dir)], "is in use by process"),
            (["bench", str(run_dir)], "is in use by process"),
        ]:
            second = run_cli(*args, cwd=tmp_path)
            errors = [line for line in second.stderr.splitlines() if ": error: " in line]
            assert second.returncode == 2 and len(errors) == 1 and message in errors[0], (args, second.stderr[-1500:])
            if "in use" in message:
                assert f"process {first.pid} (tinkerflow train" in errors[0], errors[0]
            assert (run_dir / ".hydra" / "config.yaml").read_bytes() == config, f"{args} changed the first's config"
        assert first.poll() is None, "the first writer was not disturbed"
    finally:
        if first.poll() is None:
            kill_group(first)
    info = read_run(run_dir)
    assert info["status"] == "running" and info["config"]["experiment"]["max_sum"] == 16
    from tinkerflow.core.lock import run_lock

    with run_lock(run_dir):  # the kernel released the lock with the killed process; resuming is test_resume's
        pass


def test_nothing_changes_before_the_lock_is_held(tmp_path):
    from tinkerflow.core.lock import run_lock

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with run_lock(run_dir):
        refused = run_cli("train", "experiment=addition", "debug=smoke", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-1500:]
    assert f"is in use by process {os.getpid()}" in refused.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock"], "Hydra wrote nothing before the lock was held"
    assert (run_dir / ".lock").stat().st_size == 0


def test_export_json_is_true_of_the_files_at_every_step(tmp_path, monkeypatch, registry):
    """The moment a kill hurt before: a variant's folder swapped in, export.json not yet
    rewritten. Stopped there, export.json claims nothing for that variant; the next export
    clears every folder killed processes left."""
    from conftest import train_in_process
    from tinkerflow.exporters import pipeline

    run = train_in_process(tmp_path / "runs", "experiment=addition", "debug=smoke")
    assert pipeline.export_run(run, registry, ["tflite"], ["float32"]).ok
    first = json.loads((run / "export.json").read_text())["formats"]["tflite"]["variants"]["float32"]

    class Killed(BaseException):
        pass

    real = pipeline.replace_folder

    def swap_then_die(new, target):
        real(new, target)
        raise Killed

    monkeypatch.setattr(pipeline, "replace_folder", swap_then_die)
    with pytest.raises(Killed):
        pipeline.export_run(run, registry, ["tflite"], ["float32"])
    record = json.loads((run / "export.json").read_text())["formats"]["tflite"]["variants"]["float32"]
    assert record["status"] == "replacing" and "files" not in record, record
    assert first["files"], "the passed record listed its files"
    monkeypatch.setattr(pipeline, "replace_folder", real)

    leftovers = [run / "export" / ".staging-tflite-float32-x1", run / "export" / ".work-x2",
                 run / "export" / "tflite" / ".final-float32-x3", run / "export" / "tflite" / ".float32-old-99"]
    for folder in leftovers:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.tflite").write_bytes(b"half")
    (run / ".run.json.abc.tmp").write_text("{")
    report = pipeline.export_run(run, registry, ["tflite"], ["float32"])
    assert report.ok
    record = json.loads((run / "export.json").read_text())["formats"]["tflite"]["variants"]["float32"]
    for entry in record["files"]:
        data = (run / "export" / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    assert not any(p.exists() for p in leftovers) and not (run / ".run.json.abc.tmp").exists()


def test_a_variant_folder_that_cannot_be_replaced_keeps_its_record(tmp_path, monkeypatch, registry):
    """A folder the export may not write (``chmod 555`` as a user, a read-only mount): the old
    variant stays as it was, and so does its passed record in export.json (before, it was left
    as 'replacing' with no files, and the next ``web`` dropped an intact variant)."""
    from conftest import train_in_process
    from tinkerflow.exporters import pipeline

    run = train_in_process(tmp_path / "runs", "experiment=addition", "debug=smoke")
    assert pipeline.export_run(run, registry, ["tflite"], ["float32"]).ok
    before = json.loads((run / "export.json").read_text())["formats"]["tflite"]["variants"]["float32"]
    files = {p.name: p.read_bytes() for p in (run / "export" / "tflite" / "float32").iterdir()}

    def read_only(new, target):
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(pipeline, "replace_folder", read_only)
    with pytest.raises(PermissionError):
        pipeline.export_run(run, registry, ["tflite"], ["float32"])
    after = json.loads((run / "export.json").read_text())["formats"]["tflite"]["variants"]["float32"]
    assert after == before
    assert {p.name: p.read_bytes() for p in (run / "export" / "tflite" / "float32").iterdir()} == files


def test_an_image_folder_counts_pipes_and_link_loops_among_the_skipped(tmp_path):
    from PIL import Image

    from tinkerflow.plugins.classifier.images import read_folder

    for name in ("mila", "other"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (20, 20), (200, 10, 10)).save(tmp_path / name / "a.png")
    os.mkfifo(tmp_path / "mila" / "camera.jpg")
    (tmp_path / "other" / "loop1.jpg").symlink_to(tmp_path / "other" / "loop2.jpg")
    (tmp_path / "other" / "loop2.jpg").symlink_to(tmp_path / "other" / "loop1.jpg")
    images = read_folder(tmp_path, 16, 10**7)
    assert images.files == ["mila/a.png", "other/a.png"]
    assert images.skipped == {"not a regular file": 1, "unreadable": 2}, images.skipped


@pytest.mark.parametrize("kind, text, field", [
    ("run", '{"experiment": "addition", "metrics": {"loss": "low"}}', "metrics.loss"),
    ("run", '{"experiment": "addition", "overrides": "seed=1"}', "overrides"),
    ("run", '{"experiment": "addition", "config": {"experiment": [1, 2]}}', "config.experiment"),
    ("run", '{"experiment": "addition", "config": {"trainer": "adam"}}', "config.trainer"),
    ("export", '{"formats": {"tfjs": {"variants": {"float32": {"status": "passed", "files": [{"path": "a"}]}}}}}',
     "formats.tfjs.variants.float32.files.0.bytes"),
    ("export", '{"formats": {"tflite": {"variants": {"float32": {"status": "passed", "files": [{"path": "a", '
               '"bytes": -1, "sha256": "00"}]}}}}}', "formats.tflite.variants.float32.files.0.bytes"),
    ("bench", '{"batch": "256", "rows": []}', "batch"),
    ("manifest", '{"tinkerflow_manifest": 1, "experiment": "x", "format": "tflite", "variant": "float32"}', "file"),
    ("site", '{"pages": [{"slug": "a b", "experiment": "x", "run": "r", "default_variant": "float32"}]}',
     "pages.0.slug"),
    ("checkpoint", '{"epoch": -3, "weights": "epoch-00001.weights.h5"}', "epoch"),
    ("learned_lyrics", '{"tokens": "<pad>"}', "tokens"),
    ("learned_classifier", '{"classes": ["only"]}', "classes"),
    ("learned_classifier", '{"classes": ["a", "b"], "code": "__import__(\'os\')"}', "code"),
    ("learned_dcgan", '{"columns": ["colour=red"], "groups": {"colour": "red"}}', "groups.colour"),
    ("film", '{"diversity": [0.1, "x"]}', "diversity.1"),
    ("tfjs", '{"modelTopology": {}, "weightsManifest": [{"paths": ["/dev/zero"], "weights": []}]}',
     "weightsManifest.0.paths.0"),
    ("tfjs", '{"modelTopology": {}, "weightsManifest": [{"paths": ["../../run.json"], "weights": []}]}',
     "weightsManifest.0.paths.0"),
])
def test_every_record_read_back_names_the_file_and_the_field_it_rejects(tmp_path, kind, text, field):
    from tinkerflow.core import learned, records
    from tinkerflow.core.errors import RunDirError
    from tinkerflow.plugins.classifier.experiment import Classifier
    from tinkerflow.plugins.dcgan.experiment import Dcgan
    from tinkerflow.plugins.lyrics.experiment import Lyrics

    readers = {
        "run": records.read_run_record, "export": records.read_export_record, "bench": records.read_bench_record,
        "manifest": records.read_manifest, "site": records.read_site_record,
        "checkpoint": records.read_checkpoint_state,
        "learned_lyrics": lambda p: learned.read(p.parent, Lyrics),
        "learned_classifier": lambda p: learned.read(p.parent, Classifier),
        "learned_dcgan": lambda p: learned.read(p.parent, Dcgan),
        "film": lambda p: records.read_record(p, records.FilmRecord, "a film record"),
        "tfjs": records.read_tfjs_model_json,
    }
    path = tmp_path / ("learned.json" if kind.startswith("learned") else f"{kind}.json")
    path.write_text(text)
    with pytest.raises(RunDirError) as caught:
        readers[kind](path)
    message = str(caught.value)
    assert message.startswith(f"{path}: field '{field}': ") and "expected " in message and "\n" not in message, message
    for broken in ("[]", "{", '"text"', "\0"):
        path.write_text(broken)
        with pytest.raises(RunDirError, match=f"^{path}: "):
            readers[kind](path)


GOOD_METRICS = "epoch,loss,val_loss,seconds\n1,0.5,0.6,0.1\n2,nan,inf,0.1\n"


@pytest.mark.parametrize("name, data, message", [
    ("an invalid UTF-8 byte", b"epoch,loss\n1,0.5\xff\n", "cannot read it ('utf-8' codec can't decode"),
    ("an extra field", b"epoch,loss\n1,0.5,7\n", "row 2 has 3 fields"),
    ("a missing field", b"epoch,loss\n1\n", "row 2 has 1 fields"),
    ("a NaN epoch", b"epoch,loss\nnan,0.5\n", "row 2: epoch 'nan'; expected epoch 1"),
    ("an infinite epoch", b"epoch,loss\ninf,0.5\n", "row 2: epoch 'inf'; expected epoch 1"),
    ("a fractional epoch", b"epoch,loss\n1.5,0.5\n", "row 2: epoch '1.5'; expected epoch 1"),
    ("epochs out of order", b"epoch,loss\n1,0.5\n3,0.4\n", "row 3: epoch '3'; expected epoch 2"),
    ("a word for a number", b"epoch,loss\n1,low\n", "row 2: 'low' is not a number"),
    ("a 128 KiB field", b"epoch,loss\n1," + b"9" * 131072 + b"\n", "row 2 has 2 fields of up to 131072 characters"),
    ("a 1 KiB field", b"epoch,loss\n1," + b"9" * 1024 + b"\n", "row 2 has 2 fields of up to 1024 characters"),
    ("no epoch column", b"loss,epoch\n0.5,1\n", "does not start with a unique 'epoch' column"),
], ids=lambda value: value if isinstance(value, str) and len(value) < 40 else "")
def test_metrics_csv_is_read_as_data(tmp_path, name, data, message):
    """metrics.csv goes into every model page and sweep report: one reader checks it, and
    what it refuses is one line naming the file (before: tracebacks in web and report)."""
    from tinkerflow.core.errors import RunDirError
    from tinkerflow.core.records import read_metrics_csv

    path = tmp_path / "metrics.csv"
    path.write_text(GOOD_METRICS)
    rows = read_metrics_csv(path)
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0]["val_loss"] == 0.6 and math.isinf(rows[1]["val_loss"])
    path.write_bytes(data)
    with pytest.raises(RunDirError) as caught:
        read_metrics_csv(path)
    assert str(caught.value).startswith(f"{path}") and message in str(caught.value), str(caught.value)


def test_a_huge_sparse_metrics_csv_is_refused_before_it_is_read(tmp_path):
    from tinkerflow.core.errors import RunDirError
    from tinkerflow.core.records import read_metrics_csv

    path = tmp_path / "metrics.csv"
    path.write_text(GOOD_METRICS)
    with path.open("r+b") as handle:
        handle.truncate(1024**3)  # 1 GB of holes: web once used 2 GB on it and crashed
    with pytest.raises(RunDirError, match="is more than 33,554,432 bytes"):
        read_metrics_csv(path)


def test_a_model_card_shows_what_a_phone_benchmark_row_lacks_as_a_dash():
    """bench.json's phone rows may lack sizes or timings (a page that failed to load): the card
    says '-' there (before: a TypeError traceback in web)."""
    from tinkerflow.web_export.builder import _card

    bench = {"batch": 8, "rows": [], "browser": {"batch": 1, "rows": [], "phone": [
        {"runtime": "litertjs", "variant": "float32", "warm_ms": 2.5}]}}
    card = _card({"config": {}}, [{"name": "litertjs", "label": "LiteRT.js", "variants": []}], bench)
    assert '<td data-label="download">- (- gzip)</td>' in card and "2.5 ms" in card, card[-600:]
