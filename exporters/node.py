"""Running a tfjs bundle in Node, with the pinned @tensorflow/tfjs (found by :mod:`tinkerflow.core.npm`)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.npm import node_binary, node_modules

SCRIPT = Path(__file__).parent / "node" / "tfjs_run.cjs"


def _request(inputs: dict[str, np.ndarray], outputs: dict[str, str], repeat: int) -> dict:
    request = {"inputs": {}, "outputs": outputs, "repeat": repeat}
    for name, value in inputs.items():
        dtype = _tfjs_dtype(value)
        array = np.ascontiguousarray(value, dtype="uint8" if dtype == "bool" else dtype)
        request["inputs"][name] = {"shape": list(array.shape), "dtype": dtype,
                                   "base64": base64.b64encode(
                                       array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()}
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
