"""``tinkerflow new``: the plugin package it writes installs, trains, exports and shows its
widget in Chromium, by the generated package's own tests."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import TINKERFLOW, run_cli, snapshot


def test_new_writes_a_plugin_that_passes_its_own_tests(tmp_path):
    made = run_cli("new", "noisy_xor", "--dir", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "tinkerflow-noisy-xor"
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "tests/test_tinkerflow_noisy_xor.py", "tinkerflow_noisy_xor/__init__.py",
        "tinkerflow_noisy_xor/conf/sweep/noisy_xor_grid.yaml", "tinkerflow_noisy_xor/web/widget.html",
        "tinkerflow_noisy_xor/web/widget.js"]
    assert "class NoisyXor(Experiment):" in (package / "tinkerflow_noisy_xor" / "__init__.py").read_text()
    for path in ("README.md", "pyproject.toml", "tinkerflow_noisy_xor/__init__.py"):  # the new name, not the template's
        text = (package / path).read_text()
        assert "noisy_xor" in text and "A noisy XOR" not in text and "__" + "NAME" not in text, path
    assert not list(tmp_path.glob(".tinkerflow-*")), "no staging folder left behind"

    site = tmp_path / "site-packages"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--target", str(site), str(package)], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    assert (site / "tinkerflow_noisy_xor" / "conf" / "sweep" / "noisy_xor_grid.yaml").is_file(), \
        "the sweep preset is in the built wheel, not only in the source folder"
    env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "3"}
    listed = subprocess.run([TINKERFLOW, "plugins", "--json"], env=env,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert '"noisy_xor"' in listed.stdout and "noisy_xor (tinkerflow new's example" in listed.stdout, listed.stderr
    own = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=package,
                         env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=1200)
    assert own.returncode == 0 and "4 passed" in own.stdout, own.stdout[-3000:] + own.stderr[-2000:]


def test_new_refuses_bad_names_and_existing_folders(tmp_path):
    (tmp_path / "tinkerflow-taken").mkdir()
    before = snapshot(tmp_path)
    for name, message in [("Bad-Name", "'Bad-Name' cannot be an experiment name; expected lowercase letters"),
                          ("addition", "an experiment named 'addition' is already installed; expected a new name"),
                          ("taken", "tinkerflow-taken' already exists; expected a new folder (nothing was written)")]:
        result = run_cli("new", name, "--dir", str(tmp_path), cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1
    assert snapshot(tmp_path) == before


def test_a_name_that_hydra_or_yaml_reads_as_a_value_is_refused(tmp_path):
    """``tinkerflow new null`` once wrote a plugin whose printed next step
    (``tinkerflow train experiment=null``) chose no experiment at all."""
    import pytest

    from tinkerflow.core.errors import ConfigError
    from tinkerflow.core.plugins import RESERVED_NAMES
    from tinkerflow.core.scaffold import new_plugin

    assert {"null", "true", "false", "nan", "inf", "none", "yes", "off"} <= RESERVED_NAMES
    for name in sorted(RESERVED_NAMES):
        with pytest.raises(ConfigError, match=f"Hydra and YAML read '{name}' as a value"):
            new_plugin(name, tmp_path)
    assert not list(tmp_path.iterdir()), "nothing was written"
    assert new_plugin("null_model", tmp_path).is_dir()
