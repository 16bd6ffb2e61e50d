"""Writing lyrics with a trained model: a word at a time from a seed text."""

from __future__ import annotations

from typing import Callable

import numpy as np

from tinkerflow.core import DataError

from .tokens import NEWLINE, PAD, UNKNOWN, Vocabulary, tokenize


def prompt_ids(prompt: str, vocab: Vocabulary, window: int) -> np.ndarray:
    """The last ``window`` ids of the prompt, left-padded; unknown words become ``<unk>``.

    A prompt with no known word at all cannot steer the model and is refused.
    """
    tokens = [t for t in tokenize(prompt) if t != NEWLINE] if prompt.strip() else []
    if tokens and vocab.known_share(tokens) == 0.0:
        raise DataError(f"none of the prompt's words ({' '.join(tokens[:6])}) is in the model's "
                        f"{len(vocab):,}-word vocabulary; expected at least one known word")
    ids = vocab.encode(tokens)[-window:]
    return np.concatenate([np.zeros(window - len(ids), "int32"), ids]).astype("int32")


def choose(probabilities: np.ndarray, temperature: float, top_k: int, rng: np.random.Generator,
           banned: tuple[int, ...]) -> int:
    """Greedy when ``temperature`` is 0, otherwise a draw from the re-tempered top ``top_k``."""
    p = np.asarray(probabilities, dtype="float64").copy()
    p[list(banned)] = 0.0
    if temperature <= 0:
        return int(np.argmax(p))
    logits = np.log(np.maximum(p, 1e-12)) / temperature
    if 0 < top_k < len(logits):
        cutoff = np.partition(logits, -top_k)[-top_k]
        logits[logits < cutoff] = -np.inf
    logits[list(banned)] = -np.inf
    weights = np.exp(logits - logits.max())
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def generate(predict: Callable[[np.ndarray], np.ndarray], vocab: Vocabulary, prompt: str, words: int,
             window: int, temperature: float = 0.8, top_k: int = 0, seed: int = 0) -> list[str]:
    """``words`` new tokens after ``prompt``; ``predict`` maps a (1, window) id array to
    next-word probabilities. Padding and ``<unk>`` are never produced."""
    rng = np.random.default_rng(seed)
    context = prompt_ids(prompt, vocab, window)
    banned = (vocab.index[PAD], vocab.index[UNKNOWN])
    out: list[str] = []
    while len(out) < words:
        probabilities = np.asarray(predict(context[None, :])).reshape(-1)
        nxt = choose(probabilities, temperature, top_k, rng, banned)
        out.append(vocab.tokens[nxt])
        context = np.concatenate([context[1:], [nxt]]).astype("int32")
    return out


def distinct_2(tokens: list[str]) -> float:
    """Distinct word pairs / all word pairs (newlines left out): low when the text loops."""
    words = [t for t in tokens if t != NEWLINE]
    pairs = list(zip(words, words[1:]))
    return len(set(pairs)) / len(pairs) if pairs else 0.0


class Stepper:
    """``generate``'s ``predict(ids)`` from an exported stepper (``token``, ``state`` ->
    ``next_word``, ``next_state``): when ``ids`` is the last window shifted by one word, only
    that word is fed; any other window is read from a zero state, word by word.

    ``step`` maps named inputs to named outputs, as ``runtime.load(path).predict_named``.
    """

    def __init__(self, step: Callable[[dict], dict], state_shape: tuple[int, int]):
        self.step = step
        self.state_shape = tuple(state_shape)
        self.seen: np.ndarray | None = None
        self.state = np.zeros((1, *self.state_shape), "float32")
        self.steps = 0

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype="int32").reshape(-1)
        if self.seen is not None and np.array_equal(ids[:-1], self.seen[1:]):
            feed = ids[-1:]
        else:
            feed = ids
            self.state = np.zeros((1, *self.state_shape), "float32")
        for token in feed:
            out = self.step({"token": np.array([[token]], "int32"), "state": self.state})
            self.state = np.asarray(out["next_state"], dtype="float32")
            self.steps += 1
        self.seen = ids
        return np.asarray(out["next_word"])
