"""The fast checks on every other supported Python found on this machine.

``make test`` runs the whole suite on the machine's ``python3`` (in ``.venv``), then this
script, for each other interpreter that ``requires-python`` in pyproject.toml admits
(``python3.X`` on PATH, and pyenv's versions): sets up ``.venv-3.X`` (``make setup-test``,
every interpreter at once, logs in build/other-pythons/), then on each in turn runs the
README's main job on a smoke config (train, export through the gate, build the site) and the
tests marked ``compat`` (plugin discovery, every experiment's smoke run, an exported model on
a page in Chromium).

    .venv/bin/python tests/other_pythons.py          # every one found
    .venv/bin/python tests/other_pythons.py --list   # only say which
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]


def supported() -> SpecifierSet:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return SpecifierSet(project["requires-python"])


def candidates() -> list[str]:
    found = [shutil.which(f"python3.{minor}") for minor in range(8, 20)]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found += sorted(glob.glob(f"{pyenv_root}/versions/*/bin/python"))
    return [path for path in found if path]


def version_of(python: str) -> str | None:
    done = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                          capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def other_pythons() -> dict[str, str]:
    """major.minor -> interpreter, for each supported Python other than this one."""
    spec, mine = supported(), "%d.%d" % sys.version_info[:2]
    chosen: dict[str, str] = {}
    for python in candidates():
        full = version_of(python)
        if not full or full not in spec:
            continue
        minor = full.rsplit(".", 1)[0]
        if minor != mine and minor not in chosen:
            chosen[minor] = python
    return dict(sorted(chosen.items(), key=lambda item: tuple(int(p) for p in item[0].split("."))))


def setup_all(found: dict[str, str]) -> dict[str, tuple[float, int, Path]]:
    """``make setup-test`` for every interpreter at once (mostly unpacking wheels, so they
    overlap well): minor -> (seconds, exit code, log file)."""
    logs = REPO / "build" / "other-pythons"
    logs.mkdir(parents=True, exist_ok=True)
    started, running = time.monotonic(), {}
    for minor, python in found.items():
        command = ["make", "setup-test", f"PYTHON={python}", f"VENV=.venv-{minor}"]
        print(f"== Python {minor}: setup: {' '.join(command)} (log: build/other-pythons/setup-{minor}.log)",
              flush=True)
        log = (logs / f"setup-{minor}.log").open("w")
        running[minor] = (subprocess.Popen(command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT), log)
    done = {}
    for minor, (process, log) in running.items():
        code = process.wait()
        log.close()
        done[minor] = (time.monotonic() - started, code, Path(log.name))
        if code:
            print(f"== Python {minor}: setup failed (exit {code}); the end of its log:", flush=True)
            print("\n".join(Path(log.name).read_text(errors="replace").splitlines()[-40:]), flush=True)
    return done


def check(minor: str) -> list[tuple[str, float, int]]:
    """The main job and the compat tests in ``.venv-<minor>``, after :func:`setup_all`."""
    venv = f".venv-{minor}"
    steps = [
        ("main", ["make", "main", f"VENV={venv}", "ARGS=debug=smoke", f"SITE=build/site-{minor}"]),
        ("compat tests", [f"{venv}/bin/python", "-m", "pytest", "-m", "compat", "-n", "2", "--dist", "loadfile",
                          "-q", "-p", "no:cacheprovider"]),
    ]
    results = []
    for name, command in steps:
        print(f"== Python {minor}: {name}: {' '.join(command)}", flush=True)
        start = time.monotonic()
        code = subprocess.run(command, cwd=REPO, stdin=subprocess.DEVNULL).returncode
        results.append((name, time.monotonic() - start, code))
        if code:
            break
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the interpreters found and stop")
    args = parser.parse_args()
    found = other_pythons()
    if not found:
        print(f"other Pythons: none found that {supported()} admits besides {sys.version.split()[0]}")
        return 0
    if args.list:
        for minor, python in found.items():
            print(f"{minor}: {python}")
        return 0
    failed = []
    summary = []
    setups = setup_all(found)
    for minor in found:
        seconds, code, _ = setups[minor]
        results = [("setup (all at once)", seconds, code)]
        if code == 0:
            results += check(minor)
        for name, seconds, code in results:
            summary.append(f"Python {minor} {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} "
                           f"in {seconds:.0f} s")
            if code:
                failed.append(minor)
    print("\n".join(["== other Pythons", *summary]))
    if failed:
        print(f"other Pythons: the checks failed on {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
