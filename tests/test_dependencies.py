"""The dependency set: what pyproject and the lock promise, and the TF.js converter without its pins."""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import REPO
from tinkerflow.core.errors import TinkerflowError
from tinkerflow.exporters import tfjs_converter

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
LOCK = {Requirement(line).name.lower().replace("_", "-"): line.split("==")[1].strip()
        for line in (REPO / "requirements.lock").read_text().splitlines() if line and not line.startswith("#")}


def test_python_3_11_to_3_13_are_supported_and_documented():
    spec = SpecifierSet(PROJECT["requires-python"])
    assert {"3.11.7", "3.12.1", "3.13.0"} <= set(spec.filter(["3.10.13", "3.11.7", "3.12.1", "3.13.0"]))
    assert "3.10.13" not in spec
    readme = (REPO / "README.md").read_text()
    assert "Python 3.11, 3.12 or 3.13" in readme


def test_the_lock_holds_todays_stack_and_no_tf_2_19():
    assert LOCK["tensorflow"].startswith("2.21.") and LOCK["keras"].startswith("3.15.")
    assert "tensorflow-decision-forests" not in LOCK and "tensorflow-hub" not in LOCK and "flax" not in LOCK
    assert LOCK["tensorflowjs"] == tfjs_converter.VERSION
    assert int(LOCK["optuna"].split(".")[0]) >= 4 and int(LOCK["sqlalchemy"].split(".")[0]) >= 2
    assert tuple(int(p) for p in LOCK["ray"].split(".")[:2]) >= (2, 55)


def test_every_direct_dependency_is_locked_and_the_lock_satisfies_it():
    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"].values():
        requirements += [Requirement(r) for r in extra if not r.startswith("tinkerflow")]
    for requirement in requirements:
        name = requirement.name.lower().replace("_", "-")
        assert name in LOCK, f"{name} is not in requirements.lock"
        assert requirement.specifier.contains(LOCK[name], prereleases=True), (name, LOCK[name])


def test_tinkerflow_never_requires_the_converter_or_its_pins():
    names = {Requirement(r).name.lower() for r in importlib.metadata.requires("tinkerflow") or []}
    assert not names & {"tensorflowjs", "tensorflow-decision-forests", "tensorflow-hub", "flax"}, names


def test_every_direct_dependency_is_in_docs_dependencies():
    text = (REPO / "docs" / "dependencies.md").read_text()
    for requirement in [*PROJECT["dependencies"], *(r for extra in PROJECT["optional-dependencies"].values()
                                                    for r in extra if not r.startswith("tinkerflow"))]:
        name = Requirement(requirement).name
        assert f"| {name}" in text or f" {name} " in text, f"{name} is missing from docs/dependencies.md"


def test_the_converter_loads_and_leaves_no_stand_in_behind():
    module = tfjs_converter.converter()
    assert callable(module.convert_tf_saved_model)
    for name in tfjs_converter.UNUSED:
        placed = sys.modules.get(name)
        assert placed is None or not isinstance(placed, tfjs_converter._Absent), name


def test_a_stand_in_that_is_used_says_which_feature_is_missing():
    module = tfjs_converter.converter()
    stand_in = module.tensorflow_decision_forests
    assert isinstance(stand_in, tfjs_converter._Absent)
    with pytest.raises(TinkerflowError, match="tinkerflow does not convert decision-forest SavedModels"):
        stand_in.keras  # noqa: B018
    assert not hasattr(stand_in, "__path__")


def test_without_the_converter_a_tfjs_export_is_refused_before_training(registry, monkeypatch):
    from tinkerflow.exporters.pipeline import select_variants

    monkeypatch.setattr(tfjs_converter, "installed_version", lambda: None)
    with pytest.raises(TinkerflowError) as info:
        select_variants(registry, ["tfjs"], None)
    message = str(info.value)
    assert "\n" not in message and "tinkerflow install-tfjs" in message and "tensorflowjs 4.22.0" in message
    assert select_variants(registry, ["tflite"], None)["tflite"], "other formats are not affected"
