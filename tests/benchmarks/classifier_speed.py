"""Classifier speed and size: training throughput, single-image latency, int8 against float32.

    .venv/bin/python tests/benchmarks/classifier_speed.py runs/classifier/<run> [more runs] [--browser]

Each run needs its tflite float32 and int8 exports (``tinkerflow export RUN --format tflite
--quantize float32 int8``) and, for ``--browser``, a tfjs float32 one. Prints per run: training
images per second (from run.json), the median time to classify one prepared image through
compiled Keras, LiteRT float32 and LiteRT int8 (same image, many repeats), and the int8
file's size and validation accuracy next to float32's (from export.json). ``--browser`` builds
the run's page and times classifications of one photo in Chromium on each tfjs backend (the
page's own clock).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def median_ms(call, x, repeats: int = 200) -> float:
    call(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def browser_ms(run_dir: Path, photo: Path, repeats: int = 5) -> dict[str, float]:
    from playwright.sync_api import expect

    from pages import BACKENDS, page_opener

    results = {}
    with page_opener(run_dir) as open_page:
        for backend in BACKENDS:
            page = open_page(backend)
            timings = []
            for n in range(repeats + 1):  # the first also warms the backend up
                page.set_input_files("#classifier-file", [])
                page.set_input_files("#classifier-file", str(photo))
                expect(page.locator("body")).to_have_attribute("data-predictions", str(n + 1), timeout=60_000)
                timings.append(float(page.locator("body").get_attribute("data-last-prediction-ms")))
            results[backend] = statistics.median(timings[1:])
            page.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--browser", action="store_true", help="also time the page in Chromium")
    args = parser.parse_args()

    from PIL import Image

    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.core.runs import open_run
    from tinkerflow.core.tf_quiet import import_keras
    from tinkerflow.exporters.runtime import load

    import_keras()
    import tensorflow as tf

    for path in args.runs:
        run, experiment = open_run(path, make_plugin_manager())
        info = run.read_info()
        arch = info["config"]["model"]
        size = experiment.config.image_size
        per_epoch = info["timings"]["seconds_per_epoch"]
        train = info["data"]["split"]["train"]
        print(f"{run.path} — model={arch['name']}, {size}x{size} pixels, {train} training images")
        print(f"  training: {per_epoch:.2f} s per epoch = {train / per_epoch:,.0f} images/s")
        core = experiment.export_model(run.load_model(experiment.custom_objects()))
        x = experiment.example_inputs()[:1]
        compiled = tf.function(core, input_signature=[tf.TensorSpec(x.shape, tf.float32)])
        print(f"  one image, Keras (compiled call): {median_ms(compiled, x):8.3f} ms")
        exports = json.loads((run.path / "export.json").read_text())["formats"]
        for variant in ("float32", "int8"):
            model = load(run.path / "export" / "tflite" / variant)
            record = exports["tflite"]["variants"][variant]
            print(f"  one image, LiteRT {variant:7s}:       {median_ms(model.predict, x):8.3f} ms   "
                  f"{record['files'][0]['bytes']:>10,} B   validation accuracy {record['metric']['exported']:.4f} "
                  f"(Keras {record['metric']['keras']:.4f})")
        if args.browser:
            with tempfile.TemporaryDirectory() as tmp:
                photo = Path(tmp) / "photo.png"
                Image.fromarray(x[0].astype("uint8")).save(photo)
                for backend, ms in browser_ms(run.path, photo).items():
                    print(f"  one image, Chromium {backend:6s} (tfjs float32): {ms:8.3f} ms")


if __name__ == "__main__":
    main()
