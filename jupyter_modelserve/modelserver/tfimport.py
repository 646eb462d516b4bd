"""Import TensorFlow exactly once, from whichever thread asks first.

The server starts importing TensorFlow on a background thread at start-up. A load thread that
touched `tensorflow.core...` while that import was half done would see partially initialised
modules (or trip Python's import deadlock detection), so every thread goes through
`import_tensorflow()`, which serialises on one lock.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from types import ModuleType

from .logs import log

_lock = threading.Lock()


def import_tensorflow() -> ModuleType:
    with _lock:
        # Quiet TensorFlow's C++ INFO/WARNING lines; only effective before the first import.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        started = time.monotonic()
        already = "tensorflow" in sys.modules
        module = importlib.import_module("tensorflow")
        if not already:
            log.info("TensorFlow imported in %.2f s", time.monotonic() - started)
        return module


def start_background_import() -> threading.Thread:
    """Begin importing TensorFlow now, so the first model load does not pay for it."""

    def run() -> None:
        try:
            import_tensorflow()
        except Exception:  # each load reports the failure in its own status too
            log.exception("Importing TensorFlow failed")

    thread = threading.Thread(target=run, name="tf-import", daemon=True)
    thread.start()
    return thread
