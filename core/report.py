"""``tinkerflow report``: one table (terminal, Markdown, CSV) and plots for a multirun sweep.

Works while the sweep is still running: jobs without a finished ``run.json`` show as
``running`` or ``pending``, failed jobs as ``failed``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

from .errors import RunDirError
from .records import read_run_record
from .rundir import save_figure, write_atomic


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, item, out)
    else:
        out[prefix] = value


def job_dirs(sweep: Path) -> list[Path]:
    sweep = Path(sweep)
    if not sweep.is_dir():
        raise RunDirError(f"sweep directory '{sweep}' does not exist; expected runs/<experiment>/multirun/<timestamp>")
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if not jobs:
        raise RunDirError(f"'{sweep}' holds no job folders (0/, 1/, ...); expected a directory made by 'tinkerflow train -m'")
    return jobs


def collect(sweep: Path) -> tuple[list[dict], list[str]]:
    """One row per job and the config keys that vary between jobs (the swept values)."""
    rows, configs = [], []
    for job in job_dirs(sweep):
        try:
            info = read_run_record(job / "run.json")
        except RunDirError:
            info = {"status": "unreadable"}
        config: dict = {}
        _flatten("", info.get("config") or _saved_config(job), config)
        configs.append(config)
        status = info.get("status") or ("pending" if not (job / ".hydra").exists() else "running")
        rows.append({"job": int(job.name), "path": str(job), "status": status, "config": config,
                     "experiment": info.get("experiment"), "samples": info.get("samples") or {},
                     "metrics": info.get("metrics", {}), "epochs_run": info.get("epochs_run"),
                     "fit_s": (info.get("timings") or {}).get("fit_s"),
                     "error": (info.get("error") or {}).get("message")})
    known = [c for c in configs if c]  # a job that has not started has no config yet
    keys = sorted({k for c in known for k in c})
    swept = [k for k in keys if len({json.dumps(c.get(k), sort_keys=True) for c in known}) > 1
             and not k.startswith("paths.")]
    return rows, swept


def _saved_config(job: Path) -> dict:
    try:
        return yaml.safe_load((job / ".hydra" / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def table(rows: list[dict], swept: list[str]) -> tuple[list[str], list[list[str]]]:
    metric_keys = sorted({k for r in rows for k in r["metrics"]})
    header = ["job", *swept, "status", *metric_keys, "epochs", "fit s"]
    body = []
    for r in rows:
        values = [str(r["job"]), *(str(r["config"].get(k, "")) for k in swept), r["status"]]
        values += [f"{r['metrics'][k]:.6g}" if k in r["metrics"] else "" for k in metric_keys]
        values += [str(r["epochs_run"] or ""), f"{r['fit_s']:.1f}" if r["fit_s"] else ""]
        body.append(values)
    return header, body


def write_report(sweep: Path, registry=None) -> dict:
    """Write report.md, report.csv, val_loss.png and the experiment's own comparison figures
    (``Experiment.sweep_report``) into the sweep folder; return what was written."""
    sweep = Path(sweep)
    rows, swept = collect(sweep)
    header, body = table(rows, swept)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *body])
    write_atomic(sweep / "report.csv", buffer.getvalue())
    plot = _val_loss_plot(sweep, rows, swept)
    extra, warnings = _experiment_figures(sweep, rows, registry)
    figures = [*([plot] if plot else []), *extra]
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        md += ["", "Failed jobs:", *(f"- job {r['job']}: {r['error']}" for r in failed)]
    if figures:
        md += ["", "## Figures", "", *(f"![{name}]({name})" for name in figures)]
    write_atomic(sweep / "report.md", f"# Sweep {sweep.name}\n\n" + "\n".join(md) + "\n")
    return {"rows": rows, "swept": swept, "header": header, "body": body, "warnings": warnings,
            "files": ["report.md", "report.csv", *figures]}


def _experiment_figures(sweep: Path, rows: list[dict], registry) -> tuple[list[str], list[str]]:
    done = [r for r in rows if r["status"] == "completed"]
    names = {r["experiment"] for r in done}
    if registry is None or len(names) != 1:
        return [], []
    name = names.pop()
    try:
        files = registry.experiment(name).sweep_report(done, sweep)
        return [str(f) for f in files], []
    except Exception as exc:  # the table and the common plots are still worth having
        return [], [f"the {name} experiment's own figures failed: {type(exc).__name__}: {exc}"]


def _val_loss_plot(sweep: Path, rows: list[dict], swept: list[str]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    drawn = 0
    for r in rows:
        path = Path(r["path"]) / "metrics.csv"
        if not path.is_file():
            continue
        data = list(csv.DictReader(path.open()))
        if not data or "val_loss" not in data[0]:
            continue
        label = ", ".join(f"{k.split('.')[-1]}={r['config'].get(k)}" for k in swept) or f"job {r['job']}"
        ax.plot([int(d["epoch"]) for d in data], [float(d["val_loss"]) for d in data], lw=1, label=label)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation loss")
    ax.set_title(f"validation loss per epoch, sweep {sweep.name}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, sweep / "val_loss.png")
    plt.close(fig)
    return "val_loss.png"
