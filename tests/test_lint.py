"""ruff, as pyproject.toml configures it, finds nothing: no syntax error or undefined name,
no line over 120 characters, no import inside a function outside the files it names (and
tests/test_layers.py says what those may import late)."""

import subprocess
import sys

from conftest import REPO


def ruff(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_ruff_finds_nothing():
    result = ruff(".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_ruff_would_catch_a_late_import_and_a_long_line(tmp_path):
    module = tmp_path / "exporters" / "late.py"
    module.parent.mkdir()
    module.write_text("def f():\n    import json\n\n    return json.dumps([" + ", ".join(["1"] * 60) + "])\n")
    result = ruff("--config", str(REPO / "pyproject.toml"), str(module), cwd=tmp_path)
    assert result.returncode == 1 and "PLC0415" in result.stdout and "E501" in result.stdout, result.stdout
