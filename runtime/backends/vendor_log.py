"""Route what a vendor library's C++ code writes to stderr into Python logging.

LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` straight to
file descriptor 2 when it first allocates tensors; no Python option turns it off, and
it would break ``edgefer detect --quiet``. Around such a call, fd 2 is pointed at a
temporary file, and each line written there is logged afterwards: ``INFO:`` lines at
INFO (hidden by ``--quiet``), anything else at WARNING, so no real error is lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator


@contextlib.contextmanager
def vendor_stderr_to_log(log: logging.Logger) -> Iterator[None]:
    """Capture fd 2 for the duration of the block and log what was written to it."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no fd 2 (closed, or a replaced sys.stderr): nothing to route
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            _log_lines(log, capture.read().decode("utf-8", errors="replace"))


def _log_lines(log: logging.Logger, text: str) -> None:
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("INFO: "):
            log.info("%s", line[len("INFO: "):])
        else:
            log.warning("%s", line)
