"""A run folder, sweep or site from elsewhere never makes tinkerflow touch anything outside it.

Three layers, each tested here as a class rather than by example:

* every write, move and delete in the project's code goes through ``core/runfs.py`` (a
  scan of the source fails when a new writer appears elsewhere);
* the symlink matrix: for every command that reads or writes a run or a sweep and for every
  folder and file in them, the entry is replaced with a link to a victim; the command must
  exit 2 with one line naming the link, and the victim must be byte for byte unchanged;
* the guard under the helpers: a link that appears after a command has checked the folder
  is refused by each helper all the same.
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from conftest import REPO, run_cli

SOURCES = sorted(p for folder in ("core", "plugins", "exporters", "web_export") for p in (REPO / folder).rglob("*.py")
                 if "plugin_template" not in p.parts)

#: calls that write, move or delete: ``module.function`` or ``.method``
WRITERS = {
    "os.replace", "os.rename", "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.makedirs", "os.mkdir",
    "os.symlink", "os.link", "os.truncate", "os.chmod", "os.open",
    "shutil.rmtree", "shutil.move", "shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree",
    "tempfile.mkdtemp", "tempfile.mkstemp", "tempfile.TemporaryDirectory", "tempfile.NamedTemporaryFile",
    "logging.FileHandler", "np.save", "np.savez", "np.savez_compressed",
    ".write_text", ".write_bytes", ".mkdir", ".unlink", ".rmdir", ".rename", ".touch", ".symlink_to",
    ".hardlink_to", ".chmod", ".savefig", ".save_weights", ".save",
}

#: the writers that stay outside core/runfs.py, each with the reason it is safe
ALLOWED = {
    ("core/lock.py", "os.open"): "the lock file, opened with O_NOFOLLOW before the folder's tree is checked",
    ("core/cli.py", ".save"): "exporters.bench.save, which writes through runfs.write_json_atomic",
    ("core/npm.py", ".mkdir"): "install-tfjs: the npm folder the user names, no run involved",
    ("core/npm.py", "shutil.copy"): "install-tfjs: the package files of tinkerflow into that folder",
    ("exporters/node.py", "tempfile.NamedTemporaryFile"): "a private temporary file for Node's request",
    ("exporters/node.py", "os.unlink"): "that temporary file",
    ("exporters/deploy.py", ".chmod"): "the bundle's staging folder, made by runfs.make_staging",
    ("exporters/pipeline.py", "logging.FileHandler"): "run.log, after run_lock checked the run's tree",
    ("core/resume.py", "np.savez"): "into a BytesIO, then runfs.write_atomic",
    ("core/resume.py", ".save"): "ResumeCheckpoint.save, which writes through runfs",
    ("web_export/browser_bench.py", "tempfile.TemporaryDirectory"): "a private temporary site for the benchmark",
}


def _writer_calls(path: Path) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            qualified = f"{func.value.id}.{func.attr}" if isinstance(func.value, ast.Name) else None
            if qualified in WRITERS:
                found.append((qualified, node.lineno))
            elif f".{func.attr}" in WRITERS and qualified not in {"np.load", "json.dump"}:
                found.append((f".{func.attr}", node.lineno))
            elif func.attr == "open" and _writes(node, mode_at=0):
                found.append((".open", node.lineno))
        elif isinstance(func, ast.Name) and func.id == "open" and _writes(node, mode_at=1):
            found.append(("open", node.lineno))
    return found


def _writes(call: ast.Call, mode_at: int) -> bool:
    mode = call.args[mode_at] if len(call.args) > mode_at else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and bool(set(mode.value) & set("wax+"))


def test_every_write_move_and_delete_goes_through_runfs():
    """A new writer outside core/runfs.py fails here: route it through a runfs helper (which
    refuses links below a guarded folder), or add it to ALLOWED with the reason it is safe."""
    outside = []
    used = set()
    for path in SOURCES:
        where = str(path.relative_to(REPO))
        if where == "core/runfs.py":
            continue
        for call, line in _writer_calls(path):
            if (where, call) in ALLOWED:
                used.add((where, call))
            else:
                outside.append(f"{where}:{line}: {call}(...)")
    assert not outside, "writes outside core/runfs.py:\n" + "\n".join(outside)
    assert used == set(ALLOWED), f"ALLOWED lists writers that are gone: {sorted(set(ALLOWED) - used)}"


def test_the_scan_finds_each_kind_of_writer(tmp_path):
    """The scan itself: a file with one of each writer is seen whole (the test above cannot pass
    by seeing nothing)."""
    source = tmp_path / "writer.py"
    source.write_text("\n".join([
        "import os, shutil, tempfile, logging", "import numpy as np", "from pathlib import Path",
        "p = Path('x')", "p.write_text('a')", "p.mkdir()", "os.replace('a', 'b')", "shutil.rmtree('a')",
        "open('x', 'w')", "p.open('ab')", "tempfile.mkdtemp()", "np.save('x', 1)", "fig.savefig('x')",
        "open('x')", "p.open()", "p.read_text()", "'a'.replace('a', 'b')",
    ]))
    calls = [call for call, _ in _writer_calls(source)]
    assert calls == [".write_text", ".mkdir", "os.replace", "shutil.rmtree", "open", ".open", "tempfile.mkdtemp",
                     "np.save", ".savefig"]


# -- the guard under the helpers -------------------------------------------------------------

def _tree_digest(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (not following links) with its content's hash."""
    out = {}
    for top, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = Path(top) / name
            relative = str(path.relative_to(folder))
            if path.is_symlink():
                out[relative] = "link:" + os.readlink(path)
            elif path.is_file():
                out[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                out[relative] = "folder"
    return out


def _victim(root: Path) -> Path:
    victim = root / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "thesis.tex").write_text("years of work\n")
    (victim / "sub" / "notes.txt").write_text("more\n")
    return victim


class _Model:
    """Stands in for a Keras model: ``save`` writes the file it is given."""

    def save(self, path):
        Path(path).write_bytes(b"weights")

    save_weights = save


def _helpers(source: Path) -> dict:
    from tinkerflow.core import runfs

    return {
        "write_atomic": lambda d: runfs.write_atomic(d / "run.json", "{}"),
        "write_json_atomic": lambda d: runfs.write_json_atomic(d / "x" / "state.json", {}),
        "make_folder": lambda d: runfs.make_folder(d / "new"),
        "make_folder (the link itself)": lambda d: runfs.make_folder(d),
        "save_model_atomic": lambda d: runfs.save_model_atomic(_Model(), d / "model.keras"),
        "save_arrays": lambda d: runfs.save_arrays(d / "a.npz", x=[1]),
        "copy_file": lambda d: runfs.copy_file(source / "f.txt", d / "f.txt"),
        "copy_regular": lambda d: runfs.copy_regular(source / "f.txt", d / "f.txt"),
        "copy_tree_regular": lambda d: runfs.copy_tree_regular(source, d / "copy", source),
        "move (from)": lambda d: runfs.move(d / "thesis.tex", d.parent / "taken.tex"),
        "move (into)": lambda d: runfs.move(source / "f.txt", d / "f.txt"),
        "remove_file": lambda d: runfs.remove_file(d / "thesis.tex"),
        "remove_tree": lambda d: runfs.remove_tree(d / "sub"),
        "remove_tree (the link itself)": lambda d: runfs.remove_tree(d),
        "make_staging": lambda d: runfs.make_staging(d, ".staging-"),
        "replace_folder": lambda d: runfs.replace_folder(runfs.make_staging(d.parent, ".new-"), d / "sub"),
        "replace_folder (the link itself)": lambda d: runfs.replace_folder(runfs.make_staging(d.parent, ".new-"), d),
    }


HELPER_NAMES = list(_helpers(Path(".")))


@pytest.mark.parametrize("helper", HELPER_NAMES)
def test_each_helper_refuses_a_link_that_appeared_after_the_check(tmp_path, helper):
    """The folder was checked when it was taken; a link made since (by another process, or a
    plugin) is refused by the helper itself, and what it points to is unchanged."""
    from tinkerflow.core import runfs
    from tinkerflow.core.errors import RunDirError

    run = tmp_path / "run"
    (run / "real").mkdir(parents=True)
    (run / "real" / "thesis.tex").write_text("mine\n")
    ((run / "real") / "sub").mkdir()
    source = tmp_path / "source"
    source.mkdir()
    (source / "f.txt").write_text("a file of tinkerflow's\n")
    victim = _victim(tmp_path)
    before = _tree_digest(victim)
    with runfs.guarded(run):
        _helpers(source)[helper](run / "real")  # the same call works on a real folder
        (run / "export").symlink_to(victim)
        with pytest.raises(RunDirError, match="symbolic link"):
            _helpers(source)[helper](run / "export")
    assert _tree_digest(victim) == before


def test_a_link_deeper_down_and_a_fifo_are_found_when_a_folder_is_taken(tmp_path):
    from tinkerflow.core import runfs
    from tinkerflow.core.errors import RunDirError

    (tmp_path / "run" / "export" / "tflite" / "float32").mkdir(parents=True)
    (tmp_path / "run" / "export" / "tflite" / "float32" / "model.tflite").symlink_to("/etc/passwd")
    with pytest.raises(RunDirError, match=r"float32/model.tflite' is a symbolic link"):
        runfs.check_tree(tmp_path / "run")
    (tmp_path / "run" / "export" / "tflite" / "float32" / "model.tflite").unlink()
    os.mkfifo(tmp_path / "run" / "export" / "pipe")
    with pytest.raises(RunDirError, match="pipe' is not a regular file or folder"):
        runfs.check_tree(tmp_path / "run")
    (tmp_path / "run" / "export" / "pipe").unlink()
    runfs.check_tree(tmp_path / "run")


def test_outside_a_guarded_folder_the_helpers_write_as_asked(tmp_path):
    """Links above a guarded folder, or with no folder guarded, are the user's own paths."""
    from tinkerflow.core import runfs

    (tmp_path / "disk" / "runs").mkdir(parents=True)
    (tmp_path / "runs").symlink_to(tmp_path / "disk" / "runs")
    run = tmp_path / "runs" / "r1"
    with runfs.guarded(run):
        runfs.write_atomic(run / "export" / "x.json", "{}")
    assert (tmp_path / "disk" / "runs" / "r1" / "export" / "x.json").read_text() == "{}"
    runfs.write_atomic(tmp_path / "runs" / "free.txt", "ok")
    assert (tmp_path / "disk" / "runs" / "free.txt").is_file()


# -- the symlink matrix: every command, every folder and file ---------------------------------

@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A finished addition run, exported (tflite and tfjs, the deploy bundle) and benchmarked,
    and a finished two-job sweep with an earlier attempt set aside; made once, copied for
    every case."""
    ws = tmp_path_factory.mktemp("links")
    done = run_cli("train", "debug=smoke", "hydra.run.dir=run", "export=all", cwd=ws)
    assert done.returncode == 0, done.stderr
    done = run_cli("bench", "run", "--seconds", "0.01", "--batch", "8", cwd=ws)
    assert done.returncode == 0, done.stderr
    done = run_cli("train", "-m", "debug=smoke", "experiment.hidden=1,2", "hydra.sweep.dir=sweep", cwd=ws)
    assert done.returncode == 0, done.stderr
    earlier = ws / "sweep" / ".attempts" / "1-20261201-120000"  # what -m --resume moves a changed job into
    earlier.mkdir(parents=True)
    (earlier / "run.json").write_text('{"experiment": "addition", "status": "failed"}')
    return ws


def _entries(folder: Path) -> list[str]:
    """Every folder and file under ``folder``, as paths relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


RUN_COMMANDS = {
    "train --resume": lambda ws: ["train", "--resume", str(ws / "case")],
    "export": lambda ws: ["export", str(ws / "case"), "--format", "tflite"],
    "sample": lambda ws: ["sample", str(ws / "case")],
    "bench": lambda ws: ["bench", str(ws / "case"), "--seconds", "0.01"],
    "web": lambda ws: ["web", str(ws / "case"), "--out", str(ws / "site")],
    "telephone": lambda ws: ["telephone", "--captioner", str(ws / "case"), "--painter", str(ws / "case"),
                             "--out", str(ws / "telephone")],
}
SWEEP_COMMANDS = {
    "train -m --resume": lambda ws: ["train", "-m", "debug=smoke", "experiment.hidden=1,2", "--resume",
                                     str(ws / "case")],
    "report": lambda ws: ["report", str(ws / "case")],
}


def _case(ws: Path, original: str, entry: str, tmp: Path) -> tuple[Path, Path]:
    """A copy of ``ws/original`` as ``tmp/case`` whose ``entry`` is a link to a victim holding
    what was there (and a file of someone else's)."""
    case = tmp / "case"
    shutil.copytree(ws / original, case, symlinks=True)
    if original == "run":
        info = (case / "run.json").read_text().replace('"status": "completed"', '"status": "interrupted"')
        (case / "run.json").write_text(info)  # so that --resume really trains on
    victim = tmp / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("someone else's file\n")
    moved = victim / Path(entry).name
    shutil.move(case / entry, moved)
    (case / entry).symlink_to(moved, target_is_directory=moved.is_dir())
    return case, victim


def _in_process(argv: list[str]) -> tuple[int, str, str]:
    from tinkerflow.core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def _matrix(commands: dict, original: str, ws: Path, tmp_path: Path, monkeypatch) -> int:
    monkeypatch.chdir(tmp_path)
    cases = 0
    failures = []
    for entry in _entries(ws / original):
        for name, argv in commands.items():
            case_root = tmp_path / f"c{cases}"
            case_root.mkdir()
            case, victim = _case(ws, original, entry, case_root)
            before = _tree_digest(victim)
            code, out, err = _in_process(argv(case_root))
            lines = [line for line in err.splitlines() if line.strip()]
            ok = (code == 2 and len(lines) == 1 and "symbolic link" in lines[0] and _tree_digest(victim) == before
                  and not (case_root / "site").exists() and not (case_root / "telephone").exists())
            if not ok:
                failures.append(f"{name} with {entry} linked: exit {code}, stderr {err.strip()[-300:]!r}")
            shutil.rmtree(case_root)
            cases += 1
    assert not failures, f"{len(failures)} of {cases} cases:\n" + "\n".join(failures)
    return cases


def test_no_command_touches_a_run_through_a_link(workspace, tmp_path, monkeypatch):
    cases = _matrix(RUN_COMMANDS, "run", workspace, tmp_path, monkeypatch)
    entries = len(_entries(workspace / "run"))
    assert cases == entries * len(RUN_COMMANDS) and entries >= 50
    print(f"\nsymlink matrix, runs: {len(RUN_COMMANDS)} commands x {entries} paths = {cases} cases")


def test_no_command_touches_a_sweep_through_a_link(workspace, tmp_path, monkeypatch):
    cases = _matrix(SWEEP_COMMANDS, "sweep", workspace, tmp_path, monkeypatch)
    entries = len(_entries(workspace / "sweep"))
    assert entries >= 20
    print(f"\nsymlink matrix, sweeps: {len(SWEEP_COMMANDS)} commands x {entries} paths = {cases} cases")


# -- the resolver matrix: every spelling of ${, in every file that is resolved ----------------

SENTINEL = "sentinel-5f1c9a2e"
S = "TINKERFLOW_TEST_SENTINEL"

#: how a saved .hydra/config.yaml can spell a resolver call: (name, the YAML of
#: ``activation:``'s value, other lines replaced)
YAML_SPELLINGS = {
    "plain scalar": ("${oc.env:%s}" % S, {}),
    "single-quoted": ("'${oc.env:%s}'" % S, {}),
    "double-quoted": ('"${oc.env:%s}"' % S, {}),
    "\\x24 escape": ('"\\x24{oc.env:%s}"' % S, {}),
    "\\u0024 escape": ('"\\u0024{oc.env:%s}"' % S, {}),
    "\\U00000024 escape": ('"\\U00000024{oc.env:%s}"' % S, {}),
    "\\x7B escape for {": ('"$\\x7Boc.env:%s}"' % S, {}),
    "resolver name interpolated": ("${oc.${paths.runs}:%s}" % S, {"  runs: runs": "  runs: env"}),
    "escaped \\${": ("\\${oc.env:%s}" % S, {}),
    "inside oc.decode": ("\"${oc.decode:'${oc.env:%s}'}\"" % S, {}),
    "literal block": ("|-\n    ${oc.env:%s}" % S, {}),
    "folded block": (">-\n    ${oc.env:%s}" % S, {}),
    "explicit !!str tag": ("!!str ${oc.env:%s}" % S, {}),
    "anchor and alias": ("*secret", {"    monitor: val_loss": "    monitor: &secret ${oc.env:%s}" % S}),
    "in a flow mapping": ("{name: '${oc.env:%s}'}" % S, {}),
    "in a flow list": ("['${oc.env:%s}']" % S, {}),
    "deep in a nest": ("{a: {b: [[{c: '${oc.env:%s}'}]]}}" % S, {}),
    "as a key": ("sigmoid", {"  hidden: 8": "  hidden: 8\n  \"${oc.env:%s}\": 1" % S}),
}

#: how run.json's overrides can spell one (replayed by train --resume)
OVERRIDE_SPELLINGS = {
    "plain": ["experiment.activation=${oc.env:%s}" % S],
    "single-quoted": ["experiment.activation='${oc.env:%s}'" % S],
    "double-quoted": ['experiment.activation="${oc.env:%s}"' % S],
    "JSON \\u0024 escape": ["experiment.activation=\\u0024{oc.env:%s}" % S],
    "resolver name interpolated": ["paths.runs=env", "trainer.early_stopping.monitor='${oc.${paths.runs}:%s}'" % S],
    "escaped \\${": ["experiment.activation='\\\\${oc.env:%s}'" % S],
    "in a list": ["experiment.activation=[sigmoid,'${oc.env:%s}']" % S],
    "in a dict": ["experiment.activation={a:'${oc.env:%s}'}" % S],
    "in a sweep": ["experiment.activation=choice(sigmoid,'${oc.env:%s}')" % S],
    "in the key": ["experiment.${oc.env:%s}=1" % S],
    "inside oc.decode": ["seed=${oc.decode:'${oc.env:%s}'}" % S],
    "appended with +": ["+experiment.extra=${oc.env:%s}" % S],
}


def _leaks(case: Path, *texts: str) -> list[str]:
    found = [f"output: {t[-200:]!r}" for t in texts if SENTINEL in t]
    for path in case.rglob("*"):
        if path.is_file() and SENTINEL.encode() in path.read_bytes():
            found.append(str(path))
    return found


def test_no_saved_config_spelling_reaches_a_resolver(workspace, tmp_path, monkeypatch):
    """sample, export and web rebuild a run's experiment from .hydra/config.yaml: every
    spelling is refused in one line, and the sentinel appears nowhere."""
    monkeypatch.setenv(S, SENTINEL)
    monkeypatch.chdir(tmp_path)
    failures, cases = [], 0
    commands = {"sample": lambda c: ["sample", str(c)], "export": lambda c: ["export", str(c), "--format", "tflite"],
                "web": lambda c: ["web", str(c), "--out", str(c.parent / "site")]}
    for name, (value, lines) in YAML_SPELLINGS.items():
        for command, argv in commands.items():
            root = tmp_path / f"y{cases}"
            case = root / "case"
            shutil.copytree(workspace / "run", case)
            saved = case / ".hydra" / "config.yaml"
            text = saved.read_text().replace("  activation: sigmoid", f"  activation: {value}")
            for old, new in lines.items():
                assert old in text
                text = text.replace(old, new)
            saved.write_text(text)
            code, out, err = _in_process(argv(case))
            lines_out = [line for line in err.splitlines() if line.strip()]
            if code != 2 or len(lines_out) != 1 or _leaks(root, out, err):
                failures.append(f"{command}, {name}: exit {code}, {err.strip()[-200:]!r}, leaks "
                                f"{_leaks(root, out, err)}")
            cases += 1
    assert not failures, "\n".join(failures)
    print(f"\nresolver matrix, saved configs: {len(YAML_SPELLINGS)} spellings x {len(commands)} commands = {cases}")


def test_no_recorded_override_spelling_reaches_a_resolver(workspace, tmp_path, monkeypatch):
    """train --resume replays run.json's overrides: every spelling is refused before Hydra
    sees it, and the sentinel appears nowhere."""
    import json

    monkeypatch.setenv(S, SENTINEL)
    monkeypatch.chdir(tmp_path)
    failures = []
    for name, overrides in OVERRIDE_SPELLINGS.items():
        root = tmp_path / f"o{len(failures)}-{abs(hash(name))}"
        case = root / "case"
        shutil.copytree(workspace / "run", case)
        info = json.loads((case / "run.json").read_text())
        info.update(status="interrupted", overrides=[*info["overrides"], *overrides])
        text = json.dumps(info, indent=2)
        if "\\u0024" in name:
            text = text.replace("\\\\u0024", "\\u0024")  # the JSON escape itself, not a backslash
        (case / "run.json").write_text(text)
        code, out, err = _in_process(["train", "--resume", str(case)])
        lines = [line for line in err.splitlines() if line.strip()]
        if code != 2 or len(lines) != 1 or "the recorded override" not in lines[0] or _leaks(root, out, err):
            failures.append(f"{name}: exit {code}, {err.strip()[-300:]!r}, leaks {_leaks(root, out, err)}")
    assert not failures, "\n".join(failures)
    print(f"\nresolver matrix, recorded overrides: {len(OVERRIDE_SPELLINGS)} spellings x 1 file (run.json)")


def test_no_spelling_in_a_sweep_reaches_a_resolver(workspace, tmp_path, monkeypatch):
    """report reads a pending job's .hydra/config.yaml and the sweep's multirun.yaml: whatever
    they spell, nothing is resolved and the sentinel appears in no output or file."""
    monkeypatch.setenv(S, SENTINEL)
    monkeypatch.chdir(tmp_path)
    failures, cases = [], 0
    for name, (value, lines) in YAML_SPELLINGS.items():
        for target in ("0/.hydra/config.yaml", "multirun.yaml"):
            root = tmp_path / f"s{cases}"
            case = root / "case"
            shutil.copytree(workspace / "sweep", case)
            (case / "0" / "run.json").unlink()  # a pending job: its config is read from .hydra
            saved = case / target
            text = saved.read_text()
            anchor = "  activation: sigmoid" if "config" in target else "    task:"
            assert anchor in text
            text = text.replace(anchor, f"  activation: {value}" if "config" in target else
                                f"    task:\n    - experiment.activation={value.strip(chr(39))}")
            for old, new in lines.items():
                text = text.replace(old, new)
            saved.write_text(text)
            code, out, err = _in_process(["report", str(case)])
            if code not in (0, 2) or "Traceback" in err or _leaks(root, out, err):
                failures.append(f"report, {target}, {name}: exit {code}, {err.strip()[-200:]!r}, "
                                f"leaks {_leaks(root, out, err)}")
            cases += 1
    assert not failures, "\n".join(failures)
    print(f"\nresolver matrix, sweeps: {len(YAML_SPELLINGS)} spellings x 2 files = {cases}")
