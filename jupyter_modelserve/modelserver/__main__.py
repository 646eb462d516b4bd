"""`python -m jupyter_modelserve.modelserver`: a TF Serving compatible REST model server."""

import os
import signal
import threading

# Installed before the slower imports: SIGHUP's default action would kill the process, and the
# backend may send one (after rewriting the config) while we are still starting. The event is
# the config watcher's trigger, so such an early signal still causes a reload.
reload_requested = threading.Event()
signal.signal(signal.SIGHUP, lambda signum, frame: reload_requested.set())
# Asked to stop before the HTTP loop takes over these signals: there is nothing to clean up yet.
signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
signal.signal(signal.SIGINT, lambda signum, frame: os._exit(0))

from .tfimport import skip_optional_imports  # noqa: E402

skip_optional_imports()  # this process only: a library importing the package must not

from .server import run  # noqa: E402

if __name__ == "__main__":
    run(reload_requested)
