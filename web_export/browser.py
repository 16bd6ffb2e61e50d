"""A headless Chromium for measuring built pages (``tinkerflow bench --browser``) and testing them,
and the phone profile pages are measured and tested under: a 390×844 touch screen and a CPU
slowed 4× (Chrome DevTools' ``Emulation.setCPUThrottlingRate``), a stand-in for a mid-range phone.

Debian's ``chromium`` is used where it is installed (``make setup-test`` installs it), else
Playwright's own download. Playwright is an optional dependency (``pip install
'tinkerflow[browser]'``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tinkerflow.core.errors import TinkerflowError

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic",
         # a synthetic camera, allowed without asking: pages with a camera button can be driven
         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


#: a WebGPU adapter in headless Chromium without a GPU: SwiftShader's, the CPU emulating a GPU
#: (real, so that pages can be tested on WebGPU; slow, so its timings say nothing of a real GPU's)
WEBGPU_FLAGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"]


@contextmanager
def chromium(install: bool = False, webgpu: bool = False) -> Iterator:
    """A launched Playwright Chromium browser; ``install`` fetches Playwright's own when the
    machine has no ``chromium``; ``webgpu`` gives its pages the emulated WebGPU adapter."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise TinkerflowError("measuring pages needs Playwright; install it with pip install 'tinkerflow[browser]' "
                              "(and Chromium, e.g. apt-get install chromium)") from None
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    flags = FLAGS + (WEBGPU_FLAGS if webgpu else [])
    with sync_playwright() as playwright:
        if executable:
            browser = playwright.chromium.launch(executable_path=executable, args=flags)
        elif install:
            subprocess.run([sys.executable, "-m", "playwright", "install", "chromium"], check=True)
            browser = playwright.chromium.launch(args=flags)
        else:
            raise TinkerflowError("no Chromium found; expected 'chromium' on the PATH (apt-get install chromium)")
        try:
            yield browser
        finally:
            browser.close()


#: the phone-class profile: an iPhone-sized touch screen
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}
#: how many times slower than this machine's CPU the phone profile runs pages
CPU_SLOWDOWN = 4


def phone_context(browser, **options):
    """A browser context with the phone profile; call :func:`slow_down` on each of its pages."""
    return browser.new_context(**PHONE, **options)


def slow_down(context, page, rate: float = CPU_SLOWDOWN) -> None:
    """Throttle ``page``'s CPU ``rate`` times (the page's main thread and its workers)."""
    context.new_cdp_session(page).send("Emulation.setCPUThrottlingRate", {"rate": rate})
