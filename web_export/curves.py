"""Training curves as inline SVG, drawn at build time (no chart library in the page)."""

from __future__ import annotations

import math
from pathlib import Path

from tinkerflow.core.records import read_metrics_csv

from .html import esc

COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777"]


def read_metrics(path: Path) -> dict[str, list[float]]:
    """Columns of metrics.csv as floats (no file: no curves; a broken one is a one-line
    error, :func:`~tinkerflow.core.records.read_metrics_csv`)."""
    columns: dict[str, list[float]] = {}
    for row in read_metrics_csv(path):
        for key, value in row.items():
            columns.setdefault(key, []).append(float(value))
    return columns


def chart(columns: dict[str, list[float]], keys: list[str], title: str, log: bool = False,
          width: int = 560, height: int = 240) -> str:
    """One line chart of ``keys`` against epoch."""
    series = [(k, columns[k]) for k in keys if k in columns and any(math.isfinite(v) for v in columns[k])]
    if not series:
        return ""
    epochs = columns.get("epoch") or list(range(1, len(series[0][1]) + 1))

    def tr(v: float) -> float:
        return math.log10(v) if log and v > 0 else (v if not log else math.nan)

    values = [tr(v) for _, vs in series for v in vs if math.isfinite(tr(v))]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    left, right, top, bottom = 56, 12, 28, 30
    w, h = width - left - right, height - top - bottom
    x0, x1 = epochs[0], epochs[-1] if epochs[-1] > epochs[0] else epochs[0] + 1

    def px(e: float, v: float) -> str:
        return f"{left + (e - x0) / (x1 - x0) * w:.1f},{top + (1 - (tr(v) - lo) / (hi - lo)) * h:.1f}"

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">',
             f'<text x="{left}" y="16" class="chart-title">{esc(title)}{" (log scale)" if log else ""}</text>',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>']
    for frac in (0.0, 0.5, 1.0):
        v = lo + frac * (hi - lo)
        label = f"{10 ** v:.3g}" if log else f"{v:.3g}"
        y = top + (1 - frac) * h
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{esc(label)}</text>')
    parts.append(f'<text x="{left}" y="{height - 8}" class="tick">epoch {int(x0)}</text>')
    parts.append(f'<text x="{left + w}" y="{height - 8}" text-anchor="end" class="tick">{int(x1)}</text>')
    for i, (key, vs) in enumerate(series):
        points = " ".join(px(e, v) for e, v in zip(epochs, vs) if math.isfinite(tr(v)))
        color = COLORS[i % len(COLORS)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>')
        parts.append(f'<text x="{left + 8 + 150 * i}" y="{top + 14}" fill="{color}" class="legend">{esc(key)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def training_charts(metrics_csv: Path) -> str:
    """Loss curves (log scale) and, when present, the other metrics, for a model page."""
    columns = read_metrics(metrics_csv)
    if not columns:
        return "<p>No metrics.csv in this run.</p>"
    charts = [chart(columns, ["loss", "val_loss"], "loss", log=True)]
    others = sorted({k.removeprefix("val_") for k in columns} - {"epoch", "loss", "seconds", "learning_rate"})
    for name in others:
        charts.append(chart(columns, [name, f"val_{name}"], name))
    return "".join(c for c in charts if c)
