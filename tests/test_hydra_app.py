"""The Hydra adapter reads command lines and expands sweeps exactly as Hydra itself does:
Hydra's own parser and basic sweeper are the references."""

from __future__ import annotations

import sys

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser

from tinkerflow.core.errors import ConfigError
from tinkerflow.core.hydra_app import launch, parse, split_override, sweep_jobs

COMMAND_LINES = [
    [],
    ["experiment=sine", "trainer.epochs=3"],
    ["-m", "model.hidden=1,2", "data.max_sum=16,256"],
    ["--multirun", "+sweep=addition_study", "hydra/launcher=joblib"],
    ["--cfg", "job", "experiment=lyrics"],
    ["-c", "hydra", "-p", "trainer"],
    ["--info", "searchpath"],
    ["--info"],
    ["--help"],
    ["--hydra-help"],
    ["-cn", "other", "x=1"],
    ["x=1", "y=a,b", "-m"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=lambda a: " ".join(a) or "(none)")
def test_a_command_line_reads_as_hydra_reads_it(argv):
    hydra = get_args_parser().parse_args(argv)
    ours = parse(argv)
    assert list(ours.overrides) == hydra.overrides
    assert ours.multirun == hydra.multirun
    prints_only = bool(hydra.cfg or hydra.help or hydra.hydra_help or hydra.info)
    assert ours.info_only == prints_only


def test_a_flag_hydra_does_not_know_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="unknown flag '--epochs'"):
        parse(["--epochs", "3"])
    with pytest.raises(ConfigError, match="cannot read the Hydra arguments '--cfg'"):
        parse(["--cfg"])
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["x=1", "-m", "y=a,b"])  # Hydra refuses overrides split by a flag
    with pytest.raises(ConfigError, match="'y=a,b' is separated from the other overrides by a flag"):
        parse(["x=1", "-m", "y=a,b"])


def test_adding_and_removing_overrides_keeps_the_flags():
    args = parse(["-m", "a=1,2", "hydra.sweep.dir=x"]).without("hydra.sweep.dir").plus("++b=3")
    assert args.argv == ("-m", "a=1,2", "++b=3") and args.multirun and args.keys() == {"a", "b"}


SWEEPS = [
    ["a=1,2", "b=x,y", "c=z"],
    ["+a=1,2", "~b", "++c=[1,2]", "d='x y'", "e=choice(1,2)", "a=3,4"],
    ["x=range(1,4)", "q=\"a,b\",c"],
    ["experiment=addition"],
]


@pytest.mark.parametrize("overrides", SWEEPS, ids=lambda o: " ".join(o))
def test_a_basic_sweep_has_the_jobs_hydras_basic_sweeper_runs(overrides):
    batches = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)
    jobs, shared = sweep_jobs(overrides)
    assert jobs == [job for batch in batches for job in batch]
    assert all(all(s in job or s.startswith("~") for s in shared) for job in jobs)


def test_a_sweep_only_another_sweeper_can_expand_has_no_jobs_here():
    jobs, shared = sweep_jobs(["lr=interval(0.001,0.1)", "epochs=3"])
    assert jobs is None and shared == ["epochs=3"]
    assert sweep_jobs(["a=b=c=("]) == (None, ["a=b=c=("])


def test_launch_runs_the_task_on_the_composed_config_and_restores_argv(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []
    argv = list(sys.argv)
    from hydra.core.hydra_config import HydraConfig

    launch(lambda cfg: seen.append((HydraConfig.get().runtime.choices.experiment, cfg.trainer.epochs,
                                    list(sys.argv))),
           parse(["experiment=addition", "trainer.epochs=7", f"hydra.run.dir={tmp_path / 'run'}"]),
           "tinkerflow.conf", "config")
    assert seen[0][:2] == ("addition", 7)
    assert seen[0][2][1:] == ["experiment=addition", "trainer.epochs=7", f"hydra.run.dir={tmp_path / 'run'}"]
    assert sys.argv == argv and (tmp_path / "run" / ".hydra" / "config.yaml").is_file()


@pytest.mark.parametrize("value", ["runs/a b,c", "it's", "back\\slash", "end\\", "a\\'b", "x=${y}", "[1,2]", ""])
def test_a_quoted_value_reads_back_as_itself(value):
    from tinkerflow.core.hydra_app import quoted

    override = OverridesParser.create().parse_override(f"hydra.run.dir={quoted(value)}")
    assert override.value() == value and not override.is_sweep_override()


@pytest.mark.parametrize("override, value", [
    ("a.b=1", "1"), ("+sweep=addition_post", "addition_post"), ("++trainer.epochs=3", "3"), ("~experiment", ""),
    ("~model.width=8", "8"), ("data.path='x=y'", "'x=y'"), ("hydra.searchpath=[a,b]", "[a,b]"),
])
def test_an_overrides_key_is_the_one_hydra_reads(override, value):
    (parsed,) = OverridesParser.create().parse_overrides([override])
    assert split_override(override) == (parsed.key_or_group, value)
