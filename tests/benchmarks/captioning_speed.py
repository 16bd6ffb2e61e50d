"""Captioning speed: captions per second (greedy, beam) and the time of one telephone round.

    .venv/bin/python tests/benchmarks/captioning_speed.py runs/captioning/<run> [runs/text_to_image/<run>] [--browser]

Greedy captions are timed one image at a time (as a page writes them) and as a batch;
beam search one image at a time. With a painter run, one telephone round (paint the
caption, caption the painting) is timed too. Medians over the run's test images.
``--browser`` (both runs exported to tfjs) times the captioner page in Chromium on each tfjs
backend: one caption of a photo (greedy, and beam search with 3 beams), and one telephone
round, by the page's own clock.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


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
    parser.add_argument("--browser", action="store_true", help="also time the page in Chromium")
    args = parser.parse_args()

    import numpy as np

    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.core.runs import open_run
    from tinkerflow.core.tf_quiet import import_keras
    from tinkerflow.plugins.captioning import captions as caps
    from tinkerflow.plugins.captioning.decode import beam_search, sample

    import_keras()
    registry = make_plugin_manager()
    run, captioner = open_run(args.captioner, registry)
    model = run.load_model(captioner.custom_objects())
    found, parts = captioner.captioned
    images = found.images[parts["test"]].astype("float32")
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
    if args.browser:
        from PIL import Image

        with tempfile.TemporaryDirectory() as tmp:
            photo = Path(tmp) / "photo.png"
            Image.fromarray(images[0].astype("uint8")).save(photo)
            for backend, (caption_ms, round_ms) in browser_ms(run.path, args.painter, photo).items():
                line = (f"Chromium {backend:6s}: one caption greedy {caption_ms['greedy']:7.1f} ms, "
                        f"beam {caption_ms['beam']:7.1f} ms")
                print(line + (f", one telephone round {round_ms:7.1f} ms" if round_ms is not None else ""))


def browser_ms(captioner: Path, painter: str | None, photo: Path, repeats: int = 5) -> dict:
    import shutil

    from playwright.sync_api import expect, sync_playwright

    from pages import BACKENDS
    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.web_export import build_site
    from tinkerflow.web_export.serve import serving

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        report = build_site([captioner] + ([painter] if painter else []), Path(tmp), make_plugin_manager())
        slug = next(p["slug"] for p in report.pages if p["experiment"] == "captioning")
        with serving(Path(tmp)) as base, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
                                        args=["--no-sandbox", "--disable-gpu"])
            for backend in BACKENDS:
                page = browser.new_page()
                page.goto(f"{base}models/{slug}/index.html?backend={backend}&variant=float32")
                expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=60_000)
                widget = page.locator("#widget")
                medians = {}
                for decoding in ("greedy", "beam"):
                    page.select_option("#captioner-decoding", decoding)
                    captions = []
                    for _ in range(repeats + 1):  # the first warms the backend up
                        page.set_input_files("#captioner-file", [])
                        page.set_input_files("#captioner-file", str(photo))
                        expect(widget).to_have_attribute("data-done", "true", timeout=60_000)
                        captions.append(float(widget.get_attribute("data-caption-ms")))
                    medians[decoding] = statistics.median(captions[1:])
                round_ms = None
                if painter:
                    page.fill("#telephone-text", "face")
                    page.fill("#telephone-rounds", "5")
                    for _ in range(2):  # the first game warms the painter up
                        page.evaluate("() => { delete document.querySelector('#widget').dataset.telephone; }")
                        page.click("#telephone-play")
                        expect(widget).to_have_attribute("data-telephone", "done", timeout=120_000)
                    round_ms = float(widget.get_attribute("data-round-ms"))
                results[backend] = (medians, round_ms)
                page.close()
            browser.close()
    return results


if __name__ == "__main__":
    main()
