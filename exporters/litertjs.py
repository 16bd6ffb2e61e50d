"""LiteRT.js for the pages: the page module bundled with the pinned ``@litertjs/core``.

The package imports the bare name ``@litertjs/wasm-utils``, which a browser cannot resolve
without an import map (an inline script the site's CSP forbids), so the page module and the
package are bundled into one ES module with the pinned esbuild. Beside it go the wasm builds
a page can use: the plain one (relaxed SIMD), ``compat`` (browsers without relaxed SIMD, e.g.
Safari), ``threaded`` (cross-origin isolated pages) and ``jspi`` (pages on WebGPU, in browsers
with JavaScript Promise Integration: the only build that runs on the CPU the operations the
WebGPU delegate cannot take). A page downloads one of them.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tinkerflow.core.errors import TinkerflowError
from tinkerflow.core.npm import node_binary
from tinkerflow.core.runfs import copy_file

PAGE_SOURCE = Path(__file__).parent / "web" / "litertjs_page.js"
BUILDS = ("litert_wasm_internal", "litert_wasm_compat_internal", "litert_wasm_threaded_internal",
          "litert_wasm_jspi_internal")


def package_version(modules: Path) -> str:
    manifest = modules / "@litertjs" / "core" / "package.json"
    if not manifest.is_file():
        raise TinkerflowError(f"the pinned npm package @litertjs/core is missing from {modules}; "
                              "run 'tinkerflow install-tfjs' (or make setup)")
    return json.loads(manifest.read_text())["version"]


def bundle(out_file: Path, modules: Path) -> None:
    """Bundle the page module with @litertjs/core into ``out_file`` (one minified ES module)."""
    package_version(modules)
    esbuild = modules / "esbuild" / "bin" / "esbuild"
    if not esbuild.is_file():
        raise TinkerflowError(f"the pinned npm package esbuild is missing from {modules}; "
                              "run 'tinkerflow install-tfjs' (or make setup)")
    command = [node_binary(), str(esbuild), str(PAGE_SOURCE), "--bundle", "--format=esm", "--minify",
               "--target=es2020", "--log-level=error", "--legal-comments=eof", f"--outfile={out_file}"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "NODE_PATH": str(modules)})
    if done.returncode != 0 or not out_file.is_file():
        raise TinkerflowError(f"bundling LiteRT.js for the pages failed: {' '.join(done.stderr.split())[:300]}")


def write_assets(folder: Path, modules: Path) -> str:
    """The bundled module and the wasm builds, in ``folder``; returns the module's file name."""
    bundle(folder / PAGE_SOURCE.name, modules)
    source = modules / "@litertjs" / "core" / "wasm"
    for build in BUILDS:
        for suffix in (".js", ".wasm"):
            copy_file(source / f"{build}{suffix}", folder / "wasm" / f"{build}{suffix}")
    return PAGE_SOURCE.name
