"""``tinkerflow new NAME``: a working experiment plugin package to start from.

The template (``plugin_template/``) is a complete plugin: a typed config, an experiment
with its trainer defaults and smoke overrides, a widget, and tests that train it, export it
and check its page in Chromium. Placeholders in paths and files: ``__NAME__`` (the
experiment name), ``__PACKAGE__`` (its Python package) and ``__CLASS__`` (its class).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .plugins import name_problem
from .runfs import make_staging, move, remove_tree, write_atomic

TEMPLATE = Path(__file__).parent / "plugin_template"


def new_plugin(name: str, parent: Path | str, taken: set[str] = frozenset()) -> Path:
    """Write the plugin package for experiment ``name`` into ``parent/tinkerflow-<name>``;
    refuses a bad or ``taken`` name and a folder that exists. Returns the new folder."""
    problem = name_problem(name)
    if problem:
        raise ConfigError(f"'{name}' cannot be an experiment name; {problem}")
    if name in taken:
        raise ConfigError(f"an experiment named '{name}' is already installed; expected a new name")
    parent = Path(parent)
    target = parent / f"tinkerflow-{name.replace('_', '-')}"
    if target.exists() or target.is_symlink():
        raise ConfigError(f"'{target}' already exists; expected a new folder (nothing was written)")
    words = {"__NAME__": name, "__PACKAGE__": f"tinkerflow_{name}",
             "__CLASS__": "".join(part.capitalize() for part in name.split("_"))}
    staging = make_staging(parent, f".{target.name}-")
    try:
        for source in sorted(TEMPLATE.rglob("*")):
            if source.is_dir() or "__pycache__" in source.parts:
                continue
            relative = _filled(str(source.relative_to(TEMPLATE)), words).removesuffix(".tmpl")
            out = staging / relative
            write_atomic(out, _filled(source.read_text(encoding="utf-8"), words))
        move(staging, target)
    except BaseException:
        remove_tree(staging)
        raise
    return target


def _filled(text: str, words: dict[str, str]) -> str:
    for placeholder, value in words.items():
        text = text.replace(placeholder, value)
    return text
