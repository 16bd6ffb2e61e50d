"""The layers point one way: cli → orchestration → runner, exporters, web pages, plugins →
run folders, configs and the plugin registry. Every import between project modules counts,
those inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

FOLDERS = {"core": "core", "plugins": "plugins", "exporters": "exporters", "web_export": "web_export"}

#: the lowest layer: run folders, records, configs, the plugin registry and the contracts
#: plugins implement (Experiment, Exporter)
BASE = {"core", "core.errors", "core.hookspecs", "core.tf_quiet", "core.lock", "core.rundir", "core.runfs", "core.records",
        "core.config", "core.plugins", "core.experiment", "core.callbacks", "core.resume", "core.jax_loop",
        "core.runs", "core.scaffold", "core.hydra_app", "exporters.base", "exporters.savedmodel"}
ORCHESTRATION = {"core.orchestration"}
CLI = {"core.cli"}
#: sideways imports inside the middle layer that are allowed, as (importer, imported) prefixes
SIDEWAYS = {("web_export", "exporters"), ("plugins", "exporters"), ("plugins", "web_export"),
            ("core.runner", "exporters.pipeline")}  # export=all: the job exports what it trained


def layer(module: str) -> int:
    if module in BASE:
        return 0
    if module in ORCHESTRATION:
        return 2
    if module in CLI:
        return 3
    return 1


def family(module: str) -> str:
    return module if module.startswith("core") else module.split(".")[0]


def project_imports() -> list[tuple[str, str, int]]:
    """(importer, imported, line) for every import of a project module by another."""
    found = []
    for folder in FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            if "node_modules" in path.parts or "plugin_template" in path.parts:
                continue
            parts = [folder, *path.relative_to(REPO / folder).with_suffix("").parts]
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = package.split(".")[: len(package.split(".")) - node.level + 1]
                        targets = [".".join([*base, node.module] if node.module else base)]
                    else:
                        targets = [node.module or ""]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    continue
                for target in targets:
                    if target.startswith("tinkerflow."):
                        target = target[len("tinkerflow."):]
                    if target.split(".")[0] in FOLDERS:
                        found.append((module, _module_of(target), node.lineno))
    return found


def _module_of(target: str) -> str:
    """A module path, cut to an existing module (``from x.y import name`` may name a function)."""
    parts = target.split(".")
    while parts:
        path = REPO / FOLDERS[parts[0]] / Path(*parts[1:]) if len(parts) > 1 else REPO / FOLDERS[parts[0]]
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return ".".join(parts)
        parts = parts[:-1]
    return target


def test_no_module_imports_a_higher_layer_or_sideways_without_leave():
    wrong = []
    for importer, imported, line in project_imports():
        if family(importer) == family(imported) or imported == importer:
            continue
        if layer(imported) > layer(importer):
            wrong.append(f"{importer}:{line} imports {imported}, a higher layer")
        elif layer(imported) == layer(importer) == 1 and not any(
                importer.startswith(a) and imported.startswith(b) for a, b in SIDEWAYS):
            wrong.append(f"{importer}:{line} imports {imported}, beside it")
    assert not wrong, "\n".join(wrong)


def test_the_scan_sees_imports_inside_functions():
    found = {(a, b) for a, b, _ in project_imports()}
    assert ("core.cli", "core.orchestration") in found, "cmd_train imports it inside the function"
    assert ("exporters.pipeline", "core.runs") in found


def test_only_the_hydra_adapter_reaches_into_hydras_internals():
    """Hydra's private modules and its ``hydra.main`` entry point are used in one module."""
    found = []
    for folder in FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            if "node_modules" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                         else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
                if any(n.startswith("hydra._internal") for n in names) or (
                        isinstance(node, ast.Attribute) and node.attr == "main"
                        and isinstance(node.value, ast.Name) and node.value.id == "hydra"):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found and all(f.startswith("core/hydra_app.py:") for f in found), found
