"""The lyrics experiment: generation, prompts, pre-trained vectors, and its command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import only_run_dir, read_run, run_cli
from tinkerflow.core import DataError
from tinkerflow.plugins.lyrics.experiment import load_glove
from tinkerflow.plugins.lyrics.generate import Stepper, distinct_2, generate, prompt_ids
from tinkerflow.plugins.lyrics.tokens import NEWLINE, Vocabulary

VOCAB = Vocabulary(["<pad>", "<unk>", NEWLINE, "i", "want", "to", "be", "free"])


def next_after(ids: np.ndarray) -> np.ndarray:
    """A stand-in model that always likes the word after the last one best (cycling)."""
    p = np.full(len(VOCAB), 0.01)
    p[3 + (int(ids[0, -1]) - 2) % 5] = 0.5
    return (p / p.sum())[None, :]


def test_greedy_follows_the_model_and_never_writes_padding_or_unknown():
    words = generate(next_after, VOCAB, "i want", words=7, window=4, temperature=0.0)
    assert words == ["to", "be", "free", "i", "want", "to", "be"]
    looping = generate(next_after, VOCAB, "i want", words=40, window=4, temperature=0.0)
    assert distinct_2(looping) == pytest.approx(5 / 39), "the greedy loop shows in the repetition measure"
    drawn = generate(lambda ids: np.full((1, len(VOCAB)), 1 / len(VOCAB)), VOCAB, "", 200, 4, temperature=1.0)
    assert "<pad>" not in drawn and "<unk>" not in drawn


def test_sampling_is_reproducible_and_top_1_is_greedy():
    a = generate(next_after, VOCAB, "i", 30, 4, temperature=1.5, seed=3)
    assert a == generate(next_after, VOCAB, "i", 30, 4, temperature=1.5, seed=3)
    assert a != generate(next_after, VOCAB, "i", 30, 4, temperature=1.5, seed=4)
    assert generate(next_after, VOCAB, "i", 10, 4, temperature=2.0, top_k=1) == \
        generate(next_after, VOCAB, "i", 10, 4, temperature=0.0)


def test_prompts_with_unknown_words():
    assert prompt_ids("zebra i want", VOCAB, 4).tolist() == [0, 1, 3, 4]
    assert prompt_ids("", VOCAB, 3).tolist() == [0, 0, 0]
    with pytest.raises(DataError, match="none of the prompt's words"):
        prompt_ids("zebra giraffe", VOCAB, 4)


def test_glove_vectors(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("want 0.5 -1 2\nzebra 1 1 1\nfree 3 2 1\n", encoding="utf-8")
    matrix = load_glove(str(path), VOCAB, seed=0)
    assert matrix.shape == (len(VOCAB), 3)
    np.testing.assert_array_equal(matrix[VOCAB.index["want"]], [0.5, -1, 2])
    np.testing.assert_array_equal(matrix[VOCAB.index["free"]], [3, 2, 1])
    assert not matrix[0].any() and matrix[VOCAB.index["be"]].any()
    path.write_text("want 1 2 3\nfree 1 2\n")
    with pytest.raises(DataError, match="line 2 has 2 numbers, the first line 3"):
        load_glove(str(path), VOCAB, 0)
    with pytest.raises(DataError, match="does not exist"):
        load_glove(str(tmp_path / "nope.txt"), VOCAB, 0)


SMOKE = ["experiment=lyrics", "data.source=text_folder", "experiment.vocab_size=200", "experiment.lstm_units=8",
         "experiment.embedding_dim=4", "experiment.window=5", "trainer.epochs=2", "trainer.checkpoint_seconds=0"]


def test_train_on_a_text_folder_with_glove_and_sample(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    verses = [f"hello world number {i}\nwe sing the song of {i % 7} again\nand again we go" for i in range(30)]
    (songs / "all.txt").write_text("\n\n".join(verses), encoding="utf-8")
    (tmp_path / "glove.txt").write_text("hello 1 0 0 1\nworld 0 1 1 0\nsing 1 1 1 1\n", encoding="utf-8")
    result = run_cli("train", *SMOKE, f"data.path={songs}", "experiment.embedding=glove",
                     f"experiment.embedding_file={tmp_path / 'glove.txt'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "runs", "lyrics")
    info = read_run(run_dir)
    assert info["data"]["songs"] == 30 and info["data"]["songs_per_split"] == {"validation": 3, "test": 3, "train": 24}
    assert info["metrics"]["test_perplexity"] == pytest.approx(np.exp(info["metrics"]["test_loss"]))
    assert [s["temperature"] for s in info["samples"]["samples"]] == [0.0, 0.5, 0.8, 1.2]
    vocab = json.loads((run_dir / "learned.json").read_text())["tokens"]
    assert vocab[:2] == ["<pad>", "<unk>"] and "hello" in vocab and "\n" in vocab

    out = tmp_path / "more"
    sampled = run_cli("sample", str(run_dir), "--prompt", "hello world", "--words", "12", "--temperature", "0",
                      "--out", str(out), cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    text = (out / "lyrics_t0.txt").read_text()
    assert text.startswith("hello world\n") and len(text.split()) >= 3
    unknown = run_cli("sample", str(run_dir), "--prompt", "xylophone quasar", cwd=tmp_path)
    assert unknown.returncode == 2 and "none of the prompt's words" in unknown.stderr

    exported = run_cli("export", str(run_dir), "--format", "tflite", "tfjs", "--quantize", "float32", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    for fmt in ("tflite", "tfjs"):
        record = json.loads((run_dir / "export.json").read_text())["formats"][fmt]["variants"]["float32"]
        assert record["status"] == "passed" and record["parity"]["max_abs_diff"] < 1e-4, "the stepper converts"
        manifest = json.loads((run_dir / "export" / fmt / "float32" / "manifest.json").read_text())
        assert manifest["vocabulary"] == vocab and manifest["preprocessing"]["window"] == 5
        assert manifest["stepping"]["state_shape"] == [5, 16]
        assert [i["name"] for i in manifest["inputs"]] == ["token", "state"]
        assert record["metric"]["exported"] == pytest.approx(record["metric"]["keras"], abs=1e-6)

    from tinkerflow.core.plugins import make_plugin_manager
    from tinkerflow.core.runs import open_run
    from tinkerflow.exporters.runtime import load

    run, experiment = open_run(run_dir, make_plugin_manager())
    keras_words = generate(experiment.predictor(run.load_model()), experiment.vocab, "hello world", 20, 5, 0.0)
    stepper = Stepper(load(run_dir / "export" / "tflite" / "float32").predict_named, experiment.state_shape)
    assert generate(stepper, experiment.vocab, "hello world", 20, 5, 0.0) == keras_words
    assert stepper.steps == 5 + 19, "the window is read once, then one step per word"

    import shutil

    from tinkerflow.core import learned
    from tinkerflow.plugins.lyrics.experiment import Lyrics, LyricsState

    copy = tmp_path / "runs" / "lyrics" / "copy"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("export", "export.json", ".lock"))
    (copy / "learned.json").unlink()
    missing = run_cli("sample", str(copy), "--words", "3", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        f"tinkerflow: error: {copy} has no learned.json; expected a lyrics run whose training got past load_data "
        "(it saves what the experiment learned from the data there)"], missing.stderr
    (copy / "learned.json").write_text(json.dumps({"tokens": vocab, "run": "__import__('os').system('id')"}))
    hostile = run_cli("sample", str(copy), "--words", "3", cwd=tmp_path)
    assert hostile.returncode == 2 and "learned.json: field 'run': extra inputs are not permitted" in hostile.stderr
    assert len(hostile.stderr.strip().splitlines()) == 1, hostile.stderr
    (copy / "learned.json").write_text(json.dumps({"tokens": vocab[:-1]}))
    with pytest.raises(DataError, match="^the data now gives tokens .* the run was trained with .*; expected the data"):
        learned.keep(copy, Lyrics, LyricsState(tokens=vocab))
    assert learned.keep(run_dir, Lyrics, LyricsState(tokens=vocab)) == LyricsState(tokens=vocab)


@pytest.mark.parametrize("overrides, expected", [
    (["data.source=songs_csv"], "data.source=songs_csv needs data.path"),
    (["data.source=text_folder", "data.path=/nonexistent"], "does not exist"),
    (["experiment.vocab_size=0"], "experiment.vocab_size=0 is out of range"),
])
def test_bad_lyrics_input_is_one_line(tmp_path, overrides, expected):
    result = run_cli("train", "experiment=lyrics", *overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert expected in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr


def test_bad_corpora_through_the_cli_are_one_line(tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    (short / "a.txt").write_text("\n\n".join(f"la la {i}" for i in range(10)))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    for overrides, expected in [
        ([f"data.path={short}", "data.source=text_folder"], "hold no window of 15 words"),
        ([f"data.path={empty}", "data.source=songs_csv"], "has no 'text' column (columns: none)"),
    ]:
        result = run_cli("train", "experiment=lyrics", *overrides, cwd=tmp_path)
        assert result.returncode == 2 and expected in result.stderr, result.stderr[-2000:]
        assert result.stderr.strip().count("\n") == 0, result.stderr


def test_data_settings_belong_to_experiments_that_take_them(tmp_path):
    result = run_cli("train", "data.source=fortunes", cwd=tmp_path)
    assert result.returncode == 2 and "unknown config key 'data.source'" in result.stderr
