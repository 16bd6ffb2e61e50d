"""Exporters: TensorFlow.js and TFLite bundles, parity checks, the runtime loader (issue 3)."""
