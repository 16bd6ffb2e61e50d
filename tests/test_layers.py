"""The layers point one way: cli → orchestration → runner, exporters, web pages, plugins →
run folders, configs, the plugin registry and the contracts. Every import between project
modules counts, those inside functions too, and no two modules import each other, directly or
round a loop."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

FOLDERS = {"core": "core", "plugins": "plugins", "exporters": "exporters", "web_export": "web_export"}

#: the lowest layer: run folders, records, configs, the plugin registry and the contracts
#: plugins implement (Experiment, Exporter)
BASE = {"core", "core.errors", "core.hookspecs", "core.tf_quiet", "core.lock", "core.rundir", "core.runfs",
        "core.records", "core.config", "core.plugins", "core.experiment", "core.exporter", "core.callbacks",
        "core.resume", "core.jax_loop", "core.runs", "core.scaffold", "core.hydra_app", "core.npm", "core.learned",
        "core.batch_order", "core.initial_weights"}
ORCHESTRATION = {"core.orchestration"}
CLI = {"core.cli"}
#: sideways imports inside the middle layer that are allowed, as (importer, imported) prefixes
SIDEWAYS = {
    ("web_export", "exporters"),
    ("plugins", "web_export"),
    ("plugins.lyrics", "exporters.recurrent"),  # the LSTM's unrolled twin, for fixed-shape files
    ("core.runner", "exporters.pipeline"),  # export=all: the job exports what it trained
    ("plugins.captioning", "plugins.dcgan"),  # text_to_image is a conditional DCGAN painting captions
    ("plugins.captioning", "plugins.classifier"),  # photos are cut and scaled as the classifier does
}


def layer(module: str) -> int:
    if module in BASE:
        return 0
    if module in ORCHESTRATION:
        return 2
    if module in CLI:
        return 3
    return 1


def family(module: str) -> str:
    """Modules of one family may import each other whatever their layer (cycles aside): a plugin
    package, the exporters, the web pages. Every core module is a family of its own."""
    if module.startswith("core"):
        return module
    if module.startswith("plugins."):
        return ".".join(module.split(".")[:2])
    return module.split(".")[0]


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
                        source = ".".join([*base, node.module] if node.module else base)
                    else:
                        source = node.module or ""
                    # ``from package import module`` imports the module
                    targets = [f"{source}.{alias.name}" for alias in node.names]
                elif isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                else:
                    continue
                for target in targets:
                    if target.startswith("tinkerflow."):
                        target = target[len("tinkerflow."):]
                    if target.split(".")[0] in FOLDERS:
                        found.append((module, _module_of(target), node.lineno))
    return sorted(set(found))


def _module_of(target: str) -> str:
    """A module path, cut to an existing module (``from x.y import name`` may name a function)."""
    parts = target.split(".")
    while parts:
        path = REPO / FOLDERS[parts[0]] / Path(*parts[1:]) if len(parts) > 1 else REPO / FOLDERS[parts[0]]
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return ".".join(parts)
        parts = parts[:-1]
    return target


def layer_problems(imports: list[tuple[str, str, int]]) -> list[str]:
    """Each import of a higher layer, or of a module beside it in another family without leave."""
    wrong = []
    for importer, imported, line in imports:
        if family(importer) == family(imported):
            continue
        if layer(imported) > layer(importer):
            wrong.append(f"{importer}:{line} imports {imported}, a higher layer")
        elif layer(imported) == layer(importer) == 1 and not any(
                _within(importer, a) and _within(imported, b) for a, b in SIDEWAYS):
            wrong.append(f"{importer}:{line} imports {imported}, beside it")
    return wrong


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def cycles(imports: list[tuple[str, str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for importer, imported, _ in imports:
        if importer != imported:
            graph.setdefault(importer, set()).add(imported)
            graph.setdefault(imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_no_module_imports_a_higher_layer_or_sideways_without_leave():
    wrong = layer_problems(project_imports())
    assert not wrong, "\n".join(wrong)


def test_no_modules_import_each_other_round_a_loop():
    """A cycle within a family counts too (a plugin's two modules importing each other)."""
    loops = cycles(project_imports())
    assert not loops, "import cycles: " + "; ".join(" ↔ ".join(c) for c in loops)


def test_the_checks_catch_a_loop_and_a_plugin_reaching_into_another():
    assert cycles([("a", "b", 1), ("b", "c", 2), ("c", "a", 3), ("c", "d", 4), ("d", "d", 5)]) == [["a", "b", "c"]]
    assert layer_problems([("plugins.lyrics.experiment", "plugins.dcgan.model", 7),
                           ("plugins.lyrics.experiment", "plugins.lyrics.tokens", 8),
                           ("plugins.captioning.painter", "plugins.dcgan.model", 9),
                           ("core.plugins", "exporters.pipeline", 10),
                           ("core.runner", "exporters.pipeline", 11)]) == [
        "plugins.lyrics.experiment:7 imports plugins.dcgan.model, beside it",
        "core.plugins:10 imports exporters.pipeline, a higher layer"]


def test_the_scan_sees_imports_inside_functions():
    found = {(a, b) for a, b, _ in project_imports()}
    assert ("core.cli", "core.orchestration") in found, "cmd_train imports it inside the function"
    assert ("exporters.pipeline", "core.runs") in found


#: the only functions that import a project module inside their body, and why: the CLI
#: answers --help and bad input before anything heavy loads; Keras must start only after
#: the job chose its backend; a plugin's Keras side loads on first use
LAZY_BOUNDARIES = {
    ("core.cli", "*"): "the CLI boundary: each command imports what it runs",
    ("core.orchestration", "_training"): "the runner starts Keras: after every config is checked",
    ("core.runner", "execute"): "callbacks and resume start Keras: after use_backend chose its backend",
    ("core.runner", "_callbacks"): "the same",
    ("core.runner", "export_after_training"): "export=all: the export pipeline, only when asked",
    ("plugins.dcgan.experiment", "_networks"): "the dcgan's Keras side (model.py), on first use",
}


def function_imports() -> list[tuple[str, str, str, int]]:
    """(module, function, imported, line) for every import inside a function body; ``imported``
    is the module as written (``.orchestration``, ``tinkerflow.core.npm``, ``keras``)."""
    found = []
    for folder in FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            if "node_modules" in path.parts or "plugin_template" in path.parts:
                continue
            parts = [folder, *path.relative_to(REPO / folder).with_suffix("").parts]
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(function):
                    if isinstance(node, ast.Import):
                        names = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom):
                        names = ["." * node.level + (node.module or "")]
                    else:
                        continue
                    found += [(module, function.name, name, node.lineno) for name in names]
    return sorted(set(found))


def lazy_project_imports() -> list[tuple[str, str, str, int]]:
    """The imports of project modules among :func:`function_imports`."""
    return [row for row in function_imports() if row[2].startswith((".", "tinkerflow"))]


def lazy_problems(found: list[tuple[str, str, str, int]]) -> list[str]:
    return [f"{module}:{line} imports {imported} inside {function}(); expected it at the top of the module "
            "(only the boundaries in LAZY_BOUNDARIES import project modules late)"
            for module, function, imported, line in found
            if (module, function) not in LAZY_BOUNDARIES and (module, "*") not in LAZY_BOUNDARIES]


def test_project_modules_are_imported_late_only_at_the_boundaries():
    wrong = lazy_problems(lazy_project_imports())
    assert not wrong, "\n".join(wrong)
    used = {(m, f) for m, f, _, _ in lazy_project_imports()} | {(m, "*") for m, *_ in lazy_project_imports()}
    assert set(LAZY_BOUNDARIES) <= used, f"boundaries that import nothing any more: {set(LAZY_BOUNDARIES) - used}"


def test_the_lazy_import_check_would_fail():
    assert lazy_problems([("core.cli", "cmd_train", ".orchestration", 3), ("exporters.tflite", "page_assets",
                                                                         ".mediapipe_web", 9)]) == [
        "exporters.tflite:9 imports .mediapipe_web inside page_assets(); expected it at the top of the module "
        "(only the boundaries in LAZY_BOUNDARIES import project modules late)"]


#: what a module may import inside a function outside the boundaries: libraries that are
#: slow to import or start a runtime (Keras, TensorFlow, JAX), optional ones (MediaPipe,
#: Playwright, Ray, the TF.js converter, the LiteRT interpreters), and the ones every
#: command would otherwise pay for before it can answer (plots, images, Hydra, rich)
SLOW_TO_IMPORT = {"keras", "tensorflow", "jax", "matplotlib", "PIL", "mediapipe", "playwright", "ray", "tensorflowjs",
                  "ai_edge_litert", "tflite_runtime", "pandas", "hydra", "omegaconf", "rich", "yaml", "numpy",
                  "mlflow", "tensorboard"}


def test_other_imports_inside_functions_are_of_slow_libraries():
    """Anything else (the standard library, a project module) goes at the top; ruff's PLC0415
    (pyproject.toml) names the files allowed any lazy import, this test what they may import."""
    wrong = [f"{module}:{line} imports {name} inside {function}(); expected it at the top of the module"
             for module, function, name, line in function_imports()
             if name.split(".")[0] not in SLOW_TO_IMPORT and not name.startswith((".", "tinkerflow"))
             and (module, "*") not in LAZY_BOUNDARIES]
    assert not wrong, "\n".join(wrong)


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
