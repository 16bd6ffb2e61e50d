"""Words as tokens, as in the post: kept as written ("runnin" and "running" differ), a
newline is a token of its own, and a window of words predicts the next one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from tinkerflow.core import DataError

PAD = "<pad>"
UNKNOWN = "<unk>"
NEWLINE = "\n"


def tokenize(text: str) -> list[str]:
    """Whitespace-separated words of every line, each line followed by the newline token."""
    tokens: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        tokens += line.split()
        tokens.append(NEWLINE)
    while len(tokens) > 1 and tokens[-1] == NEWLINE and tokens[-2] == NEWLINE:
        tokens.pop()
    return tokens


@dataclass
class Vocabulary:
    """Token <-> id. Id 0 pads, id 1 stands for every word outside the vocabulary."""

    tokens: list[str]

    @classmethod
    def build(cls, texts: Iterable[list[str]], max_size: int, min_count: int = 1) -> "Vocabulary":
        """The ``max_size`` most frequent tokens (ties by first appearance), the two special ones included."""
        if max_size < 3:
            raise DataError(f"the vocabulary cap is {max_size}; expected at least 3 (padding, unknown and one word)")
        counts: Counter[str] = Counter()
        for tokens in texts:
            counts.update(tokens)
        common = [t for t, n in counts.most_common() if n >= min_count and t not in (PAD, UNKNOWN)]
        return cls([PAD, UNKNOWN, *common[: max_size - 2]])

    def __post_init__(self):
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str]) -> np.ndarray:
        unknown = self.index[UNKNOWN]
        return np.array([self.index.get(t, unknown) for t in tokens], dtype="int32")

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] for i in ids]

    def known_share(self, tokens: list[str]) -> float:
        return sum(t in self.index for t in tokens) / len(tokens) if tokens else 0.0


def detokenize(tokens: list[str]) -> str:
    """Words joined by spaces, newline tokens as line breaks."""
    lines, line = [], []
    for token in tokens:
        if token == NEWLINE:
            lines.append(" ".join(line))
            line = []
        else:
            line.append(token)
    if line:
        lines.append(" ".join(line))
    return "\n".join(lines)


def windows(songs: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of ``size`` ids within one song and the id that follows it."""
    xs, ys = [], []
    for ids in songs:
        if len(ids) <= size:
            continue
        view = np.lib.stride_tricks.sliding_window_view(ids, size + 1)
        xs.append(view[:, :size])
        ys.append(view[:, size])
    if not xs:
        return np.zeros((0, size), "int32"), np.zeros((0,), "int32")
    return np.concatenate(xs).astype("int32"), np.concatenate(ys).astype("int32")
