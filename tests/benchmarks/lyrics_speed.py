"""Lyrics speed: training throughput of a run and per-word generation latency.

    .venv/bin/python tests/benchmarks/lyrics_speed.py runs/lyrics/<run> [--words 200] [--browser]

The run needs a tflite float32 export, and for ``--browser`` a tfjs float32 one
(``tinkerflow export RUN --quantize float32``). Prints training tokens per second (from
run.json), then the median time per generated word (greedy, same prompt) through compiled
Keras (the window model), through LiteRT running the unrolled window model (converted here,
the baseline) and running the exported stepper, and checks that all wrote the same words.
``--browser`` builds the run's page and times 100 words in Chromium on each tfjs backend (the page's
own clock), checking the words too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

PROMPT = "hello world"


def timed_generation(predict, vocab, window: int, words: int) -> tuple[list[str], float]:
    from tinkerflow.plugins.lyrics.generate import generate

    generate(predict, vocab, PROMPT, 5, window, temperature=0.0)  # warm up / compile
    times = []

    def timed(ids):
        start = time.perf_counter()
        out = predict(ids)
        times.append(time.perf_counter() - start)
        return out

    text = generate(timed, vocab, PROMPT, words, window, temperature=0.0)
    return text, statistics.median(times[1:])  # the first call also reads the prompt


def unrolled_window_model(model, folder: Path):
    """The window model unrolled and converted to TFLite float32: the baseline the stepper replaced."""
    from tinkerflow.core.exporter import ExportContext
    from tinkerflow.exporters.recurrent import unrolled_twin
    from tinkerflow.exporters.runtime import load
    from tinkerflow.exporters.savedmodel import tensor_names
    from tinkerflow.exporters.tflite import TFLiteExporter

    twin = unrolled_twin(model)
    inputs, outputs = tensor_names(twin)
    (folder / "tflite").mkdir()
    TFLiteExporter().convert(ExportContext(twin, None, inputs, outputs, folder), "float32",
                             folder / "tflite")
    return load(folder / "tflite" / "model.tflite")


def browser_generation(run_dir: Path, words: int = 100) -> dict[str, tuple[list[str], float]]:
    """{backend: (words, ms per word)} from the run's page in Chromium."""
    from playwright.sync_api import expect

    from pages import BACKENDS, page_opener

    results = {}
    with page_opener(run_dir) as open_page:
        for backend in BACKENDS:
            page = open_page(backend)
            page.fill("#lyrics-prompt", PROMPT)
            page.fill("#lyrics-temperature", "0")
            page.fill("#lyrics-words", str(words))
            timings = []
            for _ in range(3):  # the first run also warms up the backend
                page.click("#lyrics-write")
                expect(page.locator("#widget")).to_have_attribute("data-done", "true", timeout=120_000)
                timings.append(float(page.locator("#widget").get_attribute("data-ms-per-word")))
            results[backend] = (json.loads(page.locator("#widget").get_attribute("data-words")),
                                statistics.median(timings[1:]))
            page.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--browser", action="store_true", help="also time 100 words in Chromium")
    args = parser.parse_args()

    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.core.runs import open_run
    from tinkerflow.core.tf_quiet import import_keras
    from tinkerflow.exporters.runtime import load
    from tinkerflow.plugins.lyrics.generate import Stepper

    import_keras()
    run, experiment = open_run(args.run, make_plugin_manager())
    info = run.read_info()
    vocab, window = experiment.vocab, experiment.config.window
    per_epoch = info["timings"]["seconds_per_epoch"]
    tokens = info["data"]["windows"]["train"]
    print(f"lyrics run {run.path}: {len(vocab):,}-word vocabulary, window {window}")
    print(f"training: {tokens:,} windows per epoch in {per_epoch:.1f} s = {tokens / per_epoch:,.0f} tokens/s")

    model = run.load_model(experiment.custom_objects())
    keras_words, keras_s = timed_generation(experiment.predictor(model), vocab, window, args.words)
    lite = load(run.path / "export" / "tflite" / "float32")
    lite_words, lite_s = timed_generation(Stepper(lite.predict_named, experiment.state_shape), vocab, window,
                                          args.words)
    with tempfile.TemporaryDirectory() as tmp:
        unrolled_words, unrolled_s = timed_generation(unrolled_window_model(model, Path(tmp)).predict, vocab, window,
                                                      args.words)
    print(f"generation, median per word over {args.words} greedy words (same words as Keras):")
    print(f"  Keras (compiled window model):         {keras_s * 1000:8.3f} ms")
    print(f"  LiteRT float32, unrolled window model: {unrolled_s * 1000:8.3f} ms   "
          f"({sum(a == b for a, b in zip(keras_words, unrolled_words))}/{args.words})")
    print(f"  LiteRT float32, exported stepper:      {lite_s * 1000:8.3f} ms   "
          f"({sum(a == b for a, b in zip(keras_words, lite_words))}/{args.words}; "
          f"{unrolled_s / lite_s:.1f}x faster than the window model)")
    if args.browser:
        print("browser (Chromium, tfjs float32 stepper), 100 greedy words, per word incl. reading the prompt:")
        for backend, (written, ms) in browser_generation(run.path).items():
            same = sum(a == b for a, b in zip(keras_words, written))
            print(f"  {backend:6s} {ms:8.3f} ms   (100 words in {ms * 100:.0f} ms; same words: {same}/100)")


if __name__ == "__main__":
    main()
