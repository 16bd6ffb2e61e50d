"""Plugin discovery: a pluggy manager built on demand, and the registry it fills.

Environment switches (read when the manager is built):

``TINKERFLOW_DISABLE_PLUGIN_AUTOLOAD=1``
    load only the built-in plugins (entry points of the ``tinkerflow`` distribution).
``TINKERFLOW_PLUGINS=a,b``
    load only the third-party entry points with these names (built-ins always load).
``TINKERFLOW_TRACE_PLUGINS=1``
    print every hook call and its result to stderr.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import os
import re
import sys
import sysconfig
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping

import pluggy

from . import hookspecs
from .config import ConfigError, ExperimentConfig, TrainerConfig, build_dataclass, config_folder
from .errors import PluginError
from .experiment import Experiment
from .exporter import Exporter

BUILTIN_DISTRIBUTION = "tinkerflow"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
#: names that Hydra's override grammar or YAML read as a value, not a string: ``experiment=null``
#: would choose no experiment at all
RESERVED_NAMES = frozenset({"null", "none", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf"})


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name an experiment or exporter (None when it can)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return "expected lowercase letters, digits and underscores, starting with a letter (e.g. noisy_xor)"
    if name in RESERVED_NAMES:
        return (f"Hydra and YAML read '{name}' as a value (null, a boolean or a number), not a name; "
                f"expected another name (e.g. {name}_model)")
    return None


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin as shown by ``tinkerflow plugins``."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    exporters: list[str] = field(default_factory=list)
    trackers: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Registered:
    """A registered class (a tracker: its name and description) and the plugin that registered it."""

    name: str
    cls: type | None
    plugin: str
    description: str = ""


class Registry:
    """What the plugins registered: experiments, exporters, and the errors met."""

    def __init__(self, manager: pluggy.PluginManager, infos: dict[str, PluginInfo]):
        self.manager = manager
        self.plugins = infos
        self.experiments: dict[str, Registered] = {}
        self.exporters: dict[str, Registered] = {}
        self.trackers: dict[str, Registered] = {}
        self.load_errors: dict[str, BaseException] = {}  # plugin name -> the exception that disabled it

    @property
    def errors(self) -> list[PluginInfo]:
        return [info for info in self.plugins.values() if info.error]

    def experiment(self, name: str) -> type:
        """The Experiment class registered as ``name``; a one-line error if there is none."""
        if name not in self.experiments:
            known = ", ".join(sorted(self.experiments)) or "none"
            broken = [info for info in self.errors if info.name in self.load_errors]
            also = "".join(f"; plugin '{info.name}' is disabled: {info.error}" for info in broken)
            cause = self.load_errors[broken[0].name] if broken else None
            raise PluginError(f"unknown experiment '{name}'; expected one of: {known}{also}") from cause
        return self.experiments[name].cls

    def exporter(self, name: str) -> type:
        """The Exporter class registered as ``name``."""
        if name not in self.exporters:
            known = ", ".join(sorted(self.exporters)) or "none"
            raise PluginError(f"unknown export format '{name}'; expected one of: {known}")
        return self.exporters[name].cls

    def check_trackers(self, names: list[str]) -> None:
        """A one-line error when ``tracking.use`` names a tracker no plugin registered."""
        unknown = [n for n in names if n not in self.trackers]
        if unknown:
            known = ", ".join(sorted(self.trackers)) or "none installed"
            raise ConfigError(f"tracking.use names {', '.join(repr(n) for n in unknown)}, which no plugin tracks; "
                              f"expected one of: {known}")

    @property
    def hook(self) -> Any:
        return self.manager.hook


def _env_flag(env: Mapping[str, str], key: str) -> bool:
    return env.get(key, "").strip().lower() in {"1", "true", "yes", "on"}


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    points = []
    for ep in importlib.metadata.entry_points(group=hookspecs.PROJECT_NAME):
        key = (ep.name, ep.value)
        if key not in seen:  # a package visible twice on sys.path lists its entry points twice
            seen.add(key)
            points.append(ep)
    return points


def make_plugin_manager(env: Mapping[str, str] | None = None) -> Registry:
    """Build a plugin manager, load the installed plugins and fill a :class:`Registry`.

    A plugin that fails to import or to register is recorded with its error (see
    ``Registry.errors``); the other plugins keep working.
    """
    env = os.environ if env is None else env
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if _env_flag(env, "TINKERFLOW_TRACE_PLUGINS"):
        manager.trace.root.setwriter(lambda message: sys.stderr.write(message))
        manager.enable_tracing()

    only = {n.strip() for n in env.get("TINKERFLOW_PLUGINS", "").split(",") if n.strip()}
    no_autoload = _env_flag(env, "TINKERFLOW_DISABLE_PLUGIN_AUTOLOAD")
    infos: dict[str, PluginInfo] = {}
    load_errors: dict[str, BaseException] = {}
    for ep in _entry_points():
        dist = ep.dist.name if ep.dist else None
        builtin = dist == BUILTIN_DISTRIBUTION
        if not builtin and (no_autoload or (only and ep.name not in only)):
            continue
        info = PluginInfo(
            name=ep.name,
            distribution=dist,
            version=ep.dist.version if ep.dist else None,
            module=ep.value,
            builtin=builtin,
        )
        infos[ep.name] = info
        try:
            plugin = ep.load()
            manager.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"failed to load: {type(exc).__name__}: {_message(exc)} ({_where(exc)})"
            load_errors[ep.name] = exc
            continue
        try:
            check_hook_names(manager, plugin, ep.name)
        except PluginError as exc:
            manager.unregister(name=ep.name)
            info.error = str(exc)
            load_errors[ep.name] = exc
    registry = Registry(manager, infos)
    registry.load_errors = load_errors
    _collect(registry)
    for name, info in infos.items():
        plugin = manager.get_plugin(name)
        if plugin is not None:
            info.hooks = sorted(impl_name for impl_name in _hook_names(manager, plugin))
    return registry


def check_hook_names(manager: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """A one-line :class:`PluginError` when ``plugin`` implements a hook tinkerflow does not
    have (pluggy accepts any name, so ``register_experiment`` would be ignored in silence);
    hooks marked ``optionalhook=True`` are allowed, as pluggy's ``check_pending`` allows them."""
    known = sorted(n for n, caller in vars(manager.hook).items() if not n.startswith("_") and caller.has_spec())
    for caller in manager.get_hookcallers(plugin) or []:
        if caller.has_spec() or all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin):
            continue
        close = difflib.get_close_matches(caller.name, known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        where = _defined_at(plugin, caller.name)
        raise PluginError(f"plugin '{name}' implements '{caller.name}'{where}, which is not a tinkerflow hook; "
                          f"{hint}expected one of: {', '.join(known)}")


def _defined_at(plugin: Any, hook_name: str) -> str:
    function = getattr(getattr(plugin, hook_name, None), "__code__", None)
    return f" ({function.co_filename}, line {function.co_firstlineno})" if function else ""


def _message(exc: BaseException) -> str:
    text = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
    missing = re.match(r"non-default argument '(\w+)' follows default argument", text)
    if isinstance(exc, TypeError) and missing:
        field_name = missing.group(1)
        text += (f"; every field of a dataclass after one with a default needs one too: give '{field_name}' a "
                 f"default (e.g. {field_name}: int = knob(3)), or knob(help=...) for one each run must set")
    return text


def _where(exc: BaseException) -> str:
    """The file and line an import failed at: a syntax error's own, else the innermost frame
    outside Python's own library (the plugin's line, not the line in dataclasses.py it called)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}, line {exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not _in_python_library(f.filename)]
    frame = (own or frames)[-1] if frames else None
    return f"{frame.filename}, line {frame.lineno}" if frame else "no traceback"


def _in_python_library(filename: str) -> bool:
    if filename.startswith("<frozen "):
        return True
    library = sysconfig.get_paths()["stdlib"]
    return os.path.abspath(filename).startswith(os.path.join(library, "")) and "site-packages" not in filename


def register_plugin(registry: Registry, plugin: Any, name: str) -> None:
    """Register an in-process plugin object (used by tests and notebooks) and collect it."""
    registry.manager.register(plugin, name=name)
    try:
        check_hook_names(registry.manager, plugin, name)
    except PluginError:
        registry.manager.unregister(name=name)
        raise
    registry.plugins[name] = PluginInfo(name=name, module=getattr(plugin, "__name__", None))
    _collect(registry, only=name)
    registry.plugins[name].hooks = sorted(_hook_names(registry.manager, plugin))


def unregister_plugin(registry: Registry, name: str) -> None:
    """Remove a plugin and everything it registered."""
    disable_plugin(registry, name, "")
    registry.plugins.pop(name, None)


def disable_plugin(registry: Registry, name: str, error: str) -> None:
    """Take a plugin out (its hooks, experiments and exporters) and keep ``error`` as the
    reason ``tinkerflow plugins`` and the other commands show; the other plugins keep working."""
    if registry.manager.get_plugin(name) is not None:
        registry.manager.unregister(name=name)
    for table in (registry.experiments, registry.exporters, registry.trackers):
        for key in [k for k, entry in table.items() if entry.plugin == name]:
            del table[key]
    info = registry.plugins.setdefault(name, PluginInfo(name=name))
    info.error, info.experiments, info.exporters, info.trackers = error or None, [], [], []


def _hook_names(manager: pluggy.PluginManager, plugin: Any) -> list[str]:
    return [caller.name for caller in manager.get_hookcallers(plugin) or []]


def _collect(registry: Registry, only: str | None = None) -> None:
    """Ask every plugin (or just ``only``) to register its experiments and exporters."""
    manager = registry.manager
    names = [only] if only else [n for n, _ in manager.list_name_plugin()]
    # the built-in plugins first: a third-party one that registers a built-in's name is the one refused
    names.sort(key=lambda n: not registry.plugins.get(n, PluginInfo(name=n)).builtin)
    for plugin_name in names:
        info = registry.plugins.setdefault(plugin_name, PluginInfo(name=plugin_name))
        if info.error:
            continue
        others = [p for n, p in manager.list_name_plugin() if n != plugin_name]
        for hook_name, table, check in (
            ("register_experiments", registry.experiments, _check_experiment),
            ("register_exporters", registry.exporters, _check_exporter),
            ("register_trackers", registry.trackers, _check_tracker),
        ):
            caller = manager.subset_hook_caller(hook_name, remove_plugins=others)
            added: list[str] = []

            def register(*args: Any, _table=table, _check=check, _added=added, plugin_name=plugin_name) -> None:
                entry = _check(*args, plugin_name=plugin_name)
                if entry.name in _table:
                    raise PluginError(
                        f"plugin '{plugin_name}' registers '{entry.name}', "
                        f"which plugin '{_table[entry.name].plugin}' already registered"
                    )
                _table[entry.name] = entry
                _added.append(entry.name)

            try:
                caller(register=register)
            except Exception as exc:
                for name in added:
                    del table[name]
                message = str(exc) if isinstance(exc, PluginError) else (
                    f"{hook_name} raised {type(exc).__name__}: {exc}"
                )
                disable_plugin(registry, plugin_name, message)
                break
            setattr(info, hook_name.removeprefix("register_"), sorted(added))


def _check_name(cls: Any, plugin_name: str, kind: str) -> str:
    name = getattr(cls, "name", None)
    problem = name_problem(name)
    if problem:
        raise PluginError(f"plugin '{plugin_name}' registers {kind} {getattr(cls, '__name__', cls)!r} "
                          f"with name {name!r}; {problem}")
    return name


def _check_experiment(cls: Any, plugin_name: str) -> Registered:
    if not (isinstance(cls, type) and issubclass(cls, Experiment)):
        raise PluginError(
            f"plugin '{plugin_name}' registers {cls!r} as an experiment; "
            "expected a subclass of tinkerflow.core.Experiment"
        )
    name = _check_name(cls, plugin_name, "experiment")
    config = getattr(cls, "Config", None)
    if not (dataclasses.is_dataclass(config) and issubclass(config, ExperimentConfig)):
        raise PluginError(
            f"plugin '{plugin_name}' registers experiment '{name}' with Config={config!r}; "
            "expected a dataclass deriving from tinkerflow.core.ExperimentConfig"
        )
    _check_trainer_defaults(getattr(cls, "trainer_defaults", {}), plugin_name, name)
    try:
        config_folder(cls)
    except ConfigError as exc:
        raise PluginError(f"plugin '{plugin_name}': {exc}") from None
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise PluginError(f"plugin '{plugin_name}' registers experiment '{name}' without {', '.join(missing)}; "
                          "expected an Experiment subclass that writes them (docs/plugins.md)")
    return Registered(name=name, cls=cls, plugin=plugin_name)


def _check_trainer_defaults(defaults: Any, plugin_name: str, name: str) -> None:
    try:
        build_dataclass(TrainerConfig, dict(defaults), "trainer")
    except (ConfigError, TypeError, ValueError) as exc:
        raise PluginError(f"plugin '{plugin_name}' gives experiment '{name}' trainer_defaults={defaults!r}: "
                          f"{exc}") from None


def _check_exporter(cls: Any, plugin_name: str) -> Registered:
    if not (isinstance(cls, type) and issubclass(cls, Exporter)):
        raise PluginError(
            f"plugin '{plugin_name}' registers {cls!r} as an exporter; "
            "expected a subclass of tinkerflow.exporters.Exporter"
        )
    return Registered(name=_check_name(cls, plugin_name, "exporter"), cls=cls, plugin=plugin_name)


def _check_tracker(name: Any, description: Any = "", plugin_name: str = "") -> Registered:
    problem = name_problem(name)
    if problem:
        raise PluginError(f"plugin '{plugin_name}' registers a tracker named {name!r}; {problem}")
    if not isinstance(description, str):
        raise PluginError(f"plugin '{plugin_name}' registers tracker '{name}' with description {description!r}; "
                          "expected a line of text")
    return Registered(name=name, cls=None, plugin=plugin_name, description=description)
