"""Import TensorFlow and Keras without the start-up noise of TensorFlow's C++ libraries.

On a CPU-only machine TensorFlow prints a dozen lines about CUDA factories, the XLA
computation placer and CPU instructions before its own log level applies. They are
harmless and hide the messages a user needs, so the import runs with the process's
stderr captured; lines that are not known noise are written back.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from contextlib import contextmanager

_NOISE = re.compile(
    r"cuda_dnn|cuda_blas|cuda_fft|cuda_platform|computation_placer|absl::InitializeLog"
    r"|cpu_feature_guard|To enable the following instructions|oneDNN custom operations"
    r"|TF_ENABLE_ONEDNN_OPTS|rebuild TensorFlow with the appropriate|cudart_stub|could not find cuda drivers"
)


def import_keras():
    """Import TensorFlow (quietly, once) and return the ``keras`` module."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with _filtered_stderr():
            import tensorflow  # noqa: F401
    import keras

    return keras


@contextmanager
def native_output(logger: logging.Logger, what: str):
    """Run a block (a converter or a runtime call) with the process's stderr captured.

    TensorFlow's converter and interpreters print C++ log lines and deprecation warnings
    that say nothing to a user. They go to ``logger`` at DEBUG (so into ``run.log`` where
    one is kept) and are shown on stderr only when the block raises."""
    with _captured_stderr() as captured:
        try:
            yield
        except BaseException:
            captured.failed = True
            raise
    if captured.text.strip():
        logger.debug("native output of %s:\n%s", what, captured.text.rstrip())


class _captured_stderr:
    """File descriptor 2 redirected to a temporary file; ``text`` holds what was written.
    When ``failed`` is set before the end, the text is written back to stderr."""

    failed = False
    text = ""

    def __enter__(self):
        sys.stderr.flush()
        self._saved = os.dup(2)
        self._file = tempfile.TemporaryFile(mode="w+b")
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.seek(0)
        self.text = self._file.read().decode(errors="replace")
        self._file.close()
        if self.failed and self.text.strip():
            sys.stderr.write(self.text if self.text.endswith("\n") else self.text + "\n")
        return False


class _filtered_stderr(_captured_stderr):
    def __exit__(self, *exc):
        super().__exit__(*exc)
        kept = [line for line in self.text.splitlines() if line.strip() and not _NOISE.search(line)]
        if kept:
            sys.stderr.write("\n".join(kept) + "\n")
        return False
