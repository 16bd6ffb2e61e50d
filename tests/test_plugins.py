"""Plugin discovery and the registry, with real entry points and throwaway plugins."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from dataclasses import dataclass

import pluggy
import pytest

from tinkerflow.core import Experiment, ExperimentConfig, hookimpl
from tinkerflow.core import plugins as plugin_module
from tinkerflow.core.errors import PluginError
from tinkerflow.core.plugins import make_plugin_manager, register_plugin, unregister_plugin


@dataclass
class ThrowawayConfig(ExperimentConfig):
    size: int = 3


class Throwaway(Experiment):
    name = "throwaway"
    Config = ThrowawayConfig

    def load_data(self):
        raise AssertionError("registered, never trained")

    def build_model(self):
        raise AssertionError("registered, never trained")


def make_plugin(**hooks):
    """A throwaway plugin module holding the given hook implementations."""
    module = types.ModuleType("throwaway_plugin")
    for name, function in hooks.items():
        setattr(module, name, hookimpl(function))
    return module


@pytest.mark.compat
def test_builtin_experiment_comes_from_an_entry_point():
    reg = make_plugin_manager({})
    info = reg.plugins["addition"]
    assert info.builtin and info.distribution == "tinkerflow" and info.error is None
    assert info.experiments == ["addition"]
    assert "register_experiments" in info.hooks
    assert reg.experiments["addition"].plugin == "addition"
    ep = [e for e in importlib.metadata.entry_points(group="tinkerflow") if e.name == "addition"]
    assert ep and ep[0].value == "tinkerflow.plugins.addition"


@pytest.mark.compat
def test_installed_third_party_plugin_is_discovered():
    reg = make_plugin_manager({})
    info = reg.plugins["sine"]
    assert not info.builtin
    assert info.distribution == "tinkerflow-sine"
    assert info.version == importlib.metadata.version("tinkerflow-sine")
    assert reg.experiment("sine").__module__ == "tinkerflow_sine"


def test_throwaway_plugin_registers_and_unregisters():
    reg = make_plugin_manager({})
    plugin = make_plugin(register_experiments=lambda register: register(Throwaway))
    try:
        register_plugin(reg, plugin, "throwaway-plugin")
        assert reg.experiment("throwaway") is Throwaway
        assert reg.plugins["throwaway-plugin"].experiments == ["throwaway"]
    finally:
        unregister_plugin(reg, "throwaway-plugin")
    assert "throwaway" not in reg.experiments
    with pytest.raises(PluginError, match="unknown experiment 'throwaway'; expected one of: .*addition"):
        reg.experiment("throwaway")


@pytest.mark.parametrize(
    "registered, message",
    [
        (lambda: int, "registers <class 'int'> as an experiment; expected a subclass of tinkerflow.core.Experiment"),
        (lambda: type("Bad", (Throwaway,), {"name": "Bad Name", "Config": ThrowawayConfig}),
         "with name 'Bad Name'; expected lowercase letters"),
        (lambda: type("NoCfg", (Throwaway,), {"name": "nocfg", "Config": dict}),
         "experiment 'nocfg' with Config=<class 'dict'>; expected a dataclass"),
        (lambda: type("Dup", (Throwaway,), {"name": "addition", "Config": ThrowawayConfig}),
         "registers 'addition', which plugin 'addition' already registered"),
        (lambda: type("Fast", (Throwaway,), {"name": "fast", "Config": ThrowawayConfig,
                                             "trainer_defaults": {"epoch": 5}}),
         "gives experiment 'fast' trainer_defaults={'epoch': 5}: unknown config key 'trainer.epoch'"),
        (lambda: type("Fast", (Throwaway,), {"name": "fast", "Config": ThrowawayConfig,
                                             "trainer_defaults": {"learning_rate": 0}}),
         "trainer.learning_rate=0.0 is out of range: expected > 0.0"),
        (lambda: type("Conf", (Throwaway,), {"name": "conf", "Config": ThrowawayConfig, "config_dir": "no_such"}),
         "experiment 'conf' has config_dir='no_such', but"),
        (lambda: type("Empty", (Experiment,), {"name": "empty", "Config": ThrowawayConfig}),
         "registers experiment 'empty' without build_model, load_data; expected an Experiment subclass that writes "
         "them (docs/plugins.md)"),
    ],
)
def test_invalid_registrations_name_the_offender(registered, message):
    reg = make_plugin_manager({})
    cls = registered()
    plugin = make_plugin(register_experiments=lambda register: register(cls))
    try:
        register_plugin(reg, plugin, "offender")
        error = reg.plugins["offender"].error
        assert error and "plugin 'offender'" in error and message in error
        assert reg.experiment("addition").__module__ == "tinkerflow.plugins.addition.experiment"
    finally:
        unregister_plugin(reg, "offender")


def test_an_exporter_must_subclass_exporter():
    reg = make_plugin_manager({})
    plugin = make_plugin(register_exporters=lambda register: register(dict))
    try:
        register_plugin(reg, plugin, "bad-exporter")
        assert "registers <class 'dict'> as an exporter; expected a subclass of tinkerflow.exporters.Exporter" in (
            reg.plugins["bad-exporter"].error)
        assert set(reg.exporters) == {"tfjs", "tflite"}
    finally:
        unregister_plugin(reg, "bad-exporter")


def test_a_plugin_that_raises_is_reported_and_the_others_work():
    reg = make_plugin_manager({})

    def explode(register):
        register(Throwaway)
        raise RuntimeError("database unreachable")

    plugin = make_plugin(register_experiments=explode)
    try:
        register_plugin(reg, plugin, "exploding")
        assert reg.plugins["exploding"].error == "register_experiments raised RuntimeError: database unreachable"
        assert "throwaway" not in reg.experiments, "a failed plugin must not leave half its registrations"
        assert reg.experiment("addition") and reg.experiment("sine")
    finally:
        unregister_plugin(reg, "exploding")


def test_a_plugin_that_fails_to_import_is_reported(monkeypatch, tmp_path):
    broken = importlib.metadata.EntryPoint(name="broken", value="tinkerflow_no_such_module_xyz", group="tinkerflow")
    real = plugin_module._entry_points
    monkeypatch.setattr(plugin_module, "_entry_points", lambda: [*real(), broken])
    reg = make_plugin_manager({})
    assert "failed to load: ModuleNotFoundError" in reg.plugins["broken"].error
    assert "tinkerflow_no_such_module_xyz" in reg.plugins["broken"].error
    assert set(reg.experiments) >= {"addition", "sine"}


def test_env_switches():
    assert "sine" not in make_plugin_manager({"TINKERFLOW_DISABLE_PLUGIN_AUTOLOAD": "1"}).experiments
    assert "addition" in make_plugin_manager({"TINKERFLOW_DISABLE_PLUGIN_AUTOLOAD": "1"}).experiments
    assert "sine" in make_plugin_manager({"TINKERFLOW_PLUGINS": "sine"}).experiments
    assert "sine" not in make_plugin_manager({"TINKERFLOW_PLUGINS": "something_else"}).experiments


def test_trace_switch_prints_hook_calls(capsys):
    make_plugin_manager({"TINKERFLOW_TRACE_PLUGINS": "1"})
    err = capsys.readouterr().err
    assert "register_experiments" in err


def test_a_misspelled_hook_is_refused_with_the_plugin_and_the_name_meant():
    registry = make_plugin_manager({"TINKERFLOW_DISABLE_PLUGIN_AUTOLOAD": "1"})
    plugin = make_plugin(register_experiment=lambda register: register(Throwaway))
    with pytest.raises(PluginError) as caught:
        register_plugin(registry, plugin, "typo")
    message = str(caught.value)
    assert message.startswith("plugin 'typo' implements 'register_experiment' (")
    assert message.endswith("which is not a tinkerflow hook; did you mean 'register_experiments'? expected one of: "
                            "after_export, after_run, after_sweep, before_run, before_sweep, extra_callbacks, "
                            "register_commands, register_experiments, register_exporters, register_trackers")
    assert registry.manager.get_plugin("typo") is None and "throwaway" not in registry.experiments
    optional = types.ModuleType("optional_plugin")
    optional.later_hook = pluggy.HookimplMarker("tinkerflow")(optionalhook=True)(lambda: None)
    register_plugin(registry, optional, "optional")  # pluggy's own rule: an optional hook may be unknown
    assert registry.manager.get_plugin("optional") is optional


def test_registry_is_a_factory_not_a_global():
    a, b = make_plugin_manager({}), make_plugin_manager({})
    assert a.manager is not b.manager
    plugin = make_plugin(register_experiments=lambda register: register(Throwaway))
    register_plugin(a, plugin, "only-in-a")
    assert "throwaway" in a.experiments and "throwaway" not in b.experiments


def test_listing_plugins_does_not_import_tensorflow():
    import subprocess

    code = ("import sys; from tinkerflow.core.plugins import make_plugin_manager; make_plugin_manager(); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_cli_orchestration_and_runner_start_no_keras_when_imported():
    """trainer.backend=jax must be chosen before Keras starts: importing the modules a train
    command goes through leaves that to use_backend (a subprocess: this one runs Keras)."""
    import subprocess

    code = ("import sys; import tinkerflow.core.cli, tinkerflow.core.orchestration, tinkerflow.core.runner, "
            "tinkerflow.exporters.pipeline; print('keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_config_field_without_a_default_says_what_to_set():
    from tinkerflow.core import knob
    from tinkerflow.core.cli import _experiment_row
    from tinkerflow.core.config import build_dataclass
    from tinkerflow.core.errors import ConfigError
    from tinkerflow.core.plugins import Registered

    @dataclass
    class NeedsOffset(ExperimentConfig):
        size: int = knob(3, min=1)
        seed_offset: int = knob(help="added to the seed")

    message = "experiment.seed_offset has no default; set experiment.seed_offset=<an integer>"
    for given in ({}, {"seed_offset": "???"}):
        with pytest.raises(ConfigError) as caught:
            build_dataclass(NeedsOffset, given, "experiment")
        assert str(caught.value) == message
    assert build_dataclass(NeedsOffset, {"seed_offset": 2}, "experiment").seed_offset == 2

    @dataclass
    class OutOfRange(ExperimentConfig):
        size: int = knob(0, min=1)

    def row(config):
        cls = type("Checked", (Experiment,), {"name": "checked", "Config": config, "description": "checks"})
        return _experiment_row(Registered("checked", cls, "p"))

    assert row(NeedsOffset) == {"description": "checks", "error": message}, "tinkerflow plugins shows it"
    assert row(OutOfRange)["error"] == "experiment.size=0 is out of range: expected >= 1", \
        "a default must pass its own check"
    assert row(ThrowawayConfig) == {"description": "checks", "error": None}


def test_a_plugin_with_a_syntax_error_is_reported_with_its_file_and_line(monkeypatch, tmp_path):
    package = tmp_path / "tinkerflow_typo"
    package.mkdir()
    (package / "__init__.py").write_text("from tinkerflow.core import hookimpl\n\ndef oops(:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = importlib.metadata.EntryPoint(name="typo", value="tinkerflow_typo", group="tinkerflow")
    real = plugin_module._entry_points
    monkeypatch.setattr(plugin_module, "_entry_points", lambda: [*real(), broken])
    reg = make_plugin_manager({})
    error = reg.plugins["typo"].error
    assert error.startswith("failed to load: SyntaxError: ") and f"({package / '__init__.py'}, line 3)" in error
    with pytest.raises(PluginError) as caught:
        reg.experiment("typo")
    assert "unknown experiment 'typo'" in str(caught.value) and "plugin 'typo' is disabled: failed to load" in str(
        caught.value)
    assert isinstance(caught.value.__cause__, SyntaxError), "--traceback shows the import error, not only this frame"


def _installed(monkeypatch, tmp_path, name: str, source: str, first: bool = False) -> None:
    """A plugin package ``name`` on sys.path with an entry point, as pip would install it."""
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    point = importlib.metadata.EntryPoint(name=name, value=name, group="tinkerflow")
    real = plugin_module._entry_points
    monkeypatch.setattr(plugin_module, "_entry_points", lambda: [point, *real()] if first else [*real(), point])


@pytest.mark.parametrize("source, error", [
    ("def register_commands(add_command):\n    raise RuntimeError('no licence server')\n",
     "register_commands raised RuntimeError: no licence server"),
    ("def register_commands(add_command):\n    add_command('export', 'mine', lambda p: None, lambda a, r: 0)\n",
     "adds the command 'export', which exists already"),
    ("def register_commands(add_command):\n    add_command('mine', 'mine', lambda p: 1 / 0, lambda a, r: 0)\n",
     "register_commands raised ZeroDivisionError"),
], ids=["raises", "takes a built-in's name", "configure raises"])
def test_a_plugin_whose_commands_break_is_disabled_and_the_built_ins_work(monkeypatch, tmp_path, capsys, source, error):
    from tinkerflow.core.cli import main

    name = f"tinkerflow_badcommands_{len(error)}"  # a module of its own for each case
    _installed(monkeypatch, tmp_path, name, "from tinkerflow.core import hookimpl\n\n@hookimpl\n" + source)
    assert main(["plugins", "--json"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if name in line]
    assert len(warnings) == 1 and error in warnings[0], captured.err
    assert warnings[0].startswith("tinkerflow: warning: plugin"), captured.err
    assert '"addition"' in captured.out
    with pytest.raises(SystemExit) as done:
        main(["export", "--help"])
    assert done.value.code == 0 and "--mediapipe" in capsys.readouterr().out, "the built-in export, not the plugin's"


def test_a_third_party_experiment_named_like_a_built_in_is_the_one_refused(monkeypatch, tmp_path):
    _installed(monkeypatch, tmp_path, "tinkerflow_impostor", "\n".join([
        "from dataclasses import dataclass",
        "from tinkerflow.core import Experiment, ExperimentConfig, hookimpl",
        "@dataclass", "class C(ExperimentConfig):", "    size: int = 1",
        "class Impostor(Experiment):", "    name = 'addition'", "    Config = C",
        "    def load_data(self): ...", "    def build_model(self): ...",
        "@hookimpl", "def register_experiments(register):", "    register(Impostor)", ""]), first=True)
    reg = make_plugin_manager({})
    assert reg.experiments["addition"].plugin == "addition"
    assert reg.experiment("addition").__module__ == "tinkerflow.plugins.addition.experiment"
    error = reg.plugins["tinkerflow_impostor"].error
    assert "registers 'addition', which plugin 'addition' already registered" in error
