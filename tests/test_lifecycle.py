"""The order in which tinkerflow calls an experiment, and what it knows at each call, is the
table "The lifecycle" in docs/plugins.md: a real train, sample and export of a recording
experiment must call exactly those methods, first calls in that order, with ``state`` known
where the table says so."""

import functools
import inspect
import types

import numpy as np
import pytest
from conftest import REPO, one_unit_model

from tinkerflow.core import DataState, Experiment, Splits, hookimpl

CALLS: list[tuple[str, str, bool]] = []  # (command, method, state known)
COMMAND = {"name": "", "depth": 0}


class Scale(DataState):
    scale: float


class Recording(Experiment):
    name = "recording"
    State = Scale

    def load_data(self):
        x = np.linspace(-1, 1, 16, dtype="float32")[:, None]
        return Splits(train=(x, 2 * x), validation=(x, 2 * x), state=Scale(scale=2.0))

    def build_model(self):
        return one_unit_model()

    def example_inputs(self):
        return np.array([[0.5]], "float32")


def _recorded(name, method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if COMMAND["depth"] == 0:
            CALLS.append((COMMAND["name"], name, self._state is not None))
        COMMAND["depth"] += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            COMMAND["depth"] -= 1

    return wrapper


for _name, _member in inspect.getmembers(Recording, inspect.isfunction):
    if not _name.startswith("_"):
        setattr(Recording, _name, _recorded(_name, _member))


def documented() -> dict[str, list[tuple[str, bool]]]:
    text = (REPO / "docs" / "plugins.md").read_text()
    section = text.split("### The lifecycle", 1)[1].split("\n#", 1)[0]
    table: dict[str, list[tuple[str, bool]]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`tinkerflow"):
            command = cells[0].strip("`").split()[1]
            method = cells[1].strip("`").split("(")[0]
            table.setdefault(command, []).append((method, cells[2].startswith("yes")))
    return table


def observed() -> dict[str, list[tuple[str, bool]]]:
    seen: dict[str, list[tuple[str, bool]]] = {}
    for command, method, known in CALLS:
        if method not in [m for m, _ in seen.setdefault(command, [])]:
            seen[command].append((method, known))
    return seen


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    from tinkerflow.core import cli
    from tinkerflow.core.plugins import make_plugin_manager, register_plugin

    tmp = tmp_path_factory.mktemp("lifecycle")
    plugin = types.ModuleType("recording_plugin")
    plugin.register_experiments = hookimpl(lambda register: register(Recording))
    registry = make_plugin_manager({})
    register_plugin(registry, plugin, "recording")
    saved = cli._registry
    cli._registry = lambda: registry
    run = tmp / "run"
    try:
        for command, args in (("train", ["train", "experiment=recording", f"hydra.run.dir={run}", "trainer.epochs=2",
                                          "trainer.progress=none"]),
                              ("sample", ["sample", str(run), "--out", str(tmp / "out")]),
                              ("export", ["export", str(run), "--format", "tflite", "--quantize", "float32", "int8"])):
            COMMAND["name"] = command
            assert cli.main(args) == 0, command
    finally:
        cli._registry = saved
    return run


def test_train_sample_and_export_call_the_experiment_as_the_lifecycle_table_says(lifecycle):
    assert (lifecycle / "learned.json").read_text() == '{"scale": 2.0}'
    table = documented()
    assert set(table) == {"train", "sample", "export"}, table
    assert observed() == table


def test_sample_and_export_never_need_load_data_for_the_state(lifecycle):
    """What load_data learned comes back from learned.json: sample and export know it before
    any load_data call (export loads data only to measure the export metric)."""
    for command in ("sample", "export"):
        calls = [(method, known) for c, method, known in CALLS if c == command]
        assert calls and all(known for _, known in calls), calls
    assert "load_data" not in [m for c, m, _ in CALLS if c == "sample"]


def test_the_lifecycle_check_would_fail_on_another_order(lifecycle, monkeypatch):
    table = documented()
    table["train"] = list(reversed(table["train"]))
    assert observed() != table



