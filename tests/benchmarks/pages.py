"""Timing a run's page in Chromium: the shared set-up of the benchmark scripts."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BACKENDS = ("wasm", "cpu", "webgl")


@contextmanager
def page_opener(run_dir: Path) -> Iterator:
    """Builds the run's page, serves it and starts Chromium; yields ``open(backend)``, which
    returns a ready Playwright page on that tfjs backend with the float32 variant."""
    from playwright.sync_api import expect, sync_playwright

    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    with tempfile.TemporaryDirectory() as tmp:
        report = build_site([run_dir], Path(tmp), make_plugin_manager())
        with serving(Path(tmp)) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                                        args=["--no-sandbox", "--disable-gpu"])

            def open_page(backend: str):
                page = browser.new_page()
                page.goto(f"{base}models/{report.pages[0]['slug']}/index.html?backend={backend}&variant=float32")
                expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
                return page

            try:
                yield open_page
            finally:
                browser.close()
