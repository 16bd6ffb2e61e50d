"""Generated scenes: the default data of captioning and text_to_image, and the caption judge."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tinkerflow.plugins.captioning import scenes
from tinkerflow.plugins.captioning.scenes import COLOURS, Scene, Shape, describe, judge_caption, parse, render


def test_a_seed_gives_the_same_scenes_and_another_seed_others():
    first, images, captions = scenes.scene_set(40, 32, seed=3, captions_per_scene=3)
    again, images_again, captions_again = scenes.scene_set(40, 32, seed=3, captions_per_scene=3)
    assert first == again and captions == captions_again and np.array_equal(images, images_again)
    other, other_images, _ = scenes.scene_set(40, 32, seed=4, captions_per_scene=3)
    assert other != first and not np.array_equal(other_images, images)
    assert images.shape == (40, 32, 32, 3) and images.dtype == np.uint8


def test_every_caption_says_the_truth_of_its_scene_in_varied_words():
    found, _, captions = scenes.scene_set(600, 32, seed=0, captions_per_scene=3)
    words = Counter()
    for scene, texts in zip(found, captions):
        for text in texts:
            judged = judge_caption(text, scene)
            assert all(v in (None, 1.0) for v in judged.values()), (text, scene, judged)
            assert len(parse(text).shapes) == len(scene.shapes), text
            words.update(text.split())
    assert {len(s.shapes) for s in found} == {1, 2, 3}
    for word in ("ball", "circle", "box", "square", "little", "big", "left", "right", "above", "below", "just",
                 *COLOURS):
        assert words[word] > 0, f"the grammar never says {word!r}"
    assert max(len(t.split()) for texts in captions for t in texts) <= 15, "captioning's caption_length is 17"
    assert words["an"] > 0 and not any(" a orange" in t or t.startswith("a orange") for ts in captions for t in ts)


def test_each_shape_is_drawn_in_its_colour_at_its_cell():
    rng = np.random.default_rng(1)
    for _ in range(50):
        scene = scenes.random_scene(rng)
        image = render(scene, 48, rng).astype(int)
        for shape in scene.shapes:
            x, y = (int((1 + 2 * c) / 6 * 48) for c in (shape.column, shape.row))
            assert np.abs(image[y, x] - COLOURS[shape.colour]).max() < 40, (shape, image[y, x])
        assert np.mean((image > 245).all(axis=-1)) > 0.5, "shapes on a white background"


SCENE = Scene((Shape("red", "circle", "small", 0, 1), Shape("blue", "square", "large", 2, 1)))


@pytest.mark.parametrize("caption, expected", [
    ("a small red ball left of a big blue box", dict(colour=1, shape=1, count=1, size=1, relation=1)),
    ("a blue square left of a red circle", dict(colour=1, shape=1, count=1, size=None, relation=0)),
    ("a blue square above a red circle", dict(colour=1, shape=1, count=1, size=None, relation=0)),
    ("a red square", dict(colour=0.5, shape=0.5, count=0, size=None, relation=None)),
    ("a big red circle and a green triangle and a blue square", dict(colour=2 / 3, shape=2 / 3, count=0, size=0,
                                                                   relation=None)),
    ("red red of left circle the", dict(colour=0.5, shape=0.5, count=0, size=None, relation=None)),
    ("", dict(colour=0, shape=0, count=0, size=None, relation=None)),
])
def test_the_caption_judge_scores_each_attribute(caption, expected):
    assert judge_caption(caption, SCENE) == pytest.approx(expected)


def test_a_text_alone_becomes_the_truth_it_describes():
    truth = scenes.truth_of("a little green triangle right of a purple ball")
    assert [(s.colour, s.shape, s.size) for s in truth.shapes] == [("green", "triangle", "small"),
                                                                    ("purple", "circle", "small")]
    assert judge_caption("a green triangle right of a purple circle", truth)["relation"] == 1.0
    assert judge_caption("a green triangle left of a purple circle", truth)["relation"] == 0.0
    assert describe(truth, np.random.default_rng(0))


def test_the_judge_sees_what_real_renders_show_and_not_what_they_lack():
    from tinkerflow.plugins.captioning import judge

    seer = judge.load(16)  # trained once per machine, then read from the user cache
    assert min(seer.accuracy[k] for k in ("colour", "shape", "count")) > 0.95, seer.accuracy
    _, images, captions = scenes.scene_set(300, 16, seed=123, captions_per_scene=1)
    said = [c[0] for c in captions]
    right = seer.score(images, said)
    wrong = seer.score(images, said[1:] + said[:1])  # every picture against another scene's caption
    assert right["colour"] > 0.9 and right["shape"] > 0.9 and right["count"] > 0.9, right
    assert wrong["colour"] < 0.5 and wrong["count"] < 0.6, wrong
    assert judge.load(16).see(images[:8]) == seer.see(images[:8]), "the cached judge is the same judge"


def test_a_judge_that_learnt_too_little_is_not_trusted_from_the_cache(tmp_path, monkeypatch):
    import json

    from tinkerflow.plugins.captioning import judge

    weak = {"colour": 0.31, "shape": 0.54, "object": 0.03, "count": 0.99}
    assert not judge.trusted(weak) and judge.trusted({"colour": 0.99, "shape": 0.97})
    stem = tmp_path / f"scenes-8px-v{judge.VERSION}"
    weights, record = stem.with_name(stem.name + ".weights.h5"), stem.with_name(stem.name + ".json")
    judge.build(8).save_weights(weights)
    record.write_text(json.dumps({"accuracy": weak}))
    retrained = []
    good = {"colour": 0.99, "shape": 0.98, "object": 0.9, "count": 1.0}
    monkeypatch.setattr(judge, "train",
                        lambda size: retrained.append(size) or judge.Judge(judge.build(size), size, good))
    assert judge.load(8, cache=tmp_path).accuracy == good and retrained == [8]
    assert json.loads(record.read_text())["accuracy"] == good
    assert judge.load(8, cache=tmp_path).accuracy == good and retrained == [8], "a trusted cache is read, not retrained"


# A process that needs the 8-pixel judge, with training replaced by a file handshake (the
# network itself is tested above): it says when it starts training and waits to be let go.
NEEDS_JUDGE = """
import sys, time
from pathlib import Path
from tinkerflow.plugins.captioning import judge

cache, me = Path(sys.argv[1]), sys.argv[2]
good = {"colour": 0.99, "shape": 0.98, "object": 0.9, "count": 1.0}

class Weights:
    def load_weights(self, path):
        assert Path(path).read_bytes() == b"weights"

def train(size):
    (cache.parent / f"{me}-trains").write_text("")
    while not (cache.parent / "release").exists():
        time.sleep(0.05)
    return judge.Judge(Weights(), size, good)

judge.build = lambda size, steps=0: Weights()
judge.train = train
judge.save_model_atomic = lambda model, path, weights_only: Path(path).write_bytes(b"weights")
print(judge.load(8, cache=cache).accuracy == good)
"""


def test_processes_needing_a_missing_judge_at_once_train_it_once(tmp_path):
    import subprocess
    import sys
    import time

    cache = tmp_path / "judge"

    def needs(me: str) -> subprocess.Popen:
        with (tmp_path / f"{me}.err").open("w") as err:
            return subprocess.Popen([sys.executable, "-c", NEEDS_JUDGE, str(cache), me], stdout=subprocess.PIPE,
                                    stderr=err, text=True, stdin=subprocess.DEVNULL)

    def until(event, *running: subprocess.Popen) -> None:
        while not event():
            assert all(p.poll() is None for p in running), [(tmp_path / f"{me}.err").read_text()
                                                            for me in ("first", "second")]
            time.sleep(0.05)

    first = needs("first")
    until((tmp_path / "first-trains").exists, first)
    second = needs("second")
    until(lambda: "waiting" in (tmp_path / "second.err").read_text() or (tmp_path / "second-trains").exists(),
          first, second)
    (tmp_path / "release").write_text("")
    assert [p.communicate(timeout=120)[0].strip() for p in (first, second)] == ["True", "True"]
    assert first.returncode == second.returncode == 0
    assert not (tmp_path / "second-trains").exists(), "the second process read the judge the first one trained"
    waited = (tmp_path / "second.err").read_text()
    assert f"waiting for the scene judge for 8-pixel pictures, which process {first.pid}" in waited, waited


def test_the_page_reads_captions_as_python_does(tmp_path):
    """plugins/captioning/web/scenes.js against scenes.py and telephone.survival, in Node,
    on the start itself, other captions, shuffled words and captions cut short."""
    import json
    import subprocess

    from tinkerflow.core.npm import node_binary
    from tinkerflow.plugins.captioning.telephone import survival

    rng = np.random.default_rng(5)
    found, _, captions = scenes.scene_set(150, 16, seed=9, captions_per_scene=2)
    texts = [t for ts in captions for t in ts]
    garbled = ([" ".join(rng.permutation(t.split())) for t in texts[:100]]
               + [" ".join(t.split()[:4]) for t in texts[:50]])
    pairs = [*zip(texts, garbled + texts[::-1]), *((t, t) for t in texts[:60])]
    expected = [survival(said, scenes.truth_of(start), scenes.parse(start).relation is not None)
                for start, said in pairs]
    module = Path(scenes.__file__).parent / "web" / "scenes.js"
    script = tmp_path / "read.mjs"
    script.write_text(f"import {{ keeps, truthOf }} from {json.dumps(module.as_uri())};\n"
                      f"const pairs = {json.dumps(pairs)};\n"
                      "console.log(JSON.stringify(pairs.map(([start, said]) => keeps(said, truthOf(start)))));\n")
    done = subprocess.run([node_binary(), str(script)], capture_output=True, text=True, check=True)
    got = json.loads(done.stdout)
    assert len(got) == len(expected) > 250
    for pair, mine, theirs in zip(pairs, got, expected):
        assert mine == pytest.approx(theirs), pair
    assert {e["relation"] for e in expected} >= {None, 0.0, 1.0} and min(e["colour"] for e in expected) < 1
