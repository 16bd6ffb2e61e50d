"""Exporters: TensorFlow.js and TFLite bundles, parity checks, deploy manifests, the runtime loader.

An exporter is a class registered through the ``register_exporters`` hook (the built-in
tfjs and tflite exporters register exactly like a third-party one would). Each turns the
experiment's export model into one or more *variants* (float32, float16, int8, ...);
:func:`tinkerflow.exporters.pipeline.export_run` checks every variant against Keras in the
real runtime before it replaces anything in ``<run>/export/``, then writes the deploy
bundle for apps (:mod:`.deploy`) from the TFLite variants that passed.
"""

from tinkerflow.core.exporter import ExportContext, Exporter, VariantResult

__all__ = ["ExportContext", "Exporter", "VariantResult"]
