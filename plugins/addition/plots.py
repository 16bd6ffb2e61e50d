"""The addition experiment's figures, drawn with matplotlib (Agg, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def error_surface(path: Path, axis: np.ndarray, surface: np.ndarray, title: str) -> None:
    """|prediction - (a + b)| over the (a, b) grid as a heat map; white contour at 0.5."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    mesh = ax.pcolormesh(axis, axis, surface.T, shading="nearest", cmap="magma")
    if surface.min() < 0.5 < surface.max():
        ax.contour(axis, axis, surface.T, levels=[0.5], colors="white", linewidths=0.8)
    fig.colorbar(mesh, ax=ax, label="|prediction - true sum|")
    ax.set_xlabel("a")
    ax.set_ylabel("b")
    ax.set_title(f"error surface, {title}\n(white line: error 0.5, inside it the rounded answer is right)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def cross_section(path: Path, a_values: np.ndarray, errors: np.ndarray, total: int) -> None:
    """Signed error along a + b = total."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(a_values, errors, lw=1.5)
    ax.axhspan(-0.5, 0.5, color="tab:green", alpha=0.15, label="rounds to the right sum")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_xlabel(f"a   (b = {total} - a)")
    ax.set_ylabel("prediction - true sum")
    ax.set_title(f"cross-section along a + b = {total}")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def inner_workings(path: Path, weights: np.ndarray, activations: np.ndarray, bias: float, scale: float = 1.0) -> None:
    """Hidden-to-output weights and the hidden activations for 2 + 2, side by side."""
    plt = _pyplot()
    units = np.arange(len(weights))
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5), dpi=100)
    left.bar(units, weights, color=["tab:red" if w < 0 else "tab:blue" for w in weights])
    note = f"; the sum is this output x {scale:g}" if scale != 1.0 else ""
    left.set_title(f"hidden-to-output weights (bias {bias:.3g}{note})", fontsize=9)
    left.set_xlabel("hidden unit")
    right.bar(units, activations, color="tab:gray")
    right.set_title("hidden activations for 2 + 2", fontsize=9)
    right.set_xlabel("hidden unit")
    for ax in (left, right):
        ax.set_xticks(units)
        ax.axhline(0, color="black", lw=0.5)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
