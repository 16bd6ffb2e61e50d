"""The wheel installs into a fresh virtual environment and works there, config files included."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=600)
    (found,) = out.glob("tinkerflow-*.whl")
    return found


def test_wheel_maps_the_top_level_folders_into_one_namespace(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "tinkerflow/core/cli.py" in names
    assert "tinkerflow/plugins/addition/experiment.py" in names
    assert "tinkerflow/conf/config.yaml" in names
    assert "tinkerflow/conf/experiment/addition.yaml" in names
    assert "tinkerflow/conf/hydra/job_logging/tinkerflow.yaml" in names
    assert "tinkerflow/exporters/__init__.py" in names and "tinkerflow/web_export/__init__.py" in names
    assert "tinkerflow/core/plugin_template/__PACKAGE__/web/widget.js" in names, "tinkerflow new works from a wheel"
    assert "tinkerflow/core/plugin_template/tests/test___PACKAGE__.py.tmpl" in names
    top = {name.split("/")[0] for name in names}
    assert top == {"tinkerflow", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, top
    assert not any(name.startswith(("core/", "tests/", "examples/")) for name in names)


def test_wheel_works_in_a_fresh_virtual_environment(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([py, "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)], check=True, timeout=600)
    # The heavy dependencies (TensorFlow and friends) come from this test environment, put
    # behind the new environment's own site-packages; tinkerflow itself comes from the wheel.
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = subprocess.run([py, "-c", "import tinkerflow.core, tinkerflow.conf; print(tinkerflow.core.__file__)"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(site)), where
    assert not (site / "core").exists(), "no bare 'core' package in site-packages"

    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "TINKERFLOW_DISABLE_PLUGIN_AUTOLOAD": "1"}
    plugins = subprocess.run([env_dir / "bin" / "tinkerflow", "plugins", "--json"], capture_output=True,
                             text=True, env=env, cwd=tmp_path, timeout=120)
    assert plugins.returncode == 0, plugins.stderr
    assert '"addition"' in plugins.stdout
    made = subprocess.run([env_dir / "bin" / "tinkerflow", "new", "from_wheel"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)
    assert made.returncode == 0 and (tmp_path / "tinkerflow-from-wheel" / "tinkerflow_from_wheel" / "web"
                                     / "widget.js").is_file(), made.stderr
    composed = subprocess.run([env_dir / "bin" / "tinkerflow", "train", "--cfg", "job"], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=120)
    assert composed.returncode == 0, composed.stderr
    assert "max_sum: 256" in composed.stdout and "early_stopping:" in composed.stdout


def test_editable_install_points_at_the_checkout():
    import tinkerflow.conf
    import tinkerflow.core

    if "site-packages" in tinkerflow.core.__file__:
        pytest.skip("tinkerflow is installed from a wheel here, not in editable mode")
    assert Path(tinkerflow.core.__file__).parent == REPO / "core"
    assert (Path(tinkerflow.conf.__file__).parent / "config.yaml") == REPO / "conf" / "config.yaml"
