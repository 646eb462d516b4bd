"""The Jupyter server extension, which `jupyter modelserve` (command.py) also starts on its own."""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from anyio import CapacityLimiter, to_thread
from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import PeriodicCallback
from traitlets import Bool

from . import jupyter_info
from ._version import __version__
from .cli import SUBCOMMANDS
from .handlers import ROUTES
from .reconciler import TICK_SECONDS
from .registry.database import redacted
from .registry.model_registry import DEMO_MODEL
from .service import ServeService
from .settings import ModelServeSettings

DEFAULT_PORT = 32080  # the port of Submarine's examples
REQUEST_THREADS = 4
COPY_THREADS = 2
STOP_WAIT_SECONDS = 30.0  # a reconcile still running when the server stops


class ModelServeApp(ModelServeSettings, ExtensionApp):
    """Registers the /api/v1/serve routes on a Jupyter server over one `ServeService`."""

    name = "jupyter_modelserve"
    description = "Serve registered TensorFlow models from Jupyter."
    version = __version__
    load_other_extensions = True
    open_browser = False

    demo = Bool(
        False,
        config=True,
        help=f"Register the example model {DEMO_MODEL!r} version 1 (half_plus_two) when missing.",
    )
    freeze_startup_heap = Bool(
        True,
        config=True,
        help="Once the Jupyter server has started, move every object it holds into the "
        "garbage collector's permanent generation (gc.freeze). A full collection otherwise walks "
        "the whole heap of the server and its extensions, pausing the event loop, and every "
        "request with it, for 0.1-0.5 s whenever it runs; what is frozen is the code and "
        "settings loaded at start, which live as long as the server anyway.",
    )
    flags = {
        "demo": (
            {"ModelServeApp": {"demo": True}},
            f"Register the example model {DEMO_MODEL!r} version 1 first (built on first use).",
        )
    }
    subcommands = {  # for --help: command.py starts them without this class
        name: (app, app.description.splitlines()[0]) for name, app in SUBCOMMANDS.items()
    }
    # traitlets words this with the app's name, the extension's: "jupyter_modelserve cmd".
    subcommand_description = (
        "Subcommands are launched as `jupyter modelserve cmd [args]`. For information on "
        "using subcommand 'cmd', do: `jupyter modelserve cmd -h`."
    )

    service: ServeService | None = None
    threads: CapacityLimiter
    copy_threads: CapacityLimiter
    _reconciler: PeriodicCallback | None = None
    _ticking = False

    @classmethod
    def make_serverapp(cls, **kwargs: Any) -> Any:
        # Defaults for `jupyter modelserve` only; the command line and config files still win.
        kwargs.setdefault("port", DEFAULT_PORT)
        kwargs.setdefault("ip", "127.0.0.1")
        # A serving endpoint, often run as root in a container like tensorflow/serving's image;
        # it runs no notebooks by itself, which is what Jupyter's root check protects.
        kwargs.setdefault("allow_root", True)
        serverapp = super().make_serverapp(**kwargs)
        serverapp.flags = {**serverapp.flags, **cls.flags}
        return serverapp

    def initialize_settings(self) -> None:
        # The extension's own threads for blocking work, one set per app instance: a slow
        # cluster never starves the pool the rest of the Jupyter server shares. Few of them:
        # every thread running Python takes the interpreter lock from the event loop, and
        # nothing parks a thread for long (?wait and DELETE wait on the loop). Registration
        # copies, which may take minutes, get threads of their own.
        self.threads = CapacityLimiter(REQUEST_THREADS)
        self.copy_threads = CapacityLimiter(COPY_THREADS)
        self.service = self.build_service()
        # Relative model paths mean "in root_dir" in this process too (see jupyter_info.py).
        if self.serverapp is not None:
            jupyter_info.set_server_root(self.serverapp.root_dir)
        if self.demo:
            demo = self.service.registry.ensure_demo_model()
            if demo is not None:
                self.log.info("Registered the demo model %s version %s", demo.name, demo.version)
        check_running_server = getattr(self.service.backend, "check_running_server", None)
        if check_running_server is not None:
            check_running_server()
        self.settings["modelserve_service"] = self.service
        self.settings["modelserve_threads"] = self.threads
        self.settings["modelserve_copy_threads"] = self.copy_threads
        self.log.info(
            "jupyter_modelserve: registry %s, backend %s, artifacts in %s",
            redacted(self.db_url),
            self.service.backend.name,
            self.service.registry.artifact_root,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(ROUTES)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # What a server killed mid-registration left in the staging folder goes first.
        if self.service is not None:
            removed = await to_thread.run_sync(
                self.service.registry.clean_staging, limiter=self.threads
            )
            if removed:
                self.log.info("jupyter_modelserve: removed %d stale staging folders", len(removed))
        # Contend for the reconciler lease at once (the start-up reconcile when we get it),
        # then tick; the holder reconciles on its schedule or when asked (see reconciler.py).
        await self._tick()
        if self.reconcile_interval > 0:
            self._reconciler = PeriodicCallback(self._tick, TICK_SECONDS * 1000)
            self._reconciler.start()
        if self.freeze_startup_heap:
            # Collect once first, so that no garbage of the start-up is kept forever.
            gc.collect()
            gc.freeze()
            self.log.debug("jupyter_modelserve: froze %d start-up objects", gc.get_freeze_count())

    async def _tick(self) -> None:
        if self.service is None or self._ticking:
            return  # a reconcile that outlasts a tick is not started twice
        self._ticking = True
        try:
            # On the extension's threads, like every handler: a slow cluster never holds up
            # the pool the rest of the Jupyter server shares.
            await to_thread.run_sync(self.service.reconciler.safe_tick, limiter=self.threads)
        finally:
            self._ticking = False

    async def stop_extension(self) -> None:
        jupyter_info.set_server_root(None)
        if self._reconciler is not None:
            self._reconciler.stop()
        # A tick still running holds an extension thread: let it end (bounded), or the idle
        # worker thread it leaves keeps the process from exiting on SIGTERM.
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while self._ticking and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.service is not None:
            await to_thread.run_sync(self.service.close, limiter=self.threads)
