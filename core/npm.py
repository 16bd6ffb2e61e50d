"""Node.js and the pinned npm packages (web_export/package-lock.json): where they are and how
to install them. The exporters run tfjs with them, the pages bundle LiteRT.js and MediaPipe
from them, and the dcgan faces data set reads its emoji from them."""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

from .errors import TinkerflowError

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinkerflow" / "npm"


def node_binary() -> str:
    node = shutil.which("node")
    if not node:
        raise TinkerflowError("Node.js is not installed; install it (e.g. apt-get install nodejs) to export and check "
                              "tfjs bundles")
    return node


def package_dir() -> Path:
    """The folder holding the pinned package.json and package-lock.json."""
    return Path(str(files("tinkerflow.web_export")))


def node_modules() -> Path:
    """Where the pinned @tensorflow/tfjs is installed; a one-line error saying how to install it if nowhere."""
    candidates = []
    if os.environ.get("TINKERFLOW_NODE_MODULES"):
        candidates.append(Path(os.environ["TINKERFLOW_NODE_MODULES"]))
    candidates += [package_dir() / "node_modules", CACHE / "node_modules"]
    for folder in candidates:
        if (folder / "@tensorflow" / "tfjs" / "package.json").is_file():
            return folder
    raise TinkerflowError(
        "the pinned npm package @tensorflow/tfjs is not installed; run 'tinkerflow install-tfjs' "
        "(or set TINKERFLOW_NODE_MODULES to a node_modules folder that has it)"
    )


def install_tfjs(target: Path | None = None) -> Path:
    """Install the pinned npm packages with ``npm ci`` (from the lock file) and return node_modules."""
    npm = shutil.which("npm")
    if not npm:
        raise TinkerflowError("npm is not installed; install Node.js and npm (e.g. apt-get install nodejs npm)")
    source = package_dir()
    target = Path(target) if target else (source if os.access(source, os.W_OK) else CACHE)
    try:
        target.mkdir(parents=True, exist_ok=True)
        if target != source:
            for name in ("package.json", "package-lock.json"):
                shutil.copy(source / name, target / name)
    except OSError as exc:
        raise TinkerflowError(f"cannot write to '{target}' ({exc.strerror}); expected a writable folder for "
                              "--target") from None
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=target,
                          capture_output=True, text=True)
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-2:])
        raise TinkerflowError(f"npm ci failed in {target}: {tail}")
    return target / "node_modules"
