"""Readers for the JSON records tinkerflow writes into run folders and sites.

A run folder may come from elsewhere — a colleague's zip, a download, a cluster — so every
record read back is data to be checked, never trusted: each kind of file has one reader
here that caps its size, parses it, and validates its shape with a pydantic model. A file
that is too big, not JSON, or of the wrong shape is one :class:`~.errors.RunDirError` line
naming the file and the field. Fields a reader does not name are kept as they are (the
records grow), but the fields the project uses have their types checked.

=============== ======================= =====================================
file            written by              reader
=============== ======================= =====================================
run.json        tinkerflow train        :func:`read_run_record`
export.json     tinkerflow export       :func:`read_export_record`
bench.json      tinkerflow bench        :func:`read_bench_record`
manifest.json   tinkerflow export       :func:`read_manifest`
site.json       tinkerflow web          :func:`read_site_record`
state.json      resume checkpoints      :func:`read_checkpoint_state`
learned.json    tinkerflow train        :func:`tinkerflow.core.learned.read`
film.json ...   experiments             :func:`read_record` with a model here
metrics.csv     tinkerflow train        :func:`read_metrics_csv`
.hydra/*.yaml   Hydra                   :func:`read_saved_yaml`
multirun.yaml   Hydra (a sweep)         :func:`read_saved_yaml`
=============== ======================= =====================================

Every value read back from a run folder that OmegaConf or Hydra could interpolate is
checked by :func:`refuse_interpolations` on the parsed value, whatever its encoding in the
file (YAML escapes, quotes, keys, nested resolver names).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import RunDirError

#: the largest record read back; a real one is a few KB (state.json: a few hundred KB)
MAX_BYTES = 16 * 1024 * 1024
#: the largest saved config read back (Hydra's hydra.yaml is about 10 KB)
YAML_MAX_BYTES = 1024 * 1024
#: the largest metrics.csv read back (100,000 epochs of ten metrics is about 10 MB)
CSV_MAX_BYTES = 32 * 1024 * 1024
#: the longest field of a metrics.csv (a column name or a number)
CSV_MAX_FIELD = 256


class Record(BaseModel):
    """A record's known fields, type-checked; unknown fields are kept as they are."""

    model_config = ConfigDict(extra="allow", strict=True)


class ErrorInfo(Record):
    stage: str | None = None
    type: str | None = None
    message: str | None = None
    traceback: str | None = None


class RunConfig(Record):
    """The composed config a run records (its sections that pages and reports read)."""

    experiment: dict[str, Any] = Field(default_factory=dict)
    trainer: dict[str, Any] = Field(default_factory=dict)


class RunRecord(Record):
    """``run.json``: what a run is and how it ended."""

    experiment: str | None = None
    status: str | None = None
    overrides: list[str] = Field(default_factory=list)
    seed: int | None = None
    config: RunConfig = Field(default_factory=RunConfig)
    metrics: dict[str, float] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    samples: dict[str, Any] = Field(default_factory=dict)
    resumes: list[dict[str, Any]] = Field(default_factory=list)
    error: ErrorInfo | None = None
    epochs_run: int | None = None
    #: what each tracker keeps of the run (its run id, a problem it met): tracker -> fields
    tracking: dict[str, dict[str, Any]] = Field(default_factory=dict)


class FileEntry(Record):
    path: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class MetricEntry(Record):
    name: str
    keras: float
    exported: float
    higher_is_better: bool = True


class VariantRecord(Record):
    status: str
    error: str | None = None
    files: list[FileEntry] = Field(default_factory=list)
    parity: dict[str, float] = Field(default_factory=dict)
    metric: MetricEntry | None = None
    manifest: str | None = None


class FormatRecord(Record):
    status: str | None = None
    variants: dict[str, VariantRecord] = Field(default_factory=dict)


class ExportRecord(Record):
    """``export.json``: every exported format and variant, with its files and checks."""

    run: str | None = None
    experiment: str | None = None
    formats: dict[str, FormatRecord] = Field(default_factory=dict)


class BenchRow(Record):
    name: str
    variant: str
    single_s: float
    batch_s: float | None = None
    throughput_per_s: float | None = None


class BrowserRow(Record):
    where: str
    runtime: str
    variant: str
    threads: int = 1
    warm_ms: float | None = None


class PhoneRow(Record):
    """One runtime's page on the phone profile (390×844 touch screen, CPU slowed 4×)."""

    runtime: str
    variant: str
    cpu_slowdown: float = 4
    first_result_ms: float | None = None
    return_first_result_ms: float | None = None
    warm_ms: float | None = None
    bytes: int | None = None
    gzip_bytes: int | None = None


class BrowserBench(Record):
    """The ``browser`` part of ``bench.json`` (``tinkerflow bench RUN --browser``)."""

    batch: int
    rows: list[BrowserRow] = Field(default_factory=list)
    phone: list[PhoneRow] = Field(default_factory=list)
    ratios: dict[str, float] = Field(default_factory=dict)


class BenchRecord(Record):
    """``bench.json``: inference timings per runtime and variant."""

    batch: int
    rows: list[BenchRow] = Field(default_factory=list)
    ratios: dict[str, float] = Field(default_factory=dict)
    browser: BrowserBench | None = None


class Quantization(Record):
    """How an integer tensor stands for real numbers: ``real = (stored - zero_point) * scale``."""

    scale: float = Field(gt=0)
    zero_point: int


class TensorEntry(Record):
    name: str
    shape: list[int | None]
    dtype: str
    quantization: Quantization | None = None


PLAIN_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"
PlainName = Annotated[str, Field(pattern=PLAIN_NAME, max_length=255)]


class Manifest(Record):
    """``manifest.json`` of an export variant: what a page or an app needs to use it. Every
    file it names is a plain name inside the variant's own folder."""

    tinkerflow_manifest: int
    experiment: str
    format: str
    variant: str
    file: PlainName
    files: list[FileEntry]
    inputs: list[TensorEntry] = Field(default_factory=list)
    outputs: list[TensorEntry] = Field(default_factory=list)


class WeightGroup(Record):
    paths: list[PlainName]


class TfjsModelJson(Record):
    """A tfjs graph model's ``model.json``: its weight files are plain names inside the
    variant's folder (tfjs opens them relative to it, in Node and in a page)."""

    modelTopology: dict[str, Any]
    weightsManifest: list[WeightGroup]
    signature: dict[str, Any] = Field(default_factory=dict)


class SiteRuntime(Record):
    name: str = Field(pattern=PLAIN_NAME)
    folder: str = Field(pattern=PLAIN_NAME)
    default_variant: str = Field(pattern=PLAIN_NAME)


class SitePage(Record):
    slug: str = Field(pattern=PLAIN_NAME)
    experiment: str
    run: str
    runtimes: list[SiteRuntime] = Field(default_factory=list)


class SiteRecord(Record):
    """``site.json``: the pages of a built site (what a widget may use from the others)."""

    pages: list[SitePage]


class CheckpointState(Record):
    """``checkpoints/state.json``: where a killed run continues from."""

    epoch: int = Field(ge=0)
    weights: str
    best_weights: str | None = None
    stopped: bool = False
    history: dict[str, list[float]] = Field(default_factory=dict)
    callbacks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    rng: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


class FilmRecord(Record):
    """The dcgan film's ``film.json``: the diversity score of every epoch's grid."""

    diversity: list[float]


R = TypeVar("R", bound=Record)


def load_json(path: Path, expected: str, max_bytes: int = MAX_BYTES) -> Any:
    """The JSON value in ``path``: a one-line error when it is not a regular file, is larger
    than ``max_bytes``, or is not JSON; ``expected`` says what should have been there."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise RunDirError(f"{path} is not a regular file; expected {expected}")
        if size > max_bytes:
            raise RunDirError(f"{path} is {size:,} bytes, more than the {max_bytes:,} a record may have; expected "
                              f"{expected}")
        with path.open("rb") as handle:
            text = handle.read(max_bytes + 1)
        return json.loads(text)
    except RunDirError:
        raise
    except (OSError, ValueError, RecursionError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RunDirError(f"{path}: cannot read it ({' '.join(detail.split())[:160]}); expected {expected}") from exc


def validate(path: Path, value: Any, model: type[R], expected: str) -> R:
    """``value`` checked against ``model``; a one-line error names the first wrong field."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        got = first.get("input")
        shown = type(got).__name__ if isinstance(got, (dict, list)) else repr(got)[:60]
        raise RunDirError(f"{path}: field '{where}': {first['msg'].lower()} (got {shown}); "
                          f"expected {expected}") from None


def read_record(path: Path, model: type[R], expected: str, missing_ok: bool = False) -> R | None:
    """Read and validate one record; ``missing_ok``: None when the file does not exist."""
    path = Path(path)
    if missing_ok and not path.exists() and not path.is_symlink():
        return None
    return validate(path, load_json(path, expected), model, expected)


def as_dict(record: Record) -> dict:
    """A validated record as the plain dict the rest of the project passes around."""
    return record.model_dump(mode="python", exclude_unset=True)


def read_run_record(path: Path) -> dict:
    """``run.json`` as a dict (``{}`` when there is none yet)."""
    record = read_record(path, RunRecord, "the run.json 'tinkerflow train' writes", missing_ok=True)
    return as_dict(record) if record is not None else {}


def read_export_record(path: Path, missing_ok: bool = True) -> dict:
    """``export.json`` as a dict (``{}`` when the run was never exported)."""
    record = read_record(path, ExportRecord, "the export.json 'tinkerflow export' writes", missing_ok=missing_ok)
    return as_dict(record) if record is not None else {}


def read_bench_record(path: Path) -> dict:
    """``bench.json`` as a dict (``{}`` when the run was never benchmarked)."""
    record = read_record(path, BenchRecord, "the bench.json 'tinkerflow bench' writes", missing_ok=True)
    return as_dict(record) if record is not None else {}


def read_manifest(path: Path) -> dict:
    """A variant's ``manifest.json`` as a dict."""
    return as_dict(read_record(path, Manifest, "the manifest.json 'tinkerflow export' writes"))


def read_tfjs_model_json(path: Path) -> dict:
    """A tfjs variant's ``model.json`` as a dict, each weight file checked to be a plain name
    of a regular file beside it (before any runtime opens one)."""
    path = Path(path)
    model = as_dict(read_record(path, TfjsModelJson, "the model.json the tfjs converter writes"))
    for group in model["weightsManifest"]:
        for name in group["paths"]:
            weights = path.parent / name
            if weights.is_symlink() or not weights.is_file():
                raise RunDirError(f"{path} names the weights '{name}', which is not a regular file in {path.parent}; "
                                  "expected the converter's own files")
    return model


def read_site_record(path: Path) -> dict:
    """A site's ``site.json`` as a dict."""
    return as_dict(read_record(path, SiteRecord, "the site.json 'tinkerflow web' writes"))


def read_checkpoint_state(path: Path) -> CheckpointState | None:
    """A resume checkpoint's ``state.json`` (None when there is none)."""
    return read_record(path, CheckpointState, "the checkpoint state a run writes", missing_ok=True)


#: ``${a.b}``, ``${..a}``: a reference to another config value, the one interpolation replayed
_PLAIN_REFERENCE = re.compile(r"\$\{[\w.\-]+\}")


def interpolation_in(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first key or string inside ``value`` (dicts, lists, tuples, and sweep objects
    with a ``list``) that OmegaConf would resolve other than as a plain ``${a.b}``
    reference, as ``(where, text)``; None when there is none.

    The check is on parsed values, so every spelling a file format allows for ``$`` and
    ``{`` (YAML escapes, quoted or plain scalars, anchors) is seen as OmegaConf would see
    it. A resolver call (``${oc.env:X}``), one whose name is itself interpolated
    (``${oc.${a}:X}``), an escaped ``\\${...}`` (a live interpolation once resolved and
    composed again) and a ``${`` in a key are all found."""
    if isinstance(value, str):
        return (where, value) if "${" in _PLAIN_REFERENCE.sub("", value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and ("${" in key or "$" in key):
                return inner, key
            found = interpolation_in(item, inner)
            if found:
                return found
        return None
    items = value if isinstance(value, (list, tuple)) else getattr(value, "list", None)
    if isinstance(items, (list, tuple)):
        for index, item in enumerate(items):
            found = interpolation_in(item, f"{where}[{index}]")
            if found:
                return found
    return None


def refuse_interpolations(value: Any, source: Path | str, where: str = "") -> None:
    """Raise a one-line :class:`RunDirError` naming ``source`` and the key when
    :func:`interpolation_in` finds something in ``value``."""
    found = interpolation_in(value, where)
    if found:
        key, text = found
        raise RunDirError(f"{source}: {key or 'a value'} = {text[:80]!r} calls a resolver; expected the plain "
                          "values a run saves, with no interpolation but ${a.b} (a run folder is data, never code)")


def read_saved_yaml(path: Path | str, expected: str = "the YAML Hydra saves in a run", resolved: bool = True) -> Any:
    """A YAML file from a run folder (``.hydra/config.yaml``, ``multirun.yaml``) as plain data.

    Capped at :data:`YAML_MAX_BYTES`; UTF-8 only; anchors and aliases are refused (Hydra
    never writes them, and an alias bomb of a few hundred bytes expands to gigabytes);
    every interpolation but a plain reference is refused (:func:`refuse_interpolations`)
    unless ``resolved`` is false (a file whose values are only read as text, such as
    ``multirun.yaml``, which holds Hydra's own interpolations). Numbers are read as
    OmegaConf reads them (``1e-3`` is a float)."""
    text = _capped_text(path, YAML_MAX_BYTES, expected)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise RunDirError(f"{path}: it uses a YAML anchor or alias; expected {expected} (Hydra writes none)")
        loaded = OmegaConf.to_container(OmegaConf.create(text), resolve=False) if text.strip() else {}
    except (ValueError, RecursionError, yaml.YAMLError, OmegaConfBaseException) as exc:
        raise RunDirError(f"{path}: cannot read it ({' '.join(str(exc).split())[:160]}); expected {expected}") from exc
    if resolved:
        refuse_interpolations(loaded, path)
    return loaded


def _capped_text(path: Path | str, max_bytes: int, expected: str) -> str:
    """The UTF-8 text of the regular file ``path``, refused in one line above ``max_bytes``."""
    path = Path(path)
    try:
        if not path.is_file():
            raise RunDirError(f"{path} is not a regular file; expected {expected}")
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise RunDirError(f"{path} is more than {max_bytes:,} bytes; expected {expected}")
        return raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RunDirError(f"{path}: cannot read it ({' '.join(detail.split())[:160]}); expected {expected}") from exc


def read_metrics_csv(path: Path | str) -> list[dict[str, float]]:
    """``metrics.csv`` as one dict per epoch (``[]`` when there is none).

    Capped at :data:`CSV_MAX_BYTES` and :data:`CSV_MAX_FIELD` characters a field, UTF-8
    only; ``epoch`` must count 1, 2, 3 ...; every other field is a number (NaN and ±inf
    allowed: a loss can diverge) and no row is longer than the header. Anything else is a
    one-line :class:`RunDirError` naming the file, the row and the field."""
    path = Path(path)
    expected = "the metrics.csv 'tinkerflow train' writes"
    if not path.exists() and not path.is_symlink():
        return []
    text = _capped_text(path, CSV_MAX_BYTES, expected)
    try:
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise RunDirError(f"{path}: cannot read it ({' '.join(str(exc).split())[:160]}); expected {expected}") from exc
    if not lines:
        return []
    header, rows = lines[0], []
    if not header or header[0] != "epoch" or len(set(header)) != len(header):
        raise RunDirError(f"{path}: the header {','.join(header)[:80]!r} does not start with a unique 'epoch' "
                          f"column; expected {expected}")
    for number, fields in enumerate(lines[1:], start=2):
        where = f"{path}: row {number}"
        if len(fields) != len(header) or any(len(f) > CSV_MAX_FIELD for f in fields + header):
            raise RunDirError(f"{where} has {len(fields)} fields of up to {max(map(len, fields + header))} characters "
                              f"for {len(header)} columns; expected {expected}")
        try:
            values = [float(f) if f else math.nan for f in fields]
        except ValueError:
            bad = next(f for f in fields if not _is_number(f))
            raise RunDirError(f"{where}: {bad[:40]!r} is not a number; expected {expected}") from None
        if values[0] != len(rows) + 1:
            raise RunDirError(f"{where}: epoch {fields[0][:40]!r}; expected epoch {len(rows) + 1} ({expected})")
        rows.append(dict(zip(header, values)) | {"epoch": len(rows) + 1})
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
