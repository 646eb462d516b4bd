"""Import TensorFlow exactly once, from whichever thread asks first.

The server starts importing TensorFlow on a background thread at start-up. A load thread that
touched `tensorflow.core...` while that import was half done would see partially initialised
modules (or trip Python's import deadlock detection), so every thread goes through
`import_tensorflow()`, which serialises on one lock.
"""

from __future__ import annotations

import gc
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
        if "tensorflow" in sys.modules:  # (import_module waits if another import is under way)
            return importlib.import_module("tensorflow")
        started = time.monotonic()
        # The import makes a few hundred thousand objects that live as long as the process:
        # with the collector on, each full collection re-walks all made so far (0.25-0.5 s
        # each here, about a second of a cold start), to free next to nothing. So it is off
        # for the import, and what the import made is frozen out of later collections. (Cyclic
        # garbage other threads make meanwhile, a few seconds of a starting server's, is frozen
        # with it: a bounded cost, paid once.)
        enabled = gc.isenabled()
        gc.disable()
        try:
            module = importlib.import_module("tensorflow")
        finally:
            gc.freeze()
            if enabled:
                gc.enable()
        log.info("TensorFlow imported in %.2f s", time.monotonic() - started)
        return module


# Keras imports these when it can, at `import tensorflow`, for features a model server never
# uses (its scikit-learn wrappers, matplotlib plotting), each inside `try: ... except
# ImportError`. Data-science environments usually have both: 0.6 s of every cold start here.
NEVER_NEEDED = ("sklearn", "matplotlib")


def skip_optional_imports() -> None:
    """Make NEVER_NEEDED unimportable in this process (None in sys.modules: ImportError). For
    the model server's own process only; a module that is already imported is left alone."""
    for name in NEVER_NEEDED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


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
