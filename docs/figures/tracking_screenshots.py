"""The screenshots in docs/tracking.md: ``mlflow ui`` (a sweep's parent run and its children,
then their test metrics compared) and TensorBoard's loss curves of the same sweep.

    .venv/bin/python docs/figures/tracking_screenshots.py [FOLDER]

Trains the default joblib sweep with ``tracking=both`` in a temporary folder, serves it with
``mlflow ui`` and ``tensorboard`` on loopback, and photographs them in Debian's Chromium
through Playwright (1400 x 800); with FOLDER, the sweep trained there earlier. The UIs change
between versions: the clicks below are for mlflow 3.17 and tensorboard 2.21.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mlflow.tracking import MlflowClient
from playwright.sync_api import sync_playwright

BIN = Path(sys.executable).parent
FIGURES = Path(__file__).parent
QUIET = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(command: list[str], ready: str, folder: Path) -> subprocess.Popen:
    process = subprocess.Popen(command, cwd=folder, env=QUIET, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if process.poll() is not None:
            sys.exit(f"{command[0]} exited {process.returncode}")
        try:
            urllib.request.urlopen(ready, timeout=5)
            return process
        except OSError:
            time.sleep(0.5)


def click(page, locator, what: str) -> None:
    try:
        locator.first.click(timeout=3000)
    except Exception as exc:  # a UI that moved on: the picture shows it, the script goes on
        print(f"could not click {what}: {type(exc).__name__}")
    page.wait_for_timeout(1500)


def shoot(folder: Path) -> None:
    store = f"sqlite:///{folder / 'runs' / 'mlflow.db'}"
    experiment = MlflowClient(store).get_experiment_by_name("addition").experiment_id
    mlflow_port, board_port = free_port(), free_port()
    servers = [serve([str(BIN / "mlflow"), "ui", "--backend-store-uri", store, "--port", str(mlflow_port)],
                     f"http://127.0.0.1:{mlflow_port}/health", folder),
               serve([str(BIN / "tensorboard"), "--logdir", "runs", "--host", "127.0.0.1", "--port", str(board_port)],
                     f"http://127.0.0.1:{board_port}/", folder)]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 800})
            page.goto(f"http://127.0.0.1:{mlflow_port}/#/experiments/{experiment}/runs")
            page.get_by_text("Run Name").first.wait_for(timeout=60_000)
            click(page, page.get_by_text("Model training", exact=True), "the model-training view")
            click(page, page.get_by_role("button", name="Close"), "the assistant's panel")
            page.mouse.click(318, 264)  # the sweep's expander
            page.wait_for_timeout(2500)
            page.screenshot(path=str(FIGURES / "tracking-mlflow-sweep.png"))
            page.mouse.click(296, 119)  # the chart view
            page.get_by_placeholder("Search metric charts").fill("test_m", timeout=30_000)
            page.wait_for_timeout(4000)
            page.screenshot(path=str(FIGURES / "tracking-mlflow-compare.png"))

            page.goto(f"http://127.0.0.1:{board_port}/#timeseries")
            page.get_by_placeholder("Filter tags (regex)").last.fill("epoch_loss", timeout=60_000)
            page.wait_for_timeout(3000)
            if page.get_by_text("Horizontal Axis").count():
                page.mouse.click(1363, 134)  # the settings panel a first visit opens
                page.wait_for_timeout(1500)
            for label in ("Toggle full size", "More line chart options", "Toggle Y-axis log scale"):
                click(page, page.locator(f"[aria-label*='{label}'], [title*='{label}']"), label)
            page.keyboard.press("Escape")
            page.wait_for_timeout(3000)
            page.screenshot(path=str(FIGURES / "tracking-tensorboard.png"))
            browser.close()
    finally:
        for server in servers:
            server.kill()
            server.wait()


def main() -> None:
    if len(sys.argv) > 1:  # a folder where this sweep ran before
        shoot(Path(sys.argv[1]).resolve())
        return
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([str(BIN / "tinkerflow"), "train", "-m", "experiment.hidden=1,2,4", "hydra/launcher=joblib",
                        "tracking=both", "trainer.progress=none"], cwd=folder, env=QUIET, check=True,
                       stdin=subprocess.DEVNULL)
        shoot(Path(folder))


if __name__ == "__main__":
    main()
