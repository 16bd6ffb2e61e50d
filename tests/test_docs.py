"""The documentation: the site builds with warnings as errors, the README stays a front
door, nothing points outside the repository, and the docs' commands and Python run here:
every ``tinkerflow`` line parses as the CLI parses it (its ``train`` overrides compose into
a valid typed config, its ``sample`` flags are the experiment's options), and the hook
examples register as plugins and do what they say."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

from conftest import REPO

PAGES = sorted((REPO / "docs").rglob("*.md"))
DOCS = [REPO / "README.md", *PAGES]


def blocks(path: Path, language: str) -> list[str]:
    """The fenced code blocks of one language in a Markdown file."""
    return re.findall(rf"^```{language}\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.S | re.M)


def command_lines() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        for block in blocks(path, "bash"):
            for line in block.replace("\\\n", " ").splitlines():
                for part in line.split("&&"):
                    part = part.strip()
                    if part.startswith("tinkerflow "):
                        found.append((path.relative_to(REPO).as_posix(), part))
    return found


def test_the_docs_site_builds_with_warnings_as_errors(tmp_path):
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                           cwd=REPO, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr[-3000:]
    for page in ("index.html", "experiments/addition/index.html", "widgets/index.html", "plugins/index.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_the_readme_is_a_front_door_and_its_links_exist():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) < 12_000, "the README points into docs/ rather than holding everything"
    assert "make main" in readme and "make test" in readme
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        assert (REPO / target).exists(), target


def test_nothing_points_outside_the_repository():
    sources = [*DOCS, *REPO.glob("conf/**/*.yaml"),
               *(p for folder in ("core", "plugins", "exporters", "web_export") for p in (REPO / folder).rglob("*")
                 if p.suffix in {".py", ".js", ".html", ".css", ".tmpl"} and "node_modules" not in p.parts)]
    for path in sources:
        text = path.read_text(encoding="utf-8")
        assert "EXPERIMENTS.md" not in text and "../shared" not in text, path


def test_every_experiment_page_carries_its_protocol():
    for name in ("addition", "lyrics", "classifier", "dcgan", "captioning", "text_to_image", "telephone"):
        page = (REPO / "docs" / "experiments" / f"{name}.md").read_text(encoding="utf-8")
        assert "## The protocol" in page and "## In tinkerflow" in page, name


@pytest.mark.parametrize("where, line", command_lines(), ids=lambda v: v if "/" not in v[:3] else None)
def test_every_documented_command_parses_and_every_job_of_it_is_valid(registry, where, line, tmp_path, monkeypatch):
    from tinkerflow.core import cli
    from tinkerflow.core.hydra_app import parse
    from tinkerflow.core.orchestration import preflight

    args = shlex.split(line.split(" #", 1)[0])[1:]
    parser = cli.build_parser()  # with the commands plugins add (telephone)
    if args[0] == "train":
        if "--resume" in args:
            args = args[:args.index("--resume")] + args[args.index("--resume") + 2:]
        hydra = parse([a for a in args[1:] if a != "--dry-run"])
        if any("<" in o or o.isupper() or "HEAD:" in o or "HOST:" in o for o in hydra.overrides):
            pytest.skip("a placeholder in the line")
        monkeypatch.chdir(tmp_path)
        # what `tinkerflow train` checks before it starts: every job of a sweep composes and validates
        plan = preflight(registry, hydra.overrides, hydra.multirun)
        assert plan.out_dir is not None
        return
    parsed, extra = parser.parse_known_args(args)
    if args[0] == "sample":
        experiment = registry.experiment(Path(parsed.run).parts[1])
        cli.parse_options(experiment.SampleOptions, extra)
    else:
        assert not extra, f"{where}: {line!r} has flags the command does not take: {extra}"


def hook_examples() -> list[str]:
    return [code for code in blocks(REPO / "docs" / "plugins.md", "python") if "@hookimpl" in code
            and "from ." not in code]


@pytest.mark.parametrize("code", hook_examples(), ids=lambda c: re.search(r"def (\w+)\(", c.split("@hookimpl")[1])[1])
def test_the_hook_examples_register_and_run(code, tmp_path, capsys):
    from tinkerflow.core.plugins import make_plugin_manager, register_plugin

    module = types.ModuleType("docs_example")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    registry = make_plugin_manager({})
    register_plugin(registry, module, "docs-example")  # pluggy checks each hook against its spec
    assert registry.plugins["docs-example"].hooks and not registry.plugins["docs-example"].error
    if hasattr(module, "extra_callbacks"):
        run = types.SimpleNamespace(path=tmp_path)
        (callback,) = module.extra_callbacks(run=run, experiment=None)
        callback.on_epoch_end(0, {"loss": 0.25})
        assert (tmp_path / "epochs.txt").read_text() == "1 0.25000\n"
    if hasattr(module, "after_run"):
        result = types.SimpleNamespace(status="completed", metrics={"test_accuracy": 0.5})
        module.after_run(run=types.SimpleNamespace(path=tmp_path), result=result)
        assert "test accuracy 0.5" in capsys.readouterr().out
    if hasattr(module, "register_commands"):
        added = []
        module.register_commands(add_command=lambda *a: added.append(a))
        assert added and added[0][0] == "epochs"


def test_every_python_block_in_the_docs_is_valid_python():
    for path in DOCS:
        for code in blocks(path, "python"):
            compile(code, str(path), "exec")


def documented_errors() -> list[tuple[str, str]]:
    """``$ tinkerflow ...`` lines in text blocks followed by the one-line error they print."""
    found = []
    for path in DOCS:
        for block in blocks(path, "text"):
            lines = block.splitlines()
            for command, answer in zip(lines, lines[1:]):
                if command.startswith("$ tinkerflow ") and answer.startswith("tinkerflow: error: "):
                    found.append((command[2:], answer))
    return found


@pytest.mark.parametrize("command, answer", documented_errors())
def test_documented_errors_are_what_the_command_prints(command, answer, tmp_path, monkeypatch, capsys):
    from tinkerflow.core import cli

    assert documented_errors(), "the docs show at least one"
    monkeypatch.chdir(tmp_path)
    assert cli.main(shlex.split(command)[1:]) == 2
    assert capsys.readouterr().err.strip() == answer, "the docs show the error as it is printed"
    assert not any(tmp_path.iterdir()), "and nothing was created"


def tour() -> list[str]:
    """The command lines of the README's five-minute tour, in order (comments cut)."""
    readme = REPO / "README.md"
    block = next(b for b in blocks(readme, "bash") if "tinkerflow plugins" in b)
    return [part.strip() for line in block.splitlines() for part in line.split(" #", 1)[0].split("&&")
            if part.strip().startswith("tinkerflow ")]


def test_the_readme_tour_runs_end_to_end(tmp_path):
    """Every line of the tour, in order, in a fresh folder, as a newcomer types it: training
    with ``debug=smoke`` added (the tour's own seconds-long mode), ``<run>`` and ``<stamp>``
    replaced by the names of the run and the sweep the tour made, and the preview server asked for its page."""
    import select
    import urllib.request

    from conftest import TINKERFLOW, run_cli

    lines = tour()
    assert len(lines) >= 12 and lines[0] == "tinkerflow plugins", lines
    made: dict[str, Path] = {}
    for line in lines:
        for placeholder, path in made.items():
            line = line.replace(placeholder, path.name)
        assert "<" not in line, f"{line!r}: the tour made nothing to put in its place"
        args = shlex.split(line)[1:]
        if args[0] == "train" and "--resume" not in args:
            args.append("debug=smoke")
        if args[0] == "serve":
            server = subprocess.Popen([TINKERFLOW, *args, "--port", "0"], cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
            try:
                ready, _, _ = select.select([server.stdout], [], [], 120)
                said = server.stdout.readline() if ready else ""
                url = re.search(r"http://\S+/", said)
                assert url, f"{line!r} said {said!r}"
                with urllib.request.urlopen(url[0]) as page:
                    assert page.status == 200 and b"<!doctype html>" in page.read(2000).lower()
            finally:
                server.kill()
                server.wait(timeout=60)
            continue
        done = run_cli(*args, cwd=tmp_path, timeout=900)
        assert done.returncode == 0, f"{line!r} exited {done.returncode}: {done.stderr[-2000:]}"
        runs = sorted((tmp_path / "runs" / "addition").glob("20*/run.json"))
        sweeps = sorted((tmp_path / "runs" / "addition" / "multirun").glob("*/multirun.yaml"))
        made.update({"<run>": runs[-1].parent} if runs else {}, **({"<stamp>": sweeps[-1].parent} if sweeps else {}))
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "tinkerflow-noisy-xor" / "pyproject.toml").is_file()
