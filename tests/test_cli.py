"""The command line end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass

import pytest
from PIL import Image

from conftest import installed_plugin, one_unit_model, only_run_dir, read_run, run_cli, snapshot
from tinkerflow.core import ConfigError, DataError, Experiment, ExperimentConfig, SampleOptions, Splits, hookimpl
from tinkerflow.core.plugins import make_plugin_manager

EXPERIMENTS = ", ".join(sorted(make_plugin_manager().experiments))

SMOKE = ["experiment.samples=200", "experiment.test_samples=50", "trainer.epochs=2", "trainer.checkpoint_seconds=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real smoke run made with `tinkerflow train` in a fresh working directory."""
    cwd = tmp_path_factory.mktemp("work")
    result = run_cli("train", *SMOKE, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd, only_run_dir(cwd / "runs", "addition"), result


def test_plugins_table_and_json(tmp_path):
    table = run_cli("plugins", cwd=tmp_path, env={"COLUMNS": "160"})
    assert table.returncode == 0, table.stderr
    for text in ("addition", "sine", "tinkerflow-sine", "register_experiments", "built-in",
                 "Can a neural network add two numbers?", "Example plugin: learn y = sin(x)"):
        assert text in table.stdout
    rows = {row["name"]: row for row in json.loads(run_cli("plugins", "--json", cwd=tmp_path).stdout)}
    assert rows["addition"]["experiments"] == ["addition"] and rows["addition"]["builtin"]
    assert rows["captioning"]["described"]["text_to_image"]["description"].startswith("A text-to-image DCGAN")
    assert all(d["error"] is None for row in rows.values() for d in row["described"].values())
    assert rows["sine"]["distribution"] == "tinkerflow-sine" and not rows["sine"]["builtin"]


def test_plugins_table_in_a_pipe_keeps_every_error_whole(tmp_path):
    """Written to a pipe (a log, grep), no cell is cut to the terminal's 80 columns, and an
    error's brackets are text, not rich markup."""
    installed_plugin(tmp_path / "path", "needs_extra", "raise ImportError('install tinkerflow[sorting] first')\n")
    installed_plugin(tmp_path / "path", "typo", "from tinkerflow.core import hookimpl\n\n\n@hookimpl\n"
                                                 "def register_experiment(register):\n    pass\n")
    table = run_cli("plugins", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "path"), "COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any("error: failed to load: ImportError: install tinkerflow[sorting] first (" in line for line in lines)
    typo = next(line for line in lines if line.startswith("│ typo "))
    assert ("error: plugin 'typo' implements 'register_experiment' (" in typo and "which is not a tinkerflow hook; "
            "did you mean 'register_experiments'? expected one of: after_export, after_run, after_sweep, before_run, "
            "before_sweep, extra_callbacks, register_commands, register_experiments, register_exporters, "
            "register_trackers" in typo), typo


def test_a_config_field_without_a_default_after_defaults_names_the_plugin_file_and_field(tmp_path):
    source = ("from dataclasses import dataclass\n\nfrom tinkerflow.core import ExperimentConfig, knob\n\n\n"
              "@dataclass\nclass SorterConfig(ExperimentConfig):\n    length: int = knob(8, min=2)\n    width: int\n")
    installed_plugin(tmp_path / "path", "sorter", source)
    listed = run_cli("plugins", "--json", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "path")})
    error = next(row for row in json.loads(listed.stdout) if row["name"] == "sorter")["error"]
    assert error.startswith("failed to load: TypeError: non-default argument 'width' follows default argument"), error
    assert "give 'width' a default (e.g. width: int = knob(3)), or knob(help=...) for one each run must set" in error
    assert error.endswith(f"({tmp_path / 'path' / 'sorter.py'}, line 6)"), "the plugin's line, not dataclasses.py's"


def test_train_writes_a_run_directory_and_nothing_else(trained):
    cwd, run_dir, result = trained
    assert sorted(p.name for p in cwd.iterdir()) == ["runs"], "runs never write to the current directory"
    assert run_dir.parent == cwd / "runs" / "addition"
    info = read_run(run_dir)
    assert info["status"] == "completed" and info["epochs_run"] == 2
    assert info["overrides"] == SMOKE
    for name in ("run.json", "run.log", "metrics.csv", "model.keras", "checkpoints/state.json",
                 ".hydra/config.yaml", ".hydra/overrides.yaml", "samples/predictions.txt"):
        assert (run_dir / name).is_file(), name
    assert "run completed" in result.stderr
    assert "Traceback" not in result.stderr
    assert "cuda" not in result.stderr.lower(), "TensorFlow's start-up noise should be filtered"


def test_sample_command(trained):
    cwd, run_dir, _ = trained
    out = cwd / "sample_out"
    result = run_cli("sample", str(run_dir), "--pairs", "1+2,3+4", "--grid", "9", "--out", str(out), cwd=cwd)
    assert result.returncode == 0, result.stderr
    lines = (out / "predictions.txt").read_text().splitlines()
    assert [line.split(" = ")[0] for line in lines] == ["1 + 2", "3 + 4"]
    assert (out / "error_surface.png").is_file() and (out / "cross_section.png").is_file()
    assert "written to" in result.stdout


def test_multirun_basic_sweeper(tmp_path):
    result = run_cli("train", "-m", "experiment.hidden=1,2", *SMOKE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sweeps = list((tmp_path / "runs" / "addition" / "multirun").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p.name for p in sweeps[0].iterdir() if p.is_dir())
    assert jobs == ["0", "1"]
    hidden = [read_run(sweeps[0] / job)["config"]["experiment"]["hidden"] for job in jobs]
    assert hidden == [1, 2]
    assert "multirun: 2 completed, 0 failed" in result.stderr


def test_example_plugin_trains_through_the_cli(tmp_path):
    from tinkerflow_sine import Sine

    result = run_cli("train", "experiment=sine", *Sine.smoke_overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "runs", "sine")
    info = read_run(run_dir)
    assert info["status"] == "completed" and "test_mae" in info["metrics"]
    assert (run_dir / "samples" / "predictions.txt").read_text().startswith("sin(")


BAD_TRAIN = [
    (["experiment=nope"], f"unknown experiment 'nope'; expected one of: {EXPERIMENTS}"),
    (["experiment.foo=1"], "unknown config key 'experiment.foo'"),
    (["experiment.hidden=abc"], "config key 'experiment.hidden': Value 'abc' of type 'str' could not be converted to "
                                "Integer"),
    (["experiment.hidden=0"], "experiment.hidden=0 is out of range: expected >= 1"),
    (["experiment.max_sum=1"], "experiment.max_sum=1 is out of range: expected >= 2"),
    (["trainer.epochs=-1"], "trainer.epochs=-1 is out of range: expected >= 1"),
    (["-m", "experiment.hidden=1,0"], "experiment.hidden=0 is out of range: expected >= 1"),
    (["trainer=nope"], "trainer=nope is not an option; expected one of: default"),
    (["hydra/launcher=nope"], "Could not find 'hydra/launcher/nope'"),
    (["experiment"], "cannot read the override 'experiment' (missing EQUAL at '<EOF>'); expected key=value"),
    (["paths.runs=/proc/tinkerflow"], "cannot create run directories under '/proc/tinkerflow/addition'"),
]


@pytest.mark.parametrize("args, message", BAD_TRAIN, ids=[" ".join(a) for a, _ in BAD_TRAIN])
def test_bad_train_input(trained, args, message):
    cwd, _, _ = trained
    before = snapshot(cwd)
    result = run_cli("train", *args, cwd=cwd)
    assert result.returncode == 2
    assert result.stderr.strip() == f"tinkerflow: error: {message}" or (
        result.stderr.count("\n") == 1 and message in result.stderr and result.stderr.startswith("tinkerflow: error: ")
    ), result.stderr
    assert snapshot(cwd) == before, "nothing already saved may change"


def test_existing_run_directory_is_never_overwritten(trained):
    cwd, run_dir, _ = trained
    before = snapshot(cwd)
    result = run_cli("train", *SMOKE, f"hydra.run.dir={run_dir}", cwd=cwd)
    assert result.returncode == 2
    assert "already holds a run" in result.stderr and result.stderr.count("\n") == 1
    assert snapshot(cwd) == before


@pytest.mark.parametrize(
    "target, message",
    [
        ("runs/missing", "run directory 'runs/missing' does not exist"),
        ("runs/addition", "'runs/addition' is not a run: it has no run.json"),
    ],
)
def test_bad_run_directory(trained, target, message):
    cwd, _, _ = trained
    result = run_cli("sample", target, cwd=cwd)
    assert result.returncode == 2
    assert result.stderr.startswith(f"tinkerflow: error: {message}") and result.stderr.count("\n") == 1


def test_bad_sample_option(trained):
    cwd, run_dir, _ = trained
    result = run_cli("sample", str(run_dir), "--bogus", "1", cwd=cwd)
    assert result.returncode == 2
    assert result.stderr == ("tinkerflow: error: unknown option '--bogus'; expected one of: --pairs, --cross-section, "
                             "--grid\n")


def test_traceback_on_request(trained):
    cwd, _, _ = trained
    shown = run_cli("train", "experiment.hidden=0", cwd=cwd, env={"HYDRA_FULL_ERROR": "1"})
    assert shown.returncode != 0 and "Traceback" in shown.stderr and "ConfigError" in shown.stderr
    flag = run_cli("--traceback", "sample", "runs/missing", cwd=cwd)
    assert flag.returncode != 0 and "Traceback" in flag.stderr and "RunDirError" in flag.stderr


# -- a run that fails still leaves run.json --------------------------------------------------

@dataclass
class FailingConfig(ExperimentConfig):
    fail_in: str = "fit"


class Failing(Experiment):
    name = "failing"
    Config = FailingConfig

    def load_data(self):
        import numpy as np

        x = np.zeros((8, 1), "float32")
        return Splits(train=(x, x), validation=(x, x))

    def build_model(self):
        return one_unit_model()

    def fit(self, model, data, callbacks):
        raise RuntimeError("the GPU caught fire")


def test_failed_run_leaves_run_json_and_fires_after_run(tmp_path, monkeypatch, capsys):
    from tinkerflow.core import cli
    from tinkerflow.core.plugins import make_plugin_manager, register_plugin

    seen = []
    plugin = types.ModuleType("failing_plugin")
    plugin.register_experiments = hookimpl(lambda register: register(Failing))
    plugin.after_run = hookimpl(lambda run, result: seen.append(result.status))
    registry = make_plugin_manager({})
    register_plugin(registry, plugin, "failing")
    monkeypatch.setattr(cli, "_registry", lambda: registry)

    code = cli.main(["train", "experiment=failing", f"paths.runs={tmp_path}", "trainer.progress=none"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("tinkerflow: error: run failed: RuntimeError: the GPU caught fire (traceback in ")
    run_dir = only_run_dir(tmp_path, "failing")
    info = read_run(run_dir)
    assert info["status"] == "failed"
    assert info["error"]["stage"] == "fit" and info["error"]["type"] == "RuntimeError"
    assert "the GPU caught fire" in info["error"]["traceback"]
    assert seen == ["failed"]
    assert not (run_dir / "model.keras").exists()


@dataclass
class PickyOptions(SampleOptions):
    points: int = 3


class Picky(Failing):
    """Says no, the documented way (docs/plugins.md, "Bad input")."""

    name = "picky"
    SampleOptions = PickyOptions

    def load_data(self):
        if self.config.fail_in == "load_data":
            raise DataError("the folder 'x' holds no points; expected a CSV of x,y rows")
        return super().load_data()

    def fit(self, model, data, callbacks):
        return Experiment.fit(self, model, data, callbacks)

    def sample(self, model, out_dir, options=None):
        if options is not None and options.points > 5:
            raise ConfigError(f"--points {options.points} is more than this model can draw; expected at most 5")
        return {}


def test_a_config_or_data_error_from_plugin_code_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    from tinkerflow.core import cli
    from tinkerflow.core.plugins import make_plugin_manager, register_plugin

    plugin = types.ModuleType("picky_plugin")
    plugin.register_experiments = hookimpl(lambda register: register(Picky))
    registry = make_plugin_manager({})
    register_plugin(registry, plugin, "picky")
    monkeypatch.setattr(cli, "_registry", lambda: registry)
    base = ["train", "experiment=picky", f"paths.runs={tmp_path}", "trainer.progress=none", "trainer.epochs=1"]
    assert cli.main([*base, "experiment.fail_in=load_data"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "tinkerflow: error: the folder 'x' holds no points; expected a CSV of x,y rows", err
    assert cli.main([*base, "hydra.run.dir=" + str(tmp_path / "done")]) == 0
    capsys.readouterr()
    assert cli.main(["sample", str(tmp_path / "done"), "--points", "9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tinkerflow: error: --points 9 is more than this model can draw; expected at most 5"], err


def test_progress_is_plain_lines_without_a_terminal(trained):
    _, _, result = trained
    assert "epoch 1/2 loss=" in result.stderr and "epoch 2/2 loss=" in result.stderr
    assert "\x1b[" not in result.stderr, "no terminal escapes when stderr is not a terminal"


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_progress_is_a_rich_display_on_a_terminal(tmp_path, backend):
    """On TensorFlow with the step inside the epoch; the JAX loop runs an epoch as one call,
    so its display counts epochs only."""
    import os
    import pty
    import subprocess

    from conftest import TINKERFLOW

    master, slave = pty.openpty()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200", "TERM": "xterm"}
    proc = subprocess.Popen([TINKERFLOW, "train", *SMOKE, f"trainer.backend={backend}"], cwd=tmp_path, stdin=slave,
                            stdout=slave,
                            stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=300) == 0
    import re

    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    assert "━" in screen, "a rich progress bar"
    assert "2/2" in screen and "val_loss=" in screen and "eta" in screen
    assert ("step 5/5" in screen) == (backend == "tensorflow")


def test_runs_folder_with_spaces_and_commas(tmp_path):
    runs = tmp_path / "my runs, v2"
    result = run_cli("train", f"paths.runs='{runs}'", *SMOKE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_run(only_run_dir(runs, "addition"))["status"] == "completed"


def test_sample_help_lists_the_experiments_own_options(trained):
    cwd, run_dir, _ = trained
    everyone = run_cli("sample", "--help", cwd=cwd)
    assert everyone.returncode == 0, everyone.stderr
    assert "--out OUT" in everyone.stdout and "options of the addition experiment:" in everyone.stdout
    assert "--points INT" in everyone.stdout and "--beam-width INT" in everyone.stdout, "every installed experiment"
    own = run_cli("sample", str(run_dir), "--help", cwd=cwd)
    assert own.returncode == 0 and "--grid INT" in own.stdout and "(default: 129)" in own.stdout
    assert "options of the sine experiment" not in own.stdout, "a run's help shows its own experiment only"


def test_debug_smoke_uses_the_experiments_smoke_overrides_under_the_users(tmp_path):
    from tinkerflow.plugins.addition.experiment import Addition

    assert "experiment.samples=200" in Addition.smoke_overrides
    result = run_cli("train", "debug=smoke", "experiment.test_samples=40", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    config = read_run(only_run_dir(tmp_path / "runs", "addition"))["config"]
    assert config["experiment"]["samples"] == 200, "the experiment's own smoke size"
    assert config["experiment"]["test_samples"] == 40, "the command line wins over the smoke overrides"
    assert config["trainer"]["epochs"] == 2


def test_a_smoke_run_is_opened_again_with_the_config_it_trained_with(tmp_path):
    """The smoke overrides change the model (8 px, 4 latent numbers): the folder's saved config
    must say so, or sampling and exporting rebuild another model than the one saved."""
    from omegaconf import OmegaConf

    trained = run_cli("train", "experiment=dcgan", "debug=smoke", "trainer.progress=none", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-2000:]
    run_dir = only_run_dir(tmp_path / "runs", "dcgan")
    saved = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    assert (saved.experiment.image_size, saved.model.latent_dim) == (8, 4)
    sampled = run_cli("sample", str(run_dir), "--n", "4", cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    with Image.open(run_dir / "samples" / "samples_n4_seed0.png") as grid:
        assert grid.size[0] < 80, "a grid of 8-pixel images"

    saved.model.latent_dim = 6  # the config no longer describes the model it sits beside
    OmegaConf.save(saved, run_dir / ".hydra" / "config.yaml")
    before = (run_dir / "model.keras").read_bytes()
    for command in (("sample", str(run_dir), "--n", "4"), ("export", str(run_dir), "--format", "tflite")):
        refused = run_cli(*command, cwd=tmp_path)
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr, refused.stderr[-2000:]
        assert "latent (batch, 4)" in refused.stderr and "(batch, 6)" in refused.stderr, refused.stderr[-2000:]
    assert (run_dir / "model.keras").read_bytes() == before


def test_a_sweep_preset_from_a_plugin_chooses_the_experiment(tmp_path):
    """+sweep=sine_width lives in the sine plugin's own config folder and picks experiment=sine
    in its defaults list: the jobs are sine jobs, though no override names the experiment."""
    result = run_cli("train", "-m", "+sweep=sine_width", "experiment.units=3", "seed=0", "trainer.epochs=1",
                     "trainer.progress=none", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep,) = (tmp_path / "runs" / "sine" / "multirun").iterdir()
    info = read_run(sweep / "0")
    assert info["experiment"] == "sine" and info["config"]["experiment"]["units"] == 3


def test_cfg_job_works_when_a_plugin_has_config_files(tmp_path):
    """The example plugin sets config_dir, so tinkerflow adds hydra.searchpath=[...] to the
    command line: after the user's overrides, not after their --cfg flag."""
    for args in (["experiment=sine", "--cfg", "job"], ["--cfg", "job", "experiment=sine"],
                 ["experiment=sine", "experiment.units=3", "--cfg", "job", "--package", "experiment"]):
        shown = run_cli("train", *args, cwd=tmp_path)
        assert shown.returncode == 0, (args, shown.stderr)
        assert "units: " in shown.stdout, (args, shown.stdout)
    assert "units: 3" in shown.stdout
    listed = run_cli("train", "-m", "+sweep=sine_width", "--dry-run", cwd=tmp_path)
    assert listed.returncode == 0 and listed.stdout.startswith("8 jobs into runs/sine/multirun/"), listed.stderr
    assert not list(tmp_path.iterdir())


def test_the_best_epoch_follows_the_direction_keras_gives_the_monitored_metric():
    """A loss is better lower, a Keras metric object says its own direction (accuracy: higher),
    a metric function says none: then the objective's direction counts when it names it."""
    import keras
    import numpy as np

    from tinkerflow.core.experiment import Metric
    from tinkerflow.core.runner import _history_summary, monitored

    def agreement(y_true, y_pred):
        return keras.ops.mean(keras.ops.cast(keras.ops.abs(y_true - y_pred) < 0.5, "float32"))

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy", agreement])
    x = np.linspace(-1, 1, 16, dtype="float32").reshape(-1, 1)
    model.fit(x, (x > 0).astype("float32"), validation_data=(x, (x > 0).astype("float32")), epochs=1, verbose=0)
    loss = Metric("best_val_loss")
    assert monitored(model, "val_loss", loss) == Metric("val_loss")
    assert monitored(model, "val_accuracy", loss) == Metric("val_accuracy", higher_is_better=True)
    assert monitored(model, "val_agreement", loss) == Metric("val_agreement")
    assert monitored(model, "val_agreement", Metric("best_val_agreement", True)) == Metric("val_agreement", True)
    logs = {"val_loss": [0.9, 0.5, 0.7], "val_accuracy": [0.5, 0.6, 0.8]}
    assert _history_summary(logs, Metric("val_accuracy", True)) == {
        "best_epoch": 3, "best_val_loss": 0.7, "best_val_accuracy": 0.8}
    assert _history_summary(logs, Metric("val_loss"))["best_epoch"] == 2
