"""The addition experiment's figures, drawn with matplotlib (Agg, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tinkerflow.core.runfs import save_figure


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
    save_figure(fig, path)
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
    save_figure(fig, path)
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
    save_figure(fig, path)
    plt.close(fig)


def _label(network: dict) -> str:
    sweep = f"{network['sweep']}: " if network.get("sweep") else ""
    return f"{sweep}hidden {network['hidden']}, max_sum {network['max_sum']}"


def _grid(networks: list[dict], width: float, height: float):
    """Rows by max_sum (and sweep, when networks come from several) and columns by hidden
    units when that places every network once, otherwise a plain grid in order."""
    plt = _pyplot()
    sums = sorted({(n["max_sum"], n.get("sweep", "")) for n in networks})
    hiddens = sorted({n["hidden"] for n in networks})
    if len({(n["max_sum"], n.get("sweep", ""), n["hidden"]) for n in networks}) == len(networks):
        places = {id(n): (sums.index((n["max_sum"], n.get("sweep", ""))), hiddens.index(n["hidden"]))
                  for n in networks}
        rows, cols = len(sums), len(hiddens)
    else:
        cols = int(np.ceil(np.sqrt(len(networks))))
        rows = int(np.ceil(len(networks) / cols))
        places = {id(n): divmod(i, cols) for i, n in enumerate(networks)}
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=80, squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    return plt, fig, [(n, axes[places[id(n)]]) for n in networks]


def surface_grid(path: Path, networks: list[dict]) -> None:
    """Every network's error surface, each with its own colour scale."""
    plt, fig, placed = _grid(networks, 3.2, 2.8)
    for network, ax in placed:
        ax.set_visible(True)
        axis, surface = network["axis"], network["surface"]
        mesh = ax.pcolormesh(axis, axis, surface.T, shading="nearest", cmap="magma")
        if surface.min() < 0.5 < surface.max():
            ax.contour(axis, axis, surface.T, levels=[0.5], colors="white", linewidths=0.6)
        fig.colorbar(mesh, ax=ax)
        ax.set_title(_label(network), fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle("|prediction - (a + b)| over (a, b); white line: error 0.5", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def cross_sections(path: Path, networks: list[dict]) -> None:
    """Signed error along a + b = constant: one panel per max_sum, one line per network."""
    plt = _pyplot()
    sums = sorted({n["max_sum"] for n in networks})
    fig, axes = plt.subplots(1, len(sums), figsize=(5 * len(sums), 3.6), dpi=80, squeeze=False)
    for ax, total in zip(axes[0], sums):
        for network in (n for n in networks if n["max_sum"] == total):
            sweep = f"{network['sweep']}: " if network.get("sweep") else ""
            ax.plot(network["a_values"], network["section"], lw=1.2, label=f"{sweep}hidden {network['hidden']}",
                    ls="--" if sweep and sweep != f"{networks[0].get('sweep')}: " else "-")
        cross = int(next(n["cross"] for n in networks if n["max_sum"] == total))
        ax.axhspan(-0.5, 0.5, color="tab:green", alpha=0.15)
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(f"max_sum {total}: a + b = {cross}", fontsize=9)
        ax.set_xlabel(f"a   (b = {cross} - a)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("prediction - true sum (green: rounds right)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def weights_grid(path: Path, networks: list[dict]) -> None:
    """Every network's hidden-to-output weights (red: negative)."""
    plt, fig, placed = _grid(networks, 2.8, 2.2)
    for network, ax in placed:
        ax.set_visible(True)
        weights = network["weights"]
        units = np.arange(len(weights))
        ax.bar(units, weights, color=["tab:red" if w < 0 else "tab:blue" for w in weights])
        ax.axhline(0, color="black", lw=0.5)
        ax.set_title(f"{_label(network)}\nbias {float(np.ravel(network['bias'])[0]):.3g}", fontsize=7)
        ax.set_xticks(units if len(units) <= 8 else units[::2])
        ax.tick_params(labelsize=6)
    fig.suptitle("hidden-to-output weights per network", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
