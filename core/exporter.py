"""The Exporter contract, beside the Experiment contract: what an export format implements.

An exporter is one file format. The export pipeline (:mod:`tinkerflow.exporters.pipeline`) asks it to write each
variant, loads what it wrote in the real runtime, and gates it; everything format-specific
goes through the methods below, so a new format (built in, or a plugin's
``register_exporters``) touches no code outside its own class:

- :meth:`Exporter.convert` writes a variant; :meth:`Exporter.load` runs it;
- :meth:`Exporter.manifest_fields` adds what a runtime needs to the deploy manifest;
- :attr:`Exporter.page_runtime`, :meth:`Exporter.page_check` and
  :meth:`Exporter.page_assets` make the format usable in the generated web pages, and
  :meth:`Exporter.extra_page_runtimes` names other runtimes that also run it for some
  experiments (MediaPipe Tasks for an image classifier's .tflite).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass
class ExportContext:
    """What an exporter gets: the model to convert and what the experiment says about it."""

    model: Any                        # the keras.Model the experiment chose to export
    experiment: Any                   # the Experiment instance (for representative data etc.)
    input_names: list[str]
    output_names: list[str]
    work_dir: Path                    # scratch space, removed after the export
    inference_batch: int = 1          # the experiment's fixed batch for deployed files
    intermediate_layers: list[str] = field(default_factory=list)  # layers a page also shows
    #: name, description, version and author of the model, for files that carry metadata
    about: dict = field(default_factory=dict)
    #: the export must run each variant in the frameworks apps use (see Exporter.consumer_check)
    require_consumers: bool = False
    #: files written once per export and shared by the variants (see
    #: :func:`tinkerflow.exporters.savedmodel.saved_model`), by key
    cache: dict = field(default_factory=dict, repr=False)


@dataclass
class VariantResult:
    """What one exported variant is: its files (relative to its folder) and how to run it."""

    variant: str
    files: list[str]
    quantized: bool
    notes: dict = field(default_factory=dict)


class Exporter:
    """One export format.

    Class attributes: ``name`` (the format name used by ``--format``), ``variants`` (all
    variants it can write, the first is the reference float one), ``default_variants``,
    ``tolerances`` (the parity gate of float variants), ``page_runtime``.
    """

    name: ClassVar[str]
    variants: ClassVar[tuple[str, ...]] = ("float32",)
    default_variants: ClassVar[tuple[str, ...]] = ("float32",)
    description: ClassVar[str] = ""
    #: maximum |exported - keras| allowed for a variant, relative to the output's scale
    tolerances: ClassVar[dict[str, float]] = {}
    #: the JavaScript runtime that runs this format in a web page, as (name, label): the
    #: name goes into page URLs (``?runtime=NAME``), the label is shown; None: no page runs it
    page_runtime: ClassVar[tuple[str, str] | None] = None

    def convert(self, context: ExportContext, variant: str, out_dir: Path) -> VariantResult:
        """Write the ``variant`` bundle into ``out_dir`` (a fresh, empty folder)."""
        raise NotImplementedError

    def load(self, bundle_dir: Path, result: VariantResult) -> Any:
        """The written bundle loaded in its real runtime: an object with ``predict_named(inputs)``
        (named inputs -> named outputs) and ``close()``."""
        raise NotImplementedError

    def converter_versions(self) -> dict[str, str]:
        return {}

    @classmethod
    def unavailable(cls) -> str | None:
        """What this format needs that is not installed, as one line that says how to install
        it, or None. Checked before training, so that ``export=...`` never trains in vain."""
        return None

    def unsupported(self, variant: str, experiment: Any) -> str | None:
        """Why ``variant`` does not apply to ``experiment`` (one line), or None. A variant
        that does not apply is left out of a default export and refused when asked for."""
        return None

    def consumer_check(self, context: ExportContext, result: VariantResult, folder: Path,
                       golden: dict, reference: dict, exported: dict) -> dict | None:
        """Run the variant in ``folder`` in the frameworks apps load it with (beyond
        :meth:`load`'s runtime) on the ``golden`` inputs, against Keras' ``reference``
        outputs and the runtime's ``exported`` ones: a record for ``export.json``, with ``error``
        when the gate must fail; None
        when no such framework applies. Where the framework is not installed the record
        says so, and it is an error when ``context.require_consumers``."""
        return None

    def manifest_fields(self, context: ExportContext, result: VariantResult, folder: Path) -> dict:
        """What this format adds to the variant's deploy manifest, given the folder it wrote:
        at least ``file``, the file a runtime opens. It may replace ``inputs`` and
        ``outputs`` (lists of ``{name, shape, dtype}``) with what the written file declares."""
        return {"file": result.files[0]}

    def page_check(self, manifest: dict) -> str | None:
        """Why :attr:`page_runtime` cannot run the variant ``manifest`` describes (one line,
        recorded in ``export.json``; the page then offers only the other runtimes), or None."""
        return None

    def extra_page_runtimes(self, experiment: Any) -> list[tuple[str, str]]:
        """Runtimes besides :attr:`page_runtime` that run this format's files in the pages
        of ``experiment``, as ``(name, label)``; :meth:`page_assets` writes their assets."""
        return []

    def page_assets(self, folder: Path, modules: Path, runtime: str | None = None) -> str:
        """Write what a page needs to run this format with ``runtime`` (None: the
        :attr:`page_runtime`) into ``folder`` (the site's
        ``assets/<runtime name>/``), from the pinned npm packages in ``modules``, and return
        the file name of the ES module there. The module exports ``option`` (the page's menu
        for the runtime: ``{key, label, values}``, its value reaching ``open`` as
        ``options[key]`` and kept in the URL), ``supported()`` (can this browser run it) and
        ``async open(base, manifest, options)`` resolving to ``{backend, run(feeds, extra),
        dispose()}``: ``base`` is the variant folder's URL, ``feeds`` maps input names to
        ``{data, shape}``, ``run`` resolves to ``{name: {data, shape}}`` for every output and
        for the ``extra`` layers the model can also return."""
        raise NotImplementedError(f"{type(self).__name__} has no page runtime")
