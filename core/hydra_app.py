"""tinkerflow's one adapter to Hydra's command line and launch.

``tinkerflow train`` checks every job before Hydra creates a folder, so it needs three
things Hydra has no public API for: the command line read as ``hydra.main`` reads it
(:func:`parse`), a basic sweep's jobs before the sweeper runs (:func:`sweep_jobs`), and a
launch with a given command line (:func:`launch`). They live here, and only here, so a
Hydra upgrade that moves them breaks this module and its tests (tests/test_hydra_app.py),
nothing else. Composition itself (``hydra.compose``) is public and lives in
:mod:`tinkerflow.core.config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import re
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import ConfigError


@dataclasses.dataclass(frozen=True)
class HydraArgs:
    """A ``tinkerflow train`` command line as Hydra reads it."""

    argv: tuple[str, ...]
    overrides: tuple[str, ...]
    multirun: bool
    #: Hydra only prints something (``--cfg``, ``--help``, ``--info`` ...) and runs no job
    info_only: bool

    def keys(self) -> set[str]:
        """The config keys the overrides set (``+``/``++``/``~`` stripped)."""
        return {override_key(o) for o in self.overrides}

    def plus(self, *extra: str) -> "HydraArgs":
        """The same command line with ``extra`` overrides after its own (before a flag that
        follows them, such as ``--cfg job``, which Hydra wants after every override)."""
        argv = list(self.argv)
        last = max((i for i, a in enumerate(argv) if self.overrides and a == self.overrides[-1]), default=None)
        at = len(argv) if last is None else last + 1
        return parse([*argv[:at], *extra, *argv[at:]])

    def without(self, key: str) -> "HydraArgs":
        """The same command line without the overrides of ``key``."""
        return parse([a for a in self.argv if override_key(a) != key])


def override_key(override: str) -> str:
    """The config key an override sets: ``++a.b=1`` -> ``a.b``."""
    return split_override(override)[0]


def split_override(override: str) -> tuple[str, str]:
    """An override's key and value as written: ``+a.b=1`` -> ``("a.b", "1")``; ``~a`` -> ``("a", "")``."""
    key, _, value = override.lstrip("+~").partition("=")
    return key, value


def parse(argv: Sequence[str]) -> HydraArgs:
    """Read ``argv`` with the parser ``hydra.main`` uses; a flag Hydra refuses is a
    :class:`ConfigError` naming it."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.exit_on_error = False
    try:
        known, unknown = parser.parse_known_args(list(argv))
    except (argparse.ArgumentError, SystemExit) as exc:  # a flag without its value
        raise ConfigError(f"cannot read the Hydra arguments {' '.join(argv)!r}; expected key=value overrides "
                          "and Hydra's flags (tinkerflow train --hydra-help lists them)") from exc
    if unknown and not unknown[0].startswith("-"):
        raise ConfigError(f"{unknown[0]!r} is separated from the other overrides by a flag; expected the key=value "
                          "overrides together, with Hydra's flags before or after them")
    if unknown:
        raise ConfigError(f"unknown flag {unknown[0]!r}; expected key=value overrides and Hydra's flags "
                          "(tinkerflow train --help and --hydra-help list them)")
    info_only = bool(known.cfg or known.help or known.hydra_help or known.info or known.shell_completion)
    return HydraArgs(tuple(argv), tuple(known.overrides), bool(known.multirun), info_only)


def sweep_jobs(overrides: Sequence[str]) -> tuple[list[list[str]] | None, list[str]]:
    """The jobs of a basic sweep (``a=1,2 b=x,y``: every combination, as Hydra's basic
    sweeper runs them) and the overrides every job shares. The jobs are None when another
    sweeper must expand them (Optuna's ``interval(...)``) or Hydra cannot parse them (its
    own launch then says why)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception:
        return None, list(overrides)
    shared = [o.input_line for o in parsed if not o.is_sweep_override()]
    if any(o.is_sweep_override() and not o.is_discrete_sweep() for o in parsed):
        return None, shared
    choices: dict[str, list[str]] = {}  # a key given twice: the last one counts, as in Hydra
    try:
        for o in parsed:
            key = o.get_key_element()
            values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
            choices[key] = [f"{key}={v}" for v in values]
    except Exception:
        return None, shared
    return [list(job) for job in itertools.product(*choices.values())], shared


def quoted(value: str | Path) -> str:
    """``value`` as a quoted Hydra override value (commas, spaces, quotes and backslashes
    kept): a quote is escaped, and so are the backslashes before a quote or the end."""
    return "'" + re.sub(r"(\\*)('|$)", lambda m: m[1] * 2 + ("\\'" if m[2] else ""), str(value)) + "'"


def output_dir(cfg, multirun: bool) -> Path:
    """The folder Hydra will write a composed config's run (or sweep) to."""
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)  # hydra.run.dir may interpolate ${hydra:...}
    return Path(cfg.hydra.sweep.dir if multirun else cfg.hydra.run.dir)


def launch(task: Callable, args: HydraArgs, config_module: str, config_name: str) -> None:
    """Run ``task`` as ``hydra.main`` would run it from the command line ``args``.

    ``hydra.main`` reads ``sys.argv``; it is set for the call and restored after it."""
    import hydra

    main = hydra.main(config_path=f"pkg://{config_module}", config_name=config_name)(task)
    saved = sys.argv
    sys.argv = ["tinkerflow train", *args.argv]
    try:
        main()
    finally:
        sys.argv = saved
