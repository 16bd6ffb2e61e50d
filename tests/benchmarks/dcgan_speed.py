"""DCGAN speed: training images per second, and the time to generate a grid of 16.

    .venv/bin/python tests/benchmarks/dcgan_speed.py runs/dcgan/<run> [--browser]

The run needs tflite float32 (and optionally int8) exports and, for ``--browser``, a tfjs
float32 one (``tinkerflow export RUN --format tflite tfjs --quantize float32 int8``). Prints
training images per second (from run.json), the median time for 16 images through compiled
Keras and LiteRT, and with ``--browser`` the page's own time for 16 images on each tfjs
backend in Chromium after warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def median_ms(call, repeats: int = 50) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def browser_ms(run_dir: Path, repeats: int = 7) -> dict[str, float]:
    from playwright.sync_api import expect

    from pages import BACKENDS, page_opener

    results = {}
    with page_opener(run_dir) as open_page:
        for backend in BACKENDS:
            page = open_page(backend)
            widget = page.locator("#widget")
            timings = []
            for n in range(repeats):  # the page generated once while loading: the warm-up
                page.click("#dcgan-generate")
                expect(widget).to_have_attribute("data-generated", str(n + 2), timeout=60_000)
                timings.append(float(widget.get_attribute("data-ms")))
            results[backend] = statistics.median(timings)
            page.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--browser", action="store_true", help="also time the page in Chromium")
    args = parser.parse_args()

    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.core.runs import open_run
    from tinkerflow.core.tf_quiet import import_keras
    from tinkerflow.exporters.runtime import load

    import_keras()
    import tensorflow as tf

    run, experiment = open_run(args.run, make_plugin_manager())
    info = run.read_info()
    images, size = info["data"]["images"], experiment.config.image_size
    timings = info["timings"]
    per_epoch = timings.get("seconds_per_epoch") or timings["fit_s"] / info["config"]["trainer"]["epochs"]
    print(f"{run.path}: {images:,} images of {size}x{size}, {info['data']['source']}")
    print(f"training: {per_epoch:.1f} s per epoch = {images / per_epoch:,.0f} images/s")
    generator = experiment.export_model(run.load_model(experiment.custom_objects()))
    inputs = experiment.film_inputs(16, seed=5)
    arrays = inputs if isinstance(inputs, list) else [inputs]
    compiled = tf.function(generator, input_signature=[[tf.TensorSpec(a.shape, tf.float32) for a in arrays]]
                           if len(arrays) > 1 else [tf.TensorSpec(arrays[0].shape, tf.float32)])
    print(f"16 images, Keras (compiled call): {median_ms(lambda: compiled(inputs)):8.2f} ms")
    names = [t.name for t in generator.inputs]
    for variant in ("float32", "int8"):
        folder = run.path / "export" / "tflite" / variant
        if folder.is_dir():
            model = load(folder)
            feed = dict(zip(names, arrays))
            print(f"16 images, LiteRT {variant:7s}:       "
                  f"{median_ms(lambda m=model, f=feed: m.predict_named(f)):8.2f} ms")
    if args.browser:
        for backend, ms in browser_ms(run.path).items():
            print(f"16 images, Chromium {backend:6s} (tfjs float32, after warm-up): {ms:8.2f} ms")


if __name__ == "__main__":
    main()
