"""The game of AI telephone (EXPERIMENTS.md section 6), automated.

A game starts from a real image and its description. Each round the painter (a
text_to_image run) paints the last text and the captioner (a captioning run) describes the
painting; the description is the next round's text. Every game has its own seed, so the
painter's latent vectors and the captioner's sampled words differ between games. The report
(``telephone.md`` and ``telephone.html``) shows each round's image and caption in order, the
post's format, with each caption's drift: its word overlap (Jaccard) with the original text.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from tinkerflow.core import DataError

from . import captions as caps
from .decode import sample
from .painter import bag_of_words
from tinkerflow.core.rundir import save_image, write_atomic


def portable_normal(seed: int, count: int) -> np.ndarray:
    """Standard normal numbers from mulberry32 uniforms and Box-Muller, exactly as the page's
    ``portableNormal`` (web_export/assets/images.js) draws them: the painter's latent vectors,
    so a game in Python and in the browser paint from the same numbers."""
    import math

    a = seed & 0xFFFFFFFF

    def uniform() -> float:
        nonlocal a
        a = (a + 0x6D2B79F5) & 0xFFFFFFFF
        t = ((a ^ (a >> 15)) * (1 | a)) & 0xFFFFFFFF
        t = ((t + (((t ^ (t >> 7)) * (61 | t)) & 0xFFFFFFFF)) & 0xFFFFFFFF) ^ t
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    out = np.empty(count, "float32")
    for i in range(count):
        u1, u2 = 1 - uniform(), uniform()
        out[i] = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
    return out


def round_seed(seed: int, game: int, round_: int) -> int:
    """The seed of a round's latent vector and sampled words (the page uses the same)."""
    return (seed + game) * 1000 + round_


def overlap(text: str, original: str) -> float:
    a, b = set(caps.words(text)), set(caps.words(original))
    return len(a & b) / len(a | b) if a | b else 1.0


def _players(captioner_run: Path, painter_run: Path, registry):
    from tinkerflow.core.runner import open_run

    captioner_dir, captioner = open_run(captioner_run, registry)
    painter_dir, painter = open_run(painter_run, registry)
    if captioner.name != "captioning":
        raise DataError(f"--captioner {captioner_run} is a run of the {captioner.name} experiment; expected a captioning run")
    if painter.name != "text_to_image":
        raise DataError(f"--painter {painter_run} is a run of the {painter.name} experiment; expected a text_to_image run")
    said = set(captioner.vocab.tokens) - set(caps.SPECIALS)
    known = said & set(painter.vocab.tokens)
    if not known:
        raise DataError("the captioner and the painter were trained on different vocabularies (no word in common); "
                        "expected both trained on the same captions")
    return (captioner_dir, captioner), (painter_dir, painter), len(known) / max(1, len(said))


def play(captioner_run: Path, painter_run: Path, image: Path, text: str, rounds: int, games: int, seed: int,
         out: Path, registry, temperature: float = 0.8) -> dict:
    """Play ``games`` games of ``rounds`` rounds; write the report into ``out``; return its summary."""
    from PIL import Image

    if rounds < 1:
        raise DataError(f"--rounds {rounds}; expected at least 1")
    if games < 1:
        raise DataError(f"--games {games}; expected at least 1")
    if not caps.words(text):
        raise DataError(f"--text {text!r} has no words; expected the start image's description")
    (c_run, captioner), (p_run, painter), shared = _players(captioner_run, painter_run, registry)
    size = captioner.config.image_size
    try:
        with Image.open(image) as start:
            first = caps.square(start, size)
    except FileNotFoundError:
        raise DataError(f"--image {image} does not exist; expected the start photo") from None
    except OSError as exc:
        raise DataError(f"--image {image} is not an image ({' '.join(str(exc).split())[:80]})") from None

    captioner_model = c_run.load_model(captioner.custom_objects())
    step, state_for = captioner.stepper(captioner_model)
    generator = painter.export_model(p_run.load_model(painter.custom_objects()))
    vocab = captioner.vocab
    ids = vocab.index
    banned = (ids[caps.PAD], ids[caps.START], ids[caps.UNKNOWN])
    out.mkdir(parents=True, exist_ok=True)
    save_image(Image.fromarray(first), out / "start.png")
    played = []
    for game in range(games):
        current, rounds_out = text, []
        for r in range(1, rounds + 1):
            latent = portable_normal(round_seed(seed, game, r), painter.architecture.latent_dim)[None]
            condition = bag_of_words(current, painter.vocab)[None]  # zeros when no word is known
            pixels = np.clip(np.round(np.asarray(generator([latent, condition], training=False))[0]), 0, 255)
            painting = np.asarray(Image.fromarray(pixels.astype("uint8")).resize((size, size), Image.BILINEAR))
            said = vocab.decode(sample(step, state_for(painting), ids[caps.START], ids[caps.END],
                                       captioner.config.caption_length - 1, temperature, seed=round_seed(seed, game, r),
                                       banned=banned))
            name = f"game{game + 1}_round{r}.png"
            save_image(Image.fromarray(pixels.astype("uint8")), out / name)
            rounds_out.append({"round": r, "painted": current, "image": name, "caption": said,
                               "overlap_with_start": round(overlap(said, text), 4)})
            current = said
        played.append({"game": game + 1, "seed": seed + game, "rounds": rounds_out})
    per_round = [round(float(np.mean([g["rounds"][r]["overlap_with_start"] for g in played])), 4)
                 for r in range(rounds)]
    summary = {"start": {"image": "start.png", "text": text}, "captioner": str(c_run.path), "painter": str(p_run.path),
               "shared_vocabulary": round(shared, 4), "temperature": temperature, "games": played,
               "mean_overlap_per_round": per_round,
               "final_captions": sorted({g["rounds"][-1]["caption"] for g in played})}
    write_atomic(out / "telephone.json", json.dumps(summary, indent=1))
    write_atomic(out / "telephone.md", _markdown(summary))
    write_atomic(out / "telephone.html", _html(summary))
    return summary


def _markdown(s: dict) -> str:
    lines = ["# AI telephone", "", f"Start: ![start]({s['start']['image']}) \"{s['start']['text']}\"", "",
             f"Captioner `{s['captioner']}`, painter `{s['painter']}`; captions drawn at temperature "
             f"{s['temperature']}.", "", "| round | mean word overlap with the start text |", "|---|---|"]
    lines += [f"| {r + 1} | {v:.3f} |" for r, v in enumerate(s["mean_overlap_per_round"])]
    for game in s["games"]:
        lines += ["", f"## Game {game['game']} (seed {game['seed']})", ""]
        for r in game["rounds"]:
            lines.append(f"{r['round']}. painted \"{r['painted']}\" → ![round {r['round']}]({r['image']}) → "
                         f"\"{r['caption']}\" (overlap {r['overlap_with_start']:.2f})")
    return "\n".join(lines) + "\n"


def _html(s: dict) -> str:
    e = html.escape
    parts = ["<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>AI telephone</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em}figure{display:inline-block;margin:0 1em 1em 0;"
             "vertical-align:top;width:10em}img{width:10em;image-rendering:pixelated}figcaption{font-size:.9em}</style>",
             "<h1>AI telephone</h1>", f"<figure><img src=\"{e(s['start']['image'])}\" alt=\"\">"
             f"<figcaption>start: {e(s['start']['text'])}</figcaption></figure>",
             "<table><tr><th>round</th><th>mean word overlap with the start text</th></tr>"]
    parts += [f"<tr><td>{r + 1}</td><td>{v:.3f}</td></tr>" for r, v in enumerate(s["mean_overlap_per_round"])]
    parts.append("</table>")
    for game in s["games"]:
        parts.append(f"<h2>Game {game['game']} (seed {game['seed']})</h2><div>")
        for r in game["rounds"]:
            parts.append(f"<figure><img src=\"{e(r['image'])}\" alt=\"\"><figcaption>{r['round']}. "
                         f"{e(r['caption'])} <small>({r['overlap_with_start']:.2f})</small></figcaption></figure>")
        parts.append("</div>")
    return "\n".join(parts) + "\n"


def configure(parser) -> None:
    parser.add_argument("--image", required=True, help="the start photo")
    parser.add_argument("--text", required=True, help="its one-sentence description")
    parser.add_argument("--captioner", required=True, help="a captioning run directory")
    parser.add_argument("--painter", required=True, help="a text_to_image run directory")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per game (default 4, as the post)")
    parser.add_argument("--games", type=int, default=5, help="games, each with its own seed (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first game")
    parser.add_argument("--temperature", type=float, default=0.8, help="temperature of the captions (0: greedy)")
    parser.add_argument("--out", default="telephone", help="report folder (default: telephone)")


def command(args, registry) -> int:
    summary = play(Path(args.captioner), Path(args.painter), Path(args.image), args.text, args.rounds, args.games,
                   args.seed, Path(args.out), registry, args.temperature)
    print(f"{len(summary['games'])} games of {len(summary['mean_overlap_per_round'])} rounds written to "
          f"{args.out}/telephone.html (and .md, .json)")
    print("mean word overlap with the start text per round: "
          + ", ".join(f"{v:.2f}" for v in summary["mean_overlap_per_round"]))
    for caption in summary["final_captions"]:
        print(f"  ended as: {caption}")
    return 0
