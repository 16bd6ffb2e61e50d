"""Finding Node.js and the pinned @tensorflow/tfjs, and running a tfjs bundle in Node."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from importlib.resources import files
from pathlib import Path

import numpy as np

from tinkerflow.core.errors import TinkerflowError

SCRIPT = Path(__file__).parent / "node" / "tfjs_run.cjs"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinkerflow" / "npm"


def node_binary() -> str:
    node = shutil.which("node")
    if not node:
        raise TinkerflowError("Node.js is not installed; install it (e.g. apt-get install nodejs) to export and check tfjs bundles")
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


def _request(inputs: dict[str, np.ndarray], outputs: dict[str, str], repeat: int) -> dict:
    request = {"inputs": {}, "outputs": outputs, "repeat": repeat}
    for name, value in inputs.items():
        dtype = _tfjs_dtype(value)
        array = np.ascontiguousarray(value, dtype="uint8" if dtype == "bool" else dtype)
        request["inputs"][name] = {"shape": list(array.shape), "dtype": dtype,
                                   "base64": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()}
    return request


def _decode(reply: dict) -> dict:
    """Outputs arrive as little-endian bytes in base64 (exact, and far faster than JSON numbers)."""
    reply["outputs"] = {name: np.frombuffer(base64.b64decode(o["base64"]), dtype=np.dtype(o["dtype"]).newbyteorder("<"))
                        .astype(o["dtype"]).reshape(o["shape"]) for name, o in reply["outputs"].items()}
    return reply


def run_tfjs(bundle_dir: Path, inputs: dict[str, np.ndarray], outputs: dict[str, str], repeat: int = 0) -> dict:
    """Run a tfjs graph model bundle once in a fresh Node process; returns the reply with numpy outputs."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(_request(inputs, outputs, repeat), handle)
    try:
        done = subprocess.run([node_binary(), str(SCRIPT), str(node_modules()), str(bundle_dir), handle.name],
                              capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        message = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise TinkerflowError(f"tfjs in Node could not run {bundle_dir}: {message}")
    return _decode(json.loads(done.stdout))


class TFJSWorker:
    """A Node process holding one loaded tfjs bundle and answering requests over a pipe."""

    def __init__(self, bundle_dir: Path):
        self.bundle_dir = Path(bundle_dir)
        self.process = subprocess.Popen(
            [node_binary(), str(SCRIPT), str(node_modules()), str(self.bundle_dir), "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        hello = self.process.stdout.readline()
        if not hello:
            message = (self.process.stderr.read().strip().splitlines() or ["no output"])[-1]
            raise TinkerflowError(f"tfjs in Node could not load {self.bundle_dir}: {message}")
        self.info = json.loads(hello)

    def run(self, inputs: dict[str, np.ndarray], outputs: dict[str, str], repeat: int = 0) -> dict:
        self.process.stdin.write(json.dumps(_request(inputs, outputs, repeat)) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise TinkerflowError(f"tfjs in Node stopped while running {self.bundle_dir}")
        reply = json.loads(line)
        if "error" in reply:
            raise TinkerflowError(f"tfjs in Node could not run {self.bundle_dir}: {reply['error']}")
        return _decode(reply)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _tfjs_dtype(array: np.ndarray) -> str:
    kind = np.asarray(array).dtype
    if kind.kind in "iu":
        return "int32"
    if kind.kind == "b":
        return "bool"
    return "float32"
