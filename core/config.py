"""Typed configs, their Hydra registration, and validation with one-line errors.

Every config node that plugin code sees is a dataclass instance: the experiment's own
``Config`` (deriving from :class:`ExperimentConfig`), :class:`TrainerConfig` and the
root :class:`RootConfig`. Constraints live next to the fields, in ``field`` metadata:

``min`` / ``max``
    inclusive bounds for numbers;
``gt``
    an exclusive lower bound;
``choices``
    the allowed values of a string.

Every number must be finite (NaN and infinities are refused: ``nan < 0`` is false, so a
NaN would slip past any bound), and an integer must fit in a signed 32-bit value unless its
``max`` says otherwise (TensorFlow takes int32 shapes and counts).

Use :func:`knob` to declare such a field.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import inspect
import math
import re
import typing
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Iterable, Sequence

from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from omegaconf import MISSING, DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from .errors import ConfigError
from .hydra_app import override_key, quoted, split_override
from .records import interpolation_in, read_saved_yaml

CONFIG_MODULE = "tinkerflow.conf"
CONFIG_NAME = "config"


def knob(default: Any = MISSING, *, help: str = "", **constraints: Any) -> Any:
    """A dataclass field with a default, a help text and optional constraints."""
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata={"help": help, **constraints})
    return field(default=default, metadata={"help": help, **constraints})


@dataclass
class ExperimentConfig:
    """Base class of every experiment's config dataclass (its Hydra schema)."""


@dataclass
class EarlyStoppingConfig:
    enabled: bool = knob(True, help="stop when the monitored value stops improving")
    monitor: str = knob("val_loss", help="metric to watch")
    patience: int = knob(20, min=0, help="epochs without improvement before stopping")
    min_delta: float = knob(0.0, min=0.0, help="smallest change that counts as improvement")
    restore_best_weights: bool = knob(True, help="keep the weights of the best epoch")


@dataclass
class ReduceLRConfig:
    enabled: bool = knob(False, help="lower the learning rate when the monitored value plateaus")
    monitor: str = knob("val_loss", help="metric to watch")
    factor: float = knob(0.5, gt=0.0, max=0.99, help="multiply the learning rate by this")
    patience: int = knob(10, min=0, help="epochs without improvement before lowering it")
    min_lr: float = knob(1e-6, min=0.0, help="never go below this")


@dataclass
class TrainerConfig:
    epochs: int = knob(1000, min=1, max=1_000_000, help="maximum number of epochs")
    batch_size: int = knob(32, min=1, max=1_000_000, help="samples per gradient step")
    optimizer: str = knob("adam", choices=["adam", "adamw", "sgd", "rmsprop"])
    learning_rate: float = knob(1e-3, gt=0.0, help="optimizer step size")
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    reduce_lr: ReduceLRConfig = field(default_factory=ReduceLRConfig)
    steps_per_execution: int = knob(1, min=1, max=1_000_000, help="batches per compiled training call")
    backend: str = knob("auto", choices=["auto", "tensorflow", "jax"],
                        help="Keras backend for training (auto: the experiment's fastest, see Experiment.backends); "
                             "exports always run on TensorFlow")
    jit_compile: bool = knob(False, help="compile train steps with XLA (always on under JAX)")
    loop: str = knob("auto", choices=["auto", "keras"],
                     help="auto: on JAX, one compiled call per epoch for in-memory arrays; keras: model.fit")
    deterministic: bool = knob(True, help="deterministic TensorFlow ops (same seed, same metrics)")
    checkpoint_seconds: float = knob(5.0, min=0.0, help="write the resume checkpoint after an epoch at most this "
                                                        "often (a SIGKILL loses at most this much training and the "
                                                        "epoch in flight); 0 = after every epoch")
    progress: str = knob("auto", choices=["auto", "rich", "plain", "none"], help="auto: rich on a terminal, plain "
                                                                                 "lines otherwise")


@dataclass
class PathsConfig:
    runs: str = knob("runs", help="where run directories are created")


@dataclass
class ExportConfig:
    formats: list[str] = knob([], help="formats to export after training, e.g. [tfjs, tflite]")
    variants: list[str] = knob([], help="only these variants (e.g. [float32, int8]); empty: all")


#: the stores an MLflow tracker may write to: a local sqlite file or folder, or a tracking server
TRACKING_SCHEMES = ("sqlite", "file", "http", "https")


@dataclass
class TrackingConfig:
    use: list[str] = knob([], help="trackers that record the run, e.g. [mlflow, tensorboard]; tracking=mlflow, "
                                   "tracking=tensorboard, tracking=both choose them")
    uri: str = knob("", help="the MLflow store: empty = sqlite:///<paths.runs>/mlflow.db (absolute, one file for "
                             "every job); sqlite:///FILE, file:///FOLDER or http(s)://HOST:PORT of a server")
    experiment: str = knob("", help="the MLflow experiment the run is filed under; empty = the experiment's name")
    strict: bool = knob(False, help="a tracker that cannot record fails the run (--strict-tracking), instead of "
                                    "a note at the end")


@dataclass
class RootConfig:
    seed: int = knob(0, min=0, max=2**32 - 1, help="seed for Python, NumPy, TensorFlow and Keras")
    experiment: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    data: Any = None
    model: Any = None
    debug: Any = None


@dataclass
class TypedConfig:
    """The composed config as dataclasses, handed to the runner."""

    experiment_name: str
    seed: int
    experiment: ExperimentConfig
    trainer: TrainerConfig
    paths: PathsConfig
    export: ExportConfig
    raw: dict
    data: Any = None
    model: Any = None
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


def register_schemas(experiments: dict[str, type]) -> None:
    """Store the root schema and each experiment's Config in Hydra's ConfigStore.

    Each schema is stored as ``schema/experiment/<name>``; an experiment whose values live
    in a YAML file (``conf/experiment/<name>.yaml``) extends it through its defaults list.
    An experiment without such a file is offered directly as ``experiment/<name>``.
    """
    store = ConfigStore.instance()
    store.store(name="tinkerflow_schema", node=RootConfig, replace=True)
    yaml_names = _packaged_experiment_yaml()
    SEARCH_PATH.clear()
    for cls in experiments.values():
        folder = config_folder(cls)
        if folder is not None:
            SEARCH_PATH.append(f"file://{folder}")
            yaml_names |= {p.stem for p in (folder / "experiment").glob("*.yaml")}
    for name, cls in experiments.items():
        store.store(group="schema/experiment", name=name, node=cls.Config, replace=True)
        if getattr(cls, "Data", None) is not None:
            store.store(group="schema/data", name=name, node=cls.Data, replace=True)
        for model_name, model_cls in getattr(cls, "Models", {}).items():
            store.store(group="model", name=model_name, node=model_cls, replace=True)
        for data_name, data_cls in getattr(cls, "Datasets", {}).items():
            store.store(group="data", name=data_name, node=data_cls, replace=True)
        if name not in yaml_names:
            node = {"defaults": [f"/schema/experiment/{name}@experiment", "_self_"]}
            if cls.trainer_defaults:
                node["trainer"] = dict(cls.trainer_defaults)
            store.store(group="experiment", name=name, node=node, package="_global_", replace=True)


#: the config folders of the registered experiments (``Experiment.config_dir``), as Hydra
#: search path entries; :func:`search_path_override` hands them to Hydra
SEARCH_PATH: list[str] = []


def config_folder(cls: type) -> Path | None:
    """The folder of Hydra config files an experiment ships (its ``config_dir``, beside its
    module), or None."""
    name = getattr(cls, "config_dir", None)
    if not name:
        return None
    folder = (Path(inspect.getfile(cls)).parent / name).resolve()
    if not folder.is_dir():
        raise ConfigError(f"experiment '{cls.name}' has config_dir={name!r}, but '{folder}' is not a folder; "
                          "expected a folder of Hydra config files beside its module")
    return folder


def search_path_override(overrides: Sequence[str]) -> list[str]:
    """``hydra.searchpath=[...]`` with the experiments' config folders (none when there are
    none, or when the command line sets the search path itself)."""
    if not SEARCH_PATH or any(override_key(o) == "hydra.searchpath" for o in overrides):
        return []

    return [f"hydra.searchpath=[{','.join(quoted(p) for p in SEARCH_PATH)}]"]


def run_log_format() -> str:
    """The format of a run's ``run.log`` lines, from the logging config every job uses
    (``conf/hydra/job_logging/tinkerflow.yaml``): what else writes to run.log uses it too."""
    text = (files(CONFIG_MODULE) / "hydra" / "job_logging" / "tinkerflow.yaml").read_text(encoding="utf-8")
    return OmegaConf.create(text).formatters.file.format


def _packaged_experiment_yaml() -> set[str]:
    folder = files(CONFIG_MODULE) / "experiment"
    return {p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml")}


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """Compose the real config tree with ``overrides`` (Hydra syntax), as tests and the CLI do.

    Hydra's composition errors become one-line :class:`ConfigError` messages.
    """
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(CONFIG_MODULE):
            return compose(CONFIG_NAME, overrides=[*overrides, *search_path_override(overrides)],
                           return_hydra_config=True)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(describe_config_error(exc)) from exc
    finally:
        GlobalHydra.instance().clear()


def describe_config_error(exc: BaseException) -> str:
    """Turn a Hydra/OmegaConf exception into one line naming the key and the problem."""
    chain = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    for err in chain:
        if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None):
            first = str(getattr(err, "msg", None) or err).strip().splitlines()[0]
            unknown = re.match(r"Key '[^']*' not in '([^']*)'", first)
            if unknown:
                return _unknown_key(err.full_key, unknown.group(1), getattr(err, "object_type", None))
            if re.match(r"Key '[^']*' is not in struct", first):
                return f"unknown config key '{err.full_key}'; check the spelling (see --cfg job for the valid keys)"
            return f"config key '{err.full_key}': {first}"
    text = " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    text = text.split(" Config search path:")[0]
    for group, option, extra in (("hydra/launcher", "ray", "ray"), ("hydra/sweeper", "optuna", "optuna")):
        if f"Could not find '{group}/{option}'" in text:
            return (f"{group}={option} is not installed; expected the optional dependencies: "
                    f"pip install 'tinkerflow[{extra}]' (or make test, which installs them)")
    missing = re.search(r"Could not find '([\w/]+)/([^']+)' Available options in '[^']+': (.*)$", text)
    if missing and not missing.group(1).startswith("hydra"):
        group, option, options = missing.groups()
        return f"{group}={option} is not an option; expected one of: {', '.join(options.split())}"
    parse = re.search(r"Error parsing override '(.*)' (.*?) See https?://\S+ for details$", text)
    if parse:
        return (f"cannot read the override '{parse.group(1)}' ({parse.group(2)}); expected key=value, "
                "e.g. trainer.epochs=10 (quote values holding spaces or brackets)")
    if "Could not override" in text and "To append" in text:
        key = text.split("'")[1]
        return f"unknown config key '{key}'; check the spelling (see --cfg job for the valid keys)"
    return text or type(exc).__name__


def _unknown_key(key: str, schema: str, object_type: Any) -> str:
    """An unknown key, with the closest valid field and the list of valid ones."""
    message = f"unknown config key '{key}': {schema} has no such field"
    if not dataclasses.is_dataclass(object_type):
        return message
    names = sorted(f.name for f in dataclasses.fields(object_type))
    parent, _, leaf = key.rpartition(".")
    close = difflib.get_close_matches(leaf, names, n=1)
    if close:
        message += f"; did you mean {parent + '.' if parent else ''}{close[0]}?"
    return f"{message} (expected one of: {', '.join(names)})"


def with_smoke_overrides(cfg: DictConfig, smoke: Sequence[str], given: Sequence[str]) -> DictConfig:
    """``debug=smoke``: the experiment's ``smoke_overrides`` applied to the composed config,
    except for keys the command line set itself and keys the chosen data or model lacks."""
    import yaml

    named = {override_key(o) for o in given}
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for override in smoke:
            key, value = override.split("=", 1)
            if key not in named and OmegaConf.select(cfg, key, default=_ABSENT) is not _ABSENT:
                OmegaConf.update(cfg, key, yaml.safe_load(value), merge=False)
    return cfg


_ABSENT = object()


def to_typed(cfg: DictConfig, experiment_name: str, experiment_cls: type) -> TypedConfig:
    """Validate a composed config against the schemas and return dataclass instances."""
    try:
        body = {k: v for k, v in cfg.items() if k != "hydra"} if isinstance(cfg, DictConfig) else cfg
        raw = OmegaConf.to_container(OmegaConf.create(body), resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(describe_config_error(exc)) from exc
    experiment = build_dataclass(experiment_cls.Config, raw.get("experiment") or {}, "experiment")
    trainer = build_dataclass(TrainerConfig, raw.get("trainer") or {}, "trainer")
    paths = build_dataclass(PathsConfig, raw.get("paths") or {}, "paths")
    export = build_dataclass(ExportConfig, raw.get("export") or {}, "export")
    tracking = check_tracking(build_dataclass(TrackingConfig, raw.get("tracking") or {}, "tracking"))
    seed = check_value(_field_of(RootConfig, "seed"), int, raw.get("seed", 0), "seed")
    data_cls = getattr(experiment_cls, "Data", None)
    if getattr(experiment_cls, "Datasets", None):
        data = _choice_config(raw.get("data"), experiment_name, experiment_cls.Datasets, "data")
    elif data_cls is not None:
        data = build_dataclass(data_cls, raw.get("data") or {}, "data")
    elif raw.get("data"):
        raise ConfigError(f"config key 'data': the {experiment_name} experiment takes no data settings; "
                          "expected no data.* overrides")
    else:
        data = None
    return TypedConfig(experiment_name, seed, experiment, trainer, paths, export, raw, data,
                       _choice_config(raw.get("model"), experiment_name, getattr(experiment_cls, "Models", {}),
                                      "model"), tracking)


def check_tracking(tracking: TrackingConfig) -> TrackingConfig:
    """Refuse a tracker named twice and a store URI no MLflow tracker should write to."""
    doubled = sorted({name for name in tracking.use if tracking.use.count(name) > 1})
    if doubled:
        raise ConfigError(f"tracking.use names {', '.join(doubled)} twice; expected each tracker once")
    if tracking.uri:
        scheme, sep, rest = tracking.uri.partition("://")
        if not sep or scheme.lower() not in TRACKING_SCHEMES or not rest.strip("/"):
            raise ConfigError(f"tracking.uri={tracking.uri!r} is not a store tinkerflow logs to; expected "
                              "sqlite:///FILE, file:///FOLDER or http(s)://HOST:PORT (empty: "
                              "sqlite:///<paths.runs>/mlflow.db)")
    return tracking


def _choice_config(values: Any, experiment_name: str, options: dict[str, type], key: str) -> Any:
    """A config-group node (``model``, ``data``) as the chosen option's dataclass; its
    ``name`` field says which option it is."""
    if not options:
        if values:
            raise ConfigError(f"config key '{key}': the {experiment_name} experiment has no {key} choices; "
                              f"expected no {key}=... or {key}.* overrides")
        return None
    values = dict(values or {})
    name = values.get("name") or next(iter(options))
    if name not in options:
        raise ConfigError(f"{key}={name} is not a {experiment_name} {key} option; expected one of: "
                          f"{', '.join(options)}")
    values["name"] = name
    return build_dataclass(options[name], values, key)


def _field_of(cls: type, name: str) -> dataclasses.Field:
    return {f.name: f for f in dataclasses.fields(cls)}[name]


def build_dataclass(cls: type, values: Any, prefix: str) -> Any:
    """Build ``cls`` from a plain mapping, rejecting unknown keys, wrong types and out-of-range values."""
    if not isinstance(values, dict):
        raise ConfigError(f"config key '{prefix}': got {values!r}, expected a mapping of {cls.__name__} fields")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}.{unknown[0]}'; expected one of: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name in fields.keys() & values.keys():
        key = f"{prefix}.{name}"
        if dataclasses.is_dataclass(hints[name]):
            kwargs[name] = build_dataclass(hints[name], values[name] or {}, key)
        else:
            kwargs[name] = check_value(fields[name], hints[name], values[name], key)
    unset = [f for f in fields.values() if f.name not in kwargs and f.init and f.default_factory is dataclasses.MISSING
             and (f.default is dataclasses.MISSING or f.default == MISSING)]
    if unset:
        key = f"{prefix}.{unset[0].name}"
        raise ConfigError(f"{key} has no default; set {key}=<{_EXPECTED.get(hints[unset[0].name], 'a value')}>")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config '{prefix}': {exc}") from exc


INT_LIMIT = 2**31 - 1
_EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def check_value(f: dataclasses.Field, hint: Any, value: Any, key: str) -> Any:
    """Check one value against its type hint and its field's constraints; return it (ints widen to float)."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if optional else hint
    if value == MISSING:
        raise ConfigError(f"{key} has no default; set {key}=<{_EXPECTED.get(base, getattr(base, '__name__', base))}>")
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key}=null: expected {_EXPECTED.get(base, base)}")
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if base in _EXPECTED and (type(value) is not base):
        raise ConfigError(f"{key}={value!r}: expected {_EXPECTED[base]}")
    if typing.get_origin(base) is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}={value!r}: expected a list")
        item = (typing.get_args(base) or (Any,))[0]
        if item in _EXPECTED:
            plain = dataclasses.field()
            value = [check_value(plain, item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    meta = f.metadata
    if base is float and not math.isfinite(value):
        raise ConfigError(f"{key}={value!r}: expected a finite number")
    if base is int and not isinstance(value, bool) and "max" not in meta and abs(value) > INT_LIMIT:
        raise ConfigError(f"{key}={value!r} is out of range: expected at most {INT_LIMIT} in size")
    if "choices" in meta and value not in meta["choices"]:
        raise ConfigError(f"{key}={value!r}: expected one of {', '.join(map(str, meta['choices']))}")
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{key}={value!r} is out of range: expected >= {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{key}={value!r} is out of range: expected <= {meta['max']}")
    if "gt" in meta and value <= meta["gt"]:
        raise ConfigError(f"{key}={value!r} is out of range: expected > {meta['gt']}")
    return value


def number_flag(kind: type, **bounds: float) -> Any:
    """An argparse ``type=`` for a numeric command-line flag, checked as a config knob is
    (:func:`check_value`): finite, within int32 for an integer, and within ``bounds``
    (``min``, ``max``, ``gt``). Plugin commands use it for their flags too."""
    constraints = dataclasses.field(metadata=bounds)

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {_EXPECTED[kind]}") from None
        try:
            return check_value(constraints, kind, value, "value")
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("value=")) from None

    parse.__name__ = kind.__name__
    return parse


def check_group_choices(overrides: Iterable[str], experiment_name: str, experiment_cls: type) -> None:
    """``model=NAME`` and ``data=NAME`` must name one of this experiment's options (the groups
    hold every experiment's options, so Hydra alone would offer the others' too)."""
    for item in overrides:
        key, value = split_override(item)
        options = {"model": getattr(experiment_cls, "Models", {}), "data": getattr(experiment_cls, "Datasets", {})}
        if key in options and value and value != "null" and value not in options[key]:
            if not options[key]:
                raise ConfigError(f"{key}={value}: the {experiment_name} experiment has no {key} choices; "
                                  f"expected no {key}=... override")
            raise ConfigError(f"{key}={value} is not a {experiment_name} {key} option; expected one of: "
                              f"{', '.join(sorted(options[key]))}")


def experiment_choice(overrides: Iterable[str], default: str = "addition") -> str:
    """The experiment named by ``experiment=NAME`` among the overrides (the last one wins)."""
    name = default
    for item in overrides:
        if item.startswith("experiment="):
            name = item.split("=", 1)[1]
    return name


def load_run_config(run_dir: Path) -> DictConfig:
    """The composed config saved by Hydra in a run directory, read as data
    (:func:`~.records.read_saved_yaml`: size-capped, no aliases, no resolvers)."""
    path = Path(run_dir) / ".hydra" / "config.yaml"
    saved = read_saved_yaml(path, "the config.yaml Hydra saves in a run")
    if not isinstance(saved, dict):
        raise ConfigError(f"{path}: expected a mapping")
    return OmegaConf.create(saved)


#: the top-level keys a user can set without ``hydra.``: the only ones a run folder may replay
REPLAYABLE_ROOTS = frozenset({f.name for f in dataclasses.fields(RootConfig)} | {"sweep"})


def check_override_roots(overrides: Iterable[str]) -> None:
    """Every override sets a key of tinkerflow's config tree or of ``hydra``: an override
    that ``train`` accepts is one ``--resume`` can replay (:func:`replayable_overrides`).
    ``+foo=1`` (a new top-level key no experiment reads) is refused in one line."""
    for item in overrides:
        key = override_key(item)
        root = key.split(".")[0].split("/")[0].split("@")[0]
        if key and root not in REPLAYABLE_ROOTS and root != "hydra":
            raise ConfigError(f"{item}: '{root}' is not a key of tinkerflow's config; expected overrides of "
                              f"{', '.join(sorted(REPLAYABLE_ROOTS))} or hydra")


def replayable_overrides(overrides: Any, source: Path) -> list[str]:
    """The overrides a run folder recorded, checked before they are handed to Hydra again.

    A run folder may come from elsewhere, and Hydra overrides can do more than set values
    (``hydra.callbacks`` with a ``_target_`` runs any Python function). Only overrides of
    tinkerflow's own config tree are replayed (:data:`REPLAYABLE_ROOTS`: experiment,
    trainer, data, model, export, paths, seed ...); an override of ``hydra.*``, one whose
    value holds an instantiation key (``_target_`` and the like) or calls a resolver
    (``${oc.env:...}``), or one that cannot be parsed is refused in one line naming it.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"{source}: no list of 'overrides'; expected the record a run writes")
    parser = OverridesParser.create()
    for text in overrides:
        try:
            parsed = parser.parse_override(text)
        except Exception as exc:
            raise ConfigError(f"{source}: cannot read the recorded override {text!r}; expected key=value") from exc
        root = parsed.key_or_group.split(".")[0].split("/")[0]
        why = None
        if root not in REPLAYABLE_ROOTS or parsed.package is not None:
            why = f"'{text.split('=', 1)[0].lstrip('+~')}' is not a key of tinkerflow's config"
        elif _instantiation_key(parsed.value()) or re.search(r"\b_(target|args|partial|recursive|convert)_\b", text):
            why = "its value names something to instantiate"
        elif interpolation_in(parsed.key_or_group) or interpolation_in(_override_value(parsed)):
            why = "its value calls a resolver"
        if why:
            raise ConfigError(f"{source}: the recorded override {text!r} is refused ({why}); expected overrides of "
                              f"{', '.join(sorted(REPLAYABLE_ROOTS))} only (a run folder is data, never code)")
    return list(overrides)


def _override_value(parsed: Any) -> Any:
    try:
        return parsed.value()
    except Exception:  # noqa: BLE001 - a value Hydra itself cannot build is judged on its text
        return parsed.input_line


def _instantiation_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(str(k).startswith("_") and str(k).endswith("_") or _instantiation_key(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_instantiation_key(v) for v in value)
    return False
