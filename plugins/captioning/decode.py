"""Writing a caption with a step function: greedy, with temperature, or by beam search.

``step(tokens, state) -> (probabilities, state)`` advances a batch of captions by one token:
``tokens`` is ``(b,)`` ids, ``state`` whatever the decoder carries (an array with the batch
first), ``probabilities`` ``(b, vocab)``. Decoding starts from ``start`` and stops at ``end``
or after ``max_length`` tokens.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

Step = Callable[[np.ndarray, Any], tuple[np.ndarray, Any]]


def sample(step: Step, state: Any, start: int, end: int, max_length: int, temperature: float = 0.0,
           seed: int = 0, banned: tuple[int, ...] = ()) -> list[int]:
    """One caption: the likeliest token each time (``temperature`` 0) or a draw from the
    re-tempered distribution."""
    rng = np.random.default_rng(seed)
    token, out = start, []
    for _ in range(max_length):
        p, state = step(np.array([token]), state)
        p = np.asarray(p, "float64")[0].copy()
        p[list(banned)] = 0.0
        if temperature <= 0:
            token = int(np.argmax(p))
        else:
            logits = np.log(np.maximum(p, 1e-12)) / temperature
            weights = np.exp(logits - logits.max())
            weights[list(banned)] = 0.0
            token = int(rng.choice(len(weights), p=weights / weights.sum()))
        if token == end:
            break
        out.append(token)
    return out


def beam_search(step: Step, state: Any, start: int, end: int, max_length: int, width: int = 3,
                banned: tuple[int, ...] = (), length_penalty: float = 0.7) -> list[tuple[list[int], float]]:
    """The ``width`` best captions that end (with ``end``) within ``max_length`` tokens, with
    their scores (sum of log-probabilities divided by length ** ``length_penalty``), best
    first; captions cut at ``max_length`` only when none ends. The state's first axis is
    the beam."""
    state = _repeat(state, 1)
    beams: list[tuple[list[int], float]] = [([], 0.0)]
    finished: list[tuple[list[int], float]] = []
    for _ in range(max_length):
        last = np.array([b[-1] if b else start for b, _ in beams])
        p, state = step(last, state)
        logp = np.log(np.maximum(np.asarray(p, "float64"), 1e-12))
        logp[:, list(banned)] = -np.inf
        candidates = []
        for i, (_, score) in enumerate(beams):
            for token in np.argsort(-logp[i])[:width]:
                candidates.append((score + logp[i, token], i, int(token)))
        candidates.sort(key=lambda c: -c[0])
        kept, rows = [], []
        for score, i, token in candidates:
            if token == end:
                finished.append((beams[i][0], score))
            else:
                kept.append((beams[i][0] + [token], score))
                rows.append(i)
            if len(kept) == width:
                break
        beams = kept
        if not kept:
            break
        best = max((s / max(1, len(t)) ** length_penalty for t, s in finished), default=-np.inf)
        if len(finished) >= width and best >= kept[0][1] / max_length ** length_penalty:
            break  # no open caption can still win: its sum only falls, its length is at most max_length
        state = _take(state, rows)
    finished = finished or beams  # captions cut at max_length only when none ended
    ranked = sorted(finished, key=lambda b: -b[1] / max(1, len(b[0])) ** length_penalty)
    return [(tokens, score / max(1, len(tokens)) ** length_penalty) for tokens, score in ranked[:width]]


def _repeat(state, n):
    return state if n == 1 else [np.repeat(s, n, axis=0) for s in state]


def _take(state, rows):
    if isinstance(state, (list, tuple)):
        return [np.asarray(s)[rows] for s in state]
    return np.asarray(state)[rows]
