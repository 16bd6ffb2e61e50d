"""``tinkerflow report``: one table (terminal, Markdown, CSV) and plots for a multirun sweep,
or several sweeps side by side.

Works while the sweep is still running: jobs without a finished ``run.json`` show as
``running`` or ``pending``, failed jobs as ``failed``. When a sweep varies ``seed``, its
finished jobs are also summarised per cell (the other swept values) as mean ± standard
deviation over the seeds; a comparison of sweeps is made of those summaries.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from .errors import RunDirError
from .hydra_app import split_override
from .records import read_metrics_csv, read_run_record, read_saved_yaml
from .runfs import check_tree, guarded, make_folder, save_figure, write_atomic


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
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir() and p.name.isascii() and p.name.isdigit()),
                  key=lambda p: int(p.name))
    if not jobs:
        raise RunDirError(f"'{sweep}' holds no job folders (0/, 1/, ...); expected a directory made by 'tinkerflow "
                          "train -m'")
    return jobs


def collect(sweep: Path) -> tuple[list[dict], list[str]]:
    """One row per job and the config keys that vary between jobs (the swept values)."""
    rows, configs = [], []
    jobs = job_dirs(sweep)
    check_tree(sweep)
    for job in jobs:
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
        saved = read_saved_yaml(job / ".hydra" / "config.yaml")
    except RunDirError:
        return {}
    return saved if isinstance(saved, dict) else {}


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


def summarise(rows: list[dict], swept: list[str]) -> tuple[list[str], dict[tuple, list[dict]]]:
    """The completed jobs grouped by their swept values other than ``seed``: the cell keys
    and, per cell (a tuple of the values as text), its jobs in job order."""
    keys = [k for k in swept if k != "seed"]
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["status"] == "completed":
            cells.setdefault(tuple(str(r["config"].get(k, "")) for k in keys), []).append(r)
    return keys, cells


def spread(values: list[float]) -> str:
    """``mean ± standard deviation`` (sample deviation; a single value stands alone)."""
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{np.mean(values):.4g} ± {np.std(values, ddof=1):.2g}"


def _metric_keys(rows: list[dict]) -> list[str]:
    return sorted({k for r in rows for k in r["metrics"]})


def summary_table(rows: list[dict], swept: list[str]) -> tuple[list[str], list[list[str]]]:
    """One row per cell: its swept values, the number of seeds, and every metric's spread."""
    keys, cells = summarise(rows, swept)
    metrics = _metric_keys(rows)
    body = [[*cell, str(len(jobs)), *(spread([j["metrics"][m] for j in jobs if m in j["metrics"]]) for m in metrics)]
            for cell, jobs in sorted(cells.items(), key=lambda kv: _order(kv[0]))]
    return [*keys, "seeds", *metrics], body


def _order(cell: tuple) -> tuple:
    """Cells in numeric order where the values are numbers (16 before 256)."""
    def key(value: str):
        try:
            return (0, float(value), "")
        except ValueError:
            return (1, 0.0, value)
    return tuple(key(v) for v in cell)


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body)]


def write_report(sweep: Path, registry=None) -> dict:
    """Write report.md, report.csv, val_loss.png and the experiment's own comparison figures
    (``Experiment.sweep_report``) into the sweep folder; return what was written."""
    sweep = Path(sweep)
    with guarded(sweep, check=False):
        return _write_report(sweep, registry)


def _write_report(sweep: Path, registry) -> dict:
    rows, swept = collect(sweep)
    header, body = table(rows, swept)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *body])
    write_atomic(sweep / "report.csv", buffer.getvalue())
    plot = _val_loss_plot(sweep, rows, swept)
    extra, warnings = _experiment_figures(sweep, rows, registry)
    figures = [*([plot] if plot else []), *extra]
    md = _markdown_table(header, body)
    summary = None
    if "seed" in swept:
        summary = summary_table(rows, swept)
        md += ["", "## Mean ± standard deviation over seeds", "", *_markdown_table(*summary)]
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        md += ["", "Failed jobs:", *(f"- job {r['job']}: {r['error']}" for r in failed)]
    if figures:
        md += ["", "## Figures", "", *(f"![{name}]({name})" for name in figures)]
    write_atomic(sweep / "report.md", f"# Sweep {sweep.name}\n\n" + "\n".join(md) + "\n")
    return {"rows": rows, "swept": swept, "header": header, "body": body, "summary": summary,
            "warnings": warnings, "files": ["report.md", "report.csv", *figures]}


def sweep_label(sweep: Path) -> str:
    """The preset a sweep was started with (``+sweep=NAME`` in its ``multirun.yaml``), else
    the sweep folder's name."""
    try:
        saved = read_saved_yaml(Path(sweep) / "multirun.yaml", "the multirun.yaml Hydra saves", resolved=False)
        task = saved["hydra"]["overrides"]["task"]
    except (RunDirError, KeyError, TypeError):
        return Path(sweep).name
    for override in task if isinstance(task, list) else []:
        name, value = split_override(str(override))
        if name == "sweep" and value:
            return value
    return Path(sweep).name


def _differences(sweeps: dict[str, tuple[list[dict], list[str]]]) -> list[tuple[str, list[str]]]:
    """Config values that are the same within each sweep but differ between them."""
    values: dict[str, list[set]] = {}
    for rows, swept in sweeps.values():
        configs = [r["config"] for r in rows if r["config"]]
        for key in {k for c in configs for k in c} - set(swept):
            values.setdefault(key, []).append({json.dumps(c.get(key)) for c in configs})
    out = []
    for key, seen in sorted(values.items()):
        if key.startswith(("paths.", "hydra.")) or len(seen) != len(sweeps) or any(len(s) != 1 for s in seen):
            continue
        shown = [json.loads(next(iter(s))) for s in seen]
        if len({json.dumps(v) for v in shown}) > 1:
            out.append((key, [str(v) for v in shown]))
    return out


def compare(sweep_dirs: list[Path], out: Path, registry=None, metrics: list[str] | None = None,
            labels: list[str] | None = None) -> dict:
    """Write ``report.md`` and ``report.csv`` into ``out``: one row per cell (the swept values
    other than ``seed``), for each metric a column per sweep (mean ± standard deviation over
    its seeds), the config values that tell the sweeps apart, and the experiment's own
    figures drawn from every sweep (``Experiment.sweep_report`` with ``run["sweep"]`` set).
    ``labels`` name the sweeps (default: :func:`sweep_label`)."""
    if len(sweep_dirs) < 2:
        raise RunDirError("a comparison needs two or more sweep directories")
    if labels and (len(labels) != len(sweep_dirs) or len(set(labels)) != len(labels)):
        raise RunDirError(f"--labels {','.join(labels)}: expected {len(sweep_dirs)} different names, one per sweep")
    sweeps: dict[str, tuple[list[dict], list[str]]] = {}
    for k, sweep in enumerate(sweep_dirs):
        label = labels[k] if labels else sweep_label(sweep)
        if label in sweeps:
            label = f"{label} ({Path(sweep).name})"
        sweeps[label] = collect(sweep)
    everything = [r for rows, _ in sweeps.values() for r in rows]
    common = set.intersection(*(set(_metric_keys(rows)) for rows, _ in sweeps.values()))
    if metrics:
        unknown = [m for m in metrics if m not in common]
        if unknown:
            raise RunDirError(f"--metrics {','.join(unknown)}: not measured by every sweep; expected some of "
                              f"{', '.join(sorted(common)) or '(none in common)'}")
    else:
        metrics = sorted(m for m in common if m.startswith("test_")) or sorted(common)
    keys = sorted({k for _, swept in sweeps.values() for k in swept if k != "seed"})
    summaries = {label: summarise(rows, [*keys, "seed"])[1] for label, (rows, _) in sweeps.items()}
    cells = sorted({cell for cells in summaries.values() for cell in cells}, key=_order)
    header = [*keys, *(f"{label}: seeds" for label in sweeps),
              *(f"{label}: {metric}" for metric in metrics for label in sweeps)]
    body = []
    for cell in cells:
        jobs = {label: summaries[label].get(cell, []) for label in sweeps}
        body.append([*cell, *(str(len(jobs[label])) for label in sweeps),
                     *(spread([j["metrics"][m] for j in jobs[label] if m in j["metrics"]])
                       for m in metrics for label in sweeps)])
    out = Path(out)
    make_folder(out)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *body])
    write_atomic(out / "report.csv", buffer.getvalue())
    differences = _differences(sweeps)
    runs = [{**r, "sweep": label} for label, (rows, _) in sweeps.items() for r in rows if r["status"] == "completed"]
    figures, warnings = _experiment_figures(out, runs, registry)
    md = [f"# {' vs '.join(sweeps)}", "", *(f"- **{label}**: `{path}`" for label, path in zip(sweeps, sweep_dirs)), "",
          "Each cell: mean ± standard deviation over the seeds of the finished jobs.", "",
          *_markdown_table(header, body)]
    if differences:
        md += ["", "## What differs between the sweeps", "",
               *_markdown_table(["setting", *sweeps], [[key, *values] for key, values in differences])]
    if figures:
        md += ["", "## Figures", "", *(f"![{name}]({name})" for name in figures)]
    write_atomic(out / "report.md", "\n".join(md) + "\n")
    return {"labels": list(sweeps), "header": header, "body": body, "differences": differences,
            "warnings": warnings, "files": ["report.md", "report.csv", *figures], "rows": everything}


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
        data = read_metrics_csv(Path(r["path"]) / "metrics.csv")
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
