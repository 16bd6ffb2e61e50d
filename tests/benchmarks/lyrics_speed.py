"""Lyrics speed: training throughput of a run and per-word generation latency in Python.

    .venv/bin/python tests/benchmarks/lyrics_speed.py runs/lyrics/<run> [--words 200]

The run needs a tflite float32 export (``tinkerflow export RUN --format tflite --quantize
float32``). Prints training tokens per second (from run.json), then the median time per
generated word (greedy, same prompt) through compiled Keras and through LiteRT, and checks
that both wrote the same words.
"""

from __future__ import annotations

import argparse
import statistics
import time


def timed_generation(predict, vocab, window: int, words: int) -> tuple[list[str], float]:
    from tinkerflow.plugins.lyrics.generate import generate

    generate(predict, vocab, "hello world", 5, window, temperature=0.0)  # warm up / compile
    times = []

    def timed(ids):
        start = time.perf_counter()
        out = predict(ids)
        times.append(time.perf_counter() - start)
        return out

    text = generate(timed, vocab, "hello world", words, window, temperature=0.0)
    return text, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--words", type=int, default=200)
    args = parser.parse_args()

    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.core.runner import open_run
    from tinkerflow.core.tf_quiet import import_keras
    from tinkerflow.exporters.runtime import load

    import_keras()
    run, experiment = open_run(args.run, make_plugin_manager())
    info = run.read_info()
    vocab, window = experiment.vocabulary(), experiment.config.window
    per_epoch = info["timings"]["seconds_per_epoch"]
    tokens = info["data"]["windows"]["train"]
    print(f"lyrics run {run.path}: {len(vocab):,}-word vocabulary, window {window}")
    print(f"training: {tokens:,} windows per epoch in {per_epoch:.1f} s = {tokens / per_epoch:,.0f} tokens/s")

    keras_words, keras_s = timed_generation(experiment.predictor(run.load_model(experiment.custom_objects())),
                                            vocab, window, args.words)
    lite = load(run.path / "export" / "tflite" / "float32")
    lite_words, lite_s = timed_generation(lite.predict, vocab, window, args.words)
    print(f"generation, median per word over {args.words} greedy words:")
    print(f"  Keras (compiled call):  {keras_s * 1000:8.3f} ms")
    print(f"  LiteRT float32:         {lite_s * 1000:8.3f} ms   ({keras_s / lite_s:.1f}x faster)")
    same = sum(a == b for a, b in zip(keras_words, lite_words))
    print(f"  same words: {same}/{args.words}")


if __name__ == "__main__":
    main()
