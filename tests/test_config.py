"""The real config tree composes for every experiment, and bad values get one-line errors."""

from __future__ import annotations

import pytest

from tinkerflow.core.config import TrainerConfig, compose_config, to_typed
from tinkerflow.core.errors import ConfigError


def typed(registry, *overrides):
    cfg = compose_config(list(overrides))
    name = cfg.hydra.runtime.choices.experiment
    return to_typed(cfg, name, registry.experiment(name))


def test_every_registered_experiment_composes(registry):
    assert {"addition", "sine"} <= set(registry.experiments)
    for name, entry in registry.experiments.items():
        result = typed(registry, f"experiment={name}")
        assert isinstance(result.experiment, entry.cls.Config)
        assert isinstance(result.trainer, TrainerConfig)
        smoke = typed(registry, f"experiment={name}", *entry.cls.smoke_overrides)
        assert smoke.trainer.epochs <= 3, f"{name}: smoke overrides must make a short run"


def test_default_is_addition_with_the_protocol_values(registry):
    result = typed(registry)
    assert result.experiment_name == "addition"
    cfg = result.experiment
    assert (cfg.hidden, cfg.max_sum, cfg.samples, cfg.validation_split) == (8, 256, 10000, 0.2)
    assert result.trainer.early_stopping.enabled and result.trainer.epochs <= 1000


def test_overrides_reach_the_dataclasses(registry):
    result = typed(registry, "experiment.hidden=4", "experiment.max_sum=16", "trainer.epochs=300", "seed=7")
    assert (result.experiment.hidden, result.experiment.max_sum, result.trainer.epochs, result.seed) == (4, 16, 300, 7)


def test_experiment_file_adjusts_trainer_defaults_and_cli_wins(registry):
    assert typed(registry).trainer.learning_rate == 0.01
    assert typed(registry, "trainer.learning_rate=0.5").trainer.learning_rate == 0.5
    assert typed(registry, "experiment=sine", "trainer.learning_rate=0.5").trainer.learning_rate == 0.5


def test_a_plugin_experiment_declares_its_trainer_defaults(registry):
    sine = typed(registry, "experiment=sine").trainer
    assert (sine.epochs, sine.learning_rate, sine.steps_per_execution,
            sine.early_stopping.patience) == (300, 0.01, 50, 20)
    assert sine.batch_size == TrainerConfig().batch_size, "what it does not declare stays the global default"
    assert typed(registry, "experiment=sine", "trainer.epochs=5").trainer.epochs == 5, "the command line wins"
    assert typed(registry, "experiment=sine", "debug=smoke").trainer.epochs == 2, "so does debug=smoke"


def test_debug_smoke_preset(registry):
    result = typed(registry, "debug=smoke")
    assert result.trainer.epochs == 2 and result.trainer.early_stopping.patience == 1


BAD = [
    (["experiment.hidden=0"], "experiment.hidden=0 is out of range: expected >= 1"),
    (["experiment.max_sum=1"], "experiment.max_sum=1 is out of range: expected >= 2"),
    (["trainer.epochs=-1"], "trainer.epochs=-1 is out of range: expected >= 1"),
    (["trainer.learning_rate=0"], "trainer.learning_rate=0.0 is out of range: expected > 0.0"),
    (["experiment.validation_split=0.95"], "experiment.validation_split=0.95 is out of range: expected <= 0.9"),
    (["trainer.optimizer=adamx"], "trainer.optimizer='adamx': expected one of adam, adamw, sgd, rmsprop"),
    (["experiment.hidden=abc"], "config key 'experiment.hidden': Value 'abc' of type 'str' could not be converted to "
                                "Integer"),
    (["trainer.epochs=1.5"], "config key 'trainer.epochs': Value '1.5' of type 'float' could not be converted to "
                             "Integer"),
    (["experiment.hiden=4"], "unknown config key 'experiment.hiden': AdditionConfig has no such field; did you mean "
                             "experiment.hidden? (expected one of: activation, hidden, max_sum, samples"),
    (["+experiment.hiden=4"], "unknown config key 'experiment.hiden'; expected one of: activation, hidden"),
    (["trainer.epoch=4"], "unknown config key 'trainer.epoch': TrainerConfig has no such field; did you mean "
                          "trainer.epochs?"),
    (["experiment=nope"], "experiment=nope is not an option; expected one of: "),
    (["seed=-1"], "seed=-1 is out of range: expected >= 0"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_values_are_one_line_errors(registry, overrides, message):
    with pytest.raises(ConfigError) as info:
        typed(registry, *overrides)
    text = str(info.value)
    assert message in text
    assert "\n" not in text


def test_experiment_files_hold_only_what_differs_from_the_dataclass_defaults(registry):
    """One source of defaults: the dataclasses (knob) hold them; conf/experiment/*.yaml only
    the values an experiment changes."""
    import dataclasses
    from pathlib import Path

    import yaml

    def flat(values, prefix=""):
        for key, value in (values or {}).items():
            if isinstance(value, dict):
                yield from flat(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    def defaults(instance):
        return dict(flat(dataclasses.asdict(instance)))

    files = sorted((Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))
    assert len(files) >= 6
    for path in files:
        cls = registry.experiment(path.stem)
        written = yaml.safe_load(path.read_text())
        schemas = {"experiment": cls.Config(), "trainer": TrainerConfig(),
                   "model": next(iter(cls.Models.values()))() if cls.Models else None,
                   "data": cls.Data() if cls.Data else None}
        for node, instance in schemas.items():
            same = {k: v for k, v in flat(written.get(node)) if instance is not None
                    and defaults(instance).get(k, object()) == v}
            assert not same, f"{path.name} repeats the defaults of {node}: {same}"


def test_a_plugin_ships_config_files_on_hydras_search_path(registry):
    from tinkerflow_sine import Sine

    assert Sine.config_dir == "conf"
    cfg = compose_config(["+sweep=sine_width"])
    assert cfg.hydra.runtime.choices.experiment == "sine"
    assert dict(cfg.hydra.sweeper.params) == {"experiment.units": "2,4,16,64", "seed": "0,1"}
    assert typed(registry, "+sweep=sine_width").trainer.epochs == 300, "and its trainer_defaults still apply"
