"""The Exporter contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass
class ExportContext:
    """What an exporter gets: the model to convert and what the experiment says about it."""

    model: Any                        # the keras.Model the experiment chose to export
    experiment: Any                   # the Experiment instance (for representative data etc.)
    saved_model_dir: Path             # the model as a TF SavedModel with named signature
    input_names: list[str]
    output_names: list[str]
    work_dir: Path                    # scratch space, removed after the export


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
    variants it can write, the first is the reference float one), ``default_variants``.
    """

    name: ClassVar[str]
    variants: ClassVar[tuple[str, ...]] = ("float32",)
    default_variants: ClassVar[tuple[str, ...]] = ("float32",)
    description: ClassVar[str] = ""
    #: maximum |exported - keras| allowed for a variant, relative to the output's scale
    tolerances: ClassVar[dict[str, float]] = {}

    def convert(self, context: ExportContext, variant: str, out_dir: Path) -> VariantResult:
        """Write the ``variant`` bundle into ``out_dir`` (a fresh, empty folder)."""
        raise NotImplementedError

    def load(self, bundle_dir: Path, result: VariantResult) -> Any:
        """The written bundle loaded in its real runtime: an object with ``predict_named(inputs)``
        (named inputs -> named outputs) and ``close()``."""
        raise NotImplementedError

    def converter_versions(self) -> dict[str, str]:
        return {}
