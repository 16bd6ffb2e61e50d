"""Captioning speed: captions per second (greedy, beam) and the time of one telephone round.

    .venv/bin/python tests/benchmarks/captioning_speed.py runs/captioning/<run> [runs/text_to_image/<run>]

Greedy captions are timed one image at a time (as a page writes them) and as a batch;
beam search one image at a time. With a painter run, one telephone round (paint the
caption, caption the painting) is timed too. Medians over the run's test images.
"""

from __future__ import annotations

import argparse
import statistics
import time


def timed(call, repeats: int) -> float:
    call(0)
    times = []
    for k in range(repeats):
        start = time.perf_counter()
        call(k)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("captioner")
    parser.add_argument("painter", nargs="?")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    import numpy as np

    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.core.runner import open_run
    from tinkerflow.core.tf_quiet import import_keras
    from tinkerflow.plugins.captioning import captions as caps
    from tinkerflow.plugins.captioning.decode import beam_search, sample

    import_keras()
    registry = make_plugin_manager()
    run, captioner = open_run(args.captioner, registry)
    model = run.load_model(captioner.custom_objects())
    captioner.load_data()
    images = captioner.found.images[captioner.parts["test"]].astype("float32")
    step, state_for = captioner.stepper(model)
    ids = captioner.vocab.index
    banned = (ids[caps.PAD], ids[caps.START], ids[caps.UNKNOWN])
    length = captioner.config.caption_length - 1
    n = len(images)

    def greedy(k):
        return sample(step, state_for(images[k % n]), ids[caps.START], ids[caps.END], length, banned=banned)

    def beam(k):
        return beam_search(step, state_for(images[k % n]), ids[caps.START], ids[caps.END], length, width=3,
                           banned=banned)

    one = timed(greedy, args.repeats)
    beamed = timed(beam, args.repeats)
    start = time.perf_counter()
    captioner.greedy(model, images)
    batch = time.perf_counter() - start
    print(f"{run.path}: {n} test images, captions of up to {length} tokens")
    print(f"greedy, one image at a time: {1 / one:8.1f} captions/s ({one * 1000:.1f} ms each)")
    print(f"greedy, batch of {n}:          {n / batch:8.1f} captions/s")
    print(f"beam search (3 beams):       {1 / beamed:8.1f} captions/s ({beamed * 1000:.1f} ms each)")
    if args.painter:
        p_run, painter = open_run(args.painter, registry)
        generator = painter.export_model(p_run.load_model(painter.custom_objects()))
        texts = [captioner.vocab.decode(greedy(k)) or "face" for k in range(5)]

        def round_trip(k):
            latent, condition = painter.film_inputs(1, seed=k, condition=texts[k % len(texts)]) \
                if any(w in painter.vocab.index for w in caps.words(texts[k % len(texts)])) \
                else painter.film_inputs(1, seed=k)
            pixels = np.asarray(generator([latent, condition], training=False))[0]
            from PIL import Image

            size = captioner.config.image_size
            painting = np.asarray(Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).resize((size, size)))
            return sample(step, state_for(painting.astype("float32")), ids[caps.START], ids[caps.END], length,
                          0.8, seed=k, banned=banned)

        print(f"one telephone round (paint + caption): {timed(round_trip, args.repeats) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
