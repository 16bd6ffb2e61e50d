"""MediaPipe Tasks for the pages of image classifiers: the page module, the pinned
``@mediapipe/tasks-vision`` ES module and its wasm builds (SIMD and no-SIMD), copied as the
package ships them (it needs no bundling)."""

from __future__ import annotations

import json
from pathlib import Path

from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.runfs import copy_file

PAGE_SOURCE = Path(__file__).parent / "web" / "mediapipe_page.js"
PACKAGE = ("@mediapipe", "tasks-vision")
WASM = ("vision_wasm_internal", "vision_wasm_nosimd_internal")


def package_dir(modules: Path) -> Path:
    folder = modules.joinpath(*PACKAGE)
    if not (folder / "package.json").is_file():
        raise TinkerflowError(f"the pinned npm package {'/'.join(PACKAGE)} is missing from {modules}; "
                              "run 'tinkerflow install-tfjs' (or make setup)")
    return folder


def package_version(modules: Path) -> str:
    return json.loads((package_dir(modules) / "package.json").read_text())["version"]


def write_assets(folder: Path, modules: Path) -> str:
    """The page module, the package's ES module and its wasm, in ``folder``; returns the
    page module's file name."""
    source = package_dir(modules)
    copy_file(PAGE_SOURCE, folder / PAGE_SOURCE.name)
    copy_file(source / "vision_bundle.mjs", folder / "vision_bundle.mjs")
    for build in WASM:
        for suffix in (".js", ".wasm"):
            copy_file(source / "wasm" / f"{build}{suffix}", folder / "wasm" / f"{build}{suffix}")
    return PAGE_SOURCE.name
