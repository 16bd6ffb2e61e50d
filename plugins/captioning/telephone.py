"""The game of AI telephone, automated.

A game starts from a text: an image's description (``--image`` and ``--text``, as the post
played it), a sentence given alone (``--text``), or, with neither, a sentence the first
player comes up with: a random scene's caption, a different one per game. Each round the
painter (a text_to_image run) paints the last text and the captioner (a captioning run)
describes the painting; the description is the next round's text. Every game has its own
seed, so the painter's latent vectors and the captioner's sampled words differ between games.

What survives is measured against the scene the start text describes
(:func:`scenes.truth_of`): per round, how much of its colours, shapes, count and relation the
painting still shows (seen by the independent :mod:`judge`) and the caption still says
(:func:`scenes.judge_caption`). The report (``telephone.md``, ``telephone.html``,
``telephone.json`` and the decay plot ``decay.png``) has that table and each round's image
and caption in order, the post's format.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from tinkerflow.core import DataError
from tinkerflow.core.config import number_flag
from tinkerflow.core.runfs import make_folder, save_figure, save_image, write_atomic
from tinkerflow.core.runs import load_trained_model, open_run

from . import captions as caps
from . import judge as judges
from . import scenes
from .decode import sample


def portable_normal(seed: int, count: int) -> np.ndarray:
    """Standard normal numbers from mulberry32 uniforms and Box-Muller, exactly as the page's
    ``portableNormal`` (web_export/assets/images.js) draws them: the painter's latent vectors,
    so a game in Python and in the browser paint from the same numbers."""
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


PAINTED = ("colour", "shape", "count")
SAID = ("colour", "shape", "count", "relation")


def survival(caption: str, truth: scenes.Scene, start_relation: bool) -> dict[str, float | None]:
    """How much of ``truth`` a caption still says: :func:`scenes.judge_caption`, except that a
    relation the start stated and the caption dropped counts as lost (0), and a relation
    is not scored when the start stated none."""
    judged = scenes.judge_caption(caption, truth)
    relation = (judged["relation"] or 0.0) if start_relation else None
    return {"colour": judged["colour"], "shape": judged["shape"], "count": judged["count"], "relation": relation}


def overlap(text: str, original: str) -> float:
    a, b = set(caps.words(text)), set(caps.words(original))
    return len(a & b) / len(a | b) if a | b else 1.0


def _players(captioner_run: Path, painter_run: Path, registry):
    captioner_dir, captioner = open_run(captioner_run, registry)
    painter_dir, painter = open_run(painter_run, registry)
    if captioner.name != "captioning":
        raise DataError(f"--captioner {captioner_run} is a run of the {captioner.name} experiment; expected a "
                        "captioning run")
    if painter.name != "text_to_image":
        raise DataError(f"--painter {painter_run} is a run of the {painter.name} experiment; expected a text_to_image "
                        "run")
    said = set(captioner.vocab.tokens) - set(caps.SPECIALS)
    known = said & set(painter.vocab.tokens)
    if not known:
        raise DataError("the captioner and the painter were trained on different vocabularies (no word in common); "
                        "expected both trained on the same captions")
    return (captioner_dir, captioner), (painter_dir, painter), len(known) / max(1, len(said))


def play(captioner_run: Path, painter_run: Path, image: Path | None, text: str | None, rounds: int, games: int,
         seed: int, out: Path, registry, temperature: float = 0.8, judge_cache: Path | None = None) -> dict:
    """Play ``games`` games of ``rounds`` rounds; write the report into ``out``; return its summary."""
    from PIL import Image

    if rounds < 1:
        raise DataError(f"--rounds {rounds}; expected at least 1")
    if games < 1:
        raise DataError(f"--games {games}; expected at least 1")
    if text is not None and not caps.words(text):
        raise DataError(f"--text {text!r} has no words; expected the start image's description or a sentence")
    if image is not None and text is None:
        raise DataError("--image needs --text, its description; expected both, --text alone, or neither")
    (c_run, captioner), (p_run, painter), shared = _players(captioner_run, painter_run, registry)
    size = captioner.config.image_size
    first = None
    if image is not None:
        try:
            with Image.open(image) as start:
                first = caps.square(start, size)
        except FileNotFoundError:
            raise DataError(f"--image {image} does not exist; expected the start photo") from None
        except OSError as exc:
            raise DataError(f"--image {image} is not an image ({' '.join(str(exc).split())[:80]})") from None

    captioner_model = load_trained_model(c_run, captioner)
    step, state_for = captioner.stepper(captioner_model)
    generator = painter.export_model(load_trained_model(p_run, painter))
    judge = None
    vocab = captioner.vocab
    ids = vocab.index
    banned = (ids[caps.PAD], ids[caps.START], ids[caps.UNKNOWN])
    make_folder(out)
    if first is not None:
        save_image(Image.fromarray(first), out / "start.png")
    played = []
    for game in range(games):
        start = text if text is not None else scenes.describe(
            scenes.random_scene(np.random.default_rng([seed + game, 11])), np.random.default_rng([seed + game, 12]))
        truth = scenes.truth_of(start)
        related = scenes.parse(start).relation is not None
        if truth.shapes and judge is None:
            judge = judges.load(size, judge_cache)
        current, rounds_out = start, []
        for r in range(1, rounds + 1):
            latent = portable_normal(round_seed(seed, game, r), painter.architecture.latent_dim)[None]
            condition = painter.condition(current)[None]  # zeros when no word is known
            pixels = np.clip(np.round(np.asarray(generator([latent, condition], training=False))[0]), 0, 255)
            painting = np.asarray(Image.fromarray(pixels.astype("uint8")).resize((size, size), Image.BILINEAR))
            said = vocab.decode(sample(step, state_for(painting), ids[caps.START], ids[caps.END],
                                       captioner.config.caption_length - 1, temperature, seed=round_seed(seed, game, r),
                                       banned=banned))
            name = f"game{game + 1}_round{r}.png"
            save_image(Image.fromarray(pixels.astype("uint8")), out / name)
            kept = {}
            if truth.shapes:
                kept = {"painting_keeps": {k: round(v, 4) for k, v in judge.score(painting[None], [start]).items()
                                           if k in PAINTED},
                        "caption_keeps": {k: (None if v is None else round(v, 4))
                                          for k, v in survival(said, truth, related).items()}}
            rounds_out.append({"round": r, "painted": current, "image": name, "caption": said,
                               "overlap_with_start": round(overlap(said, start), 4), **kept})
            current = said
        played.append({"game": game + 1, "seed": seed + game, "start": start, "rounds": rounds_out})
    per_round = [round(float(np.mean([g["rounds"][r]["overlap_with_start"] for g in played])), 4)
                 for r in range(rounds)]
    summary = {"start": {"image": "start.png" if first is not None else None, "text": text},
               "captioner": str(c_run.path), "painter": str(p_run.path),
               "shared_vocabulary": round(shared, 4), "temperature": temperature,
               "judge": {"size": size, "accuracy_on_renders": judge.accuracy} if judge else None,
               "survival": decay_table(played, rounds), "games": played,
               "mean_overlap_per_round": per_round,
               "final_captions": sorted({g["rounds"][-1]["caption"] for g in played})}
    write_atomic(out / "telephone.json", json.dumps(summary, indent=1))
    if judge is not None:
        decay_plot(summary["survival"], out / "decay.png")
    write_atomic(out / "telephone.md", _markdown(summary))
    write_atomic(out / "telephone.html", _html(summary))
    return summary


def decay_table(played: list[dict], rounds: int) -> list[dict]:
    """Per round, the mean share of the start scene that survives, per attribute: in the
    painting (``painting_<attribute>``) and in the caption (``caption_<attribute>``); None
    where no game scored it (a relation when no start stated one)."""
    table = []
    for r in range(rounds):
        row: dict = {"round": r + 1}
        for where, attributes in (("painting", PAINTED), ("caption", SAID)):
            for name in attributes:
                values = [g["rounds"][r][f"{where}_keeps"][name] for g in played if f"{where}_keeps" in g["rounds"][r]]
                values = [v for v in values if v is not None]
                row[f"{where}_{name}"] = round(float(np.mean(values)), 4) if values else None
        table.append(row)
    return table


def decay_plot(table: list[dict], path: Path) -> None:
    """Survival per attribute along the chain of hops: start, painting 1, caption 1, ..."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    hops = [f"{kind} {row['round']}" for row in table for kind in ("painting", "caption")]
    for name, colour in zip(SAID, ("tab:red", "tab:blue", "tab:green", "tab:purple")):
        values = [1.0]
        for row in table:
            values += [row.get(f"painting_{name}"), row[f"caption_{name}"]]  # the judge sees no relations
        xs = [x for x, v in enumerate(values) if v is not None]
        ax.plot(xs, [values[x] for x in xs], marker="o", color=colour, label=name)
    ax.set_xticks(range(len(hops) + 1), ["start", *hops], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(-0.05, 1.05)
    ax.set_ylabel("share of the start scene kept")
    ax.set_title("AI telephone: what survives each hop (mean over games)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def _cell(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _survival_rows(table: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["round", *(f"painting {a}" for a in PAINTED), *(f"caption {a}" for a in SAID)]
    rows = [[str(row["round"]), *(_cell(row[f"painting_{a}"]) for a in PAINTED),
             *(_cell(row[f"caption_{a}"]) for a in SAID)] for row in table]
    return header, rows


def _markdown(s: dict) -> str:
    start = s["start"]
    opening = (f"Start: ![start]({start['image']}) \"{start['text']}\"" if start["image"] else
               f"Start: \"{start['text']}\"" if start["text"] else "Start: a sentence of its own in every game")
    header, rows = _survival_rows(s["survival"])
    lines = ["# AI telephone", "", opening, "",
             f"Captioner `{s['captioner']}`, painter `{s['painter']}`; captions drawn at temperature "
             f"{s['temperature']}. {len(s['games'])} games.", ""]
    if s["judge"]:
        lines += ["## What survives (mean over games; 1 = all of the start scene)", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                  *("| " + " | ".join(row) + " |" for row in rows), "", "![decay](decay.png)", ""]
    lines += ["| round | mean word overlap with the start text |", "|---|---|"]
    lines += [f"| {r + 1} | {v:.3f} |" for r, v in enumerate(s["mean_overlap_per_round"])]
    for game in s["games"]:
        lines += ["", f"## Game {game['game']} (seed {game['seed']})", "", f"Start: \"{game['start']}\"", ""]
        for r in game["rounds"]:
            lines.append(f"{r['round']}. painted \"{r['painted']}\" → ![round {r['round']}]({r['image']}) → "
                         f"\"{r['caption']}\" (overlap {r['overlap_with_start']:.2f})")
    return "\n".join(lines) + "\n"


def _html(s: dict) -> str:
    e = html.escape
    header, rows = _survival_rows(s["survival"])
    parts = ["<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>AI telephone</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em}figure{display:inline-block;margin:0 1em 1em 0;"
             "vertical-align:top;width:10em}img{width:10em;image-rendering:pixelated}figcaption{font-size:.9em}"
             "td,th{padding:0 .6em;text-align:right}</style>", "<h1>AI telephone</h1>"]
    if s["start"]["image"]:
        parts.append(f"<figure><img src=\"{e(s['start']['image'])}\" alt=\"\">"
                     f"<figcaption>start: {e(s['start']['text'])}</figcaption></figure>")
    if s["judge"]:
        parts += ["<h2>What survives (mean over games)</h2><table><tr>", *(f"<th>{e(h)}</th>" for h in header),
                  "</tr>", *("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows),
                  "</table>", "<img src=\"decay.png\" alt=\"survival per hop\" style=\"width:40em\">"]
    parts += ["<table><tr><th>round</th><th>mean word overlap with the start text</th></tr>"]
    parts += [f"<tr><td>{r + 1}</td><td>{v:.3f}</td></tr>" for r, v in enumerate(s["mean_overlap_per_round"])]
    parts.append("</table>")
    for game in s["games"]:
        parts.append(f"<h2>Game {game['game']} (seed {game['seed']})</h2><p>start: {e(game['start'])}</p><div>")
        for r in game["rounds"]:
            parts.append(f"<figure><img src=\"{e(r['image'])}\" alt=\"\"><figcaption>{r['round']}. "
                         f"{e(r['caption'])} <small>({r['overlap_with_start']:.2f})</small></figcaption></figure>")
        parts.append("</div>")
    return "\n".join(parts) + "\n"


def configure(parser) -> None:
    parser.add_argument("--image", help="a start photo (with --text, its description)")
    parser.add_argument("--text", help="the start sentence; without it every game starts from a sentence of its own")
    parser.add_argument("--captioner", required=True, help="a captioning run directory")
    parser.add_argument("--painter", required=True, help="a text_to_image run directory")
    parser.add_argument("--rounds", type=number_flag(int, min=1, max=100), default=4,
                        help="rounds per game, 1 to 100 (default 4, as the post)")
    parser.add_argument("--games", type=number_flag(int, min=1, max=10_000), default=5,
                        help="games, each with its own seed (default 5)")
    parser.add_argument("--seed", type=number_flag(int, min=0, max=2**31 - 1), default=0, help="seed of the first game")
    parser.add_argument("--temperature", type=number_flag(float, min=0, max=100), default=0.8,
                        help="temperature of the captions (0: greedy)")
    parser.add_argument("--out", default="telephone", help="report folder (default: telephone)")


def command(args, registry) -> int:
    summary = play(Path(args.captioner), Path(args.painter), Path(args.image) if args.image else None, args.text,
                   args.rounds, args.games, args.seed, Path(args.out), registry, args.temperature)
    print(f"{len(summary['games'])} games of {len(summary['mean_overlap_per_round'])} rounds written to "
          f"{args.out}/telephone.html (and .md, .json)")
    if summary["judge"]:
        header, rows = _survival_rows(summary["survival"])
        print("what survives of the start scene, mean over games (decay.png):")
        print("  " + " | ".join(header))
        for row in rows:
            print("  " + " | ".join(cell.rjust(len(name)) for cell, name in zip(row, header)))
    else:
        print("the start names no shape of a scene, so what survives is not measured; mean word overlap with the "
              "start per round: " + ", ".join(f"{v:.2f}" for v in summary["mean_overlap_per_round"]))
    for caption in summary["final_captions"]:
        print(f"  ended as: \"{caption}\"" + ("  (the captioner ended at once)" if not caption else ""))
    return 0
