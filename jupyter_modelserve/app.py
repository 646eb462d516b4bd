"""The Jupyter server extension, and the `jupyter modelserve` command."""

from __future__ import annotations

import sys
from typing import Any

from anyio import CapacityLimiter
from jupyter_server.extension.application import ExtensionApp
from tornado.ioloop import PeriodicCallback
from traitlets import Bool

from ._version import __version__
from .cli import RegisterApp, StopServerApp
from .config import ModelServeSettings
from .handlers import ROUTES
from .registration import DEMO_MODEL
from .service import ServeService

DEFAULT_PORT = 32080  # the port of Submarine's examples


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
    flags = {
        "demo": (
            {"ModelServeApp": {"demo": True}},
            f"Register the example model {DEMO_MODEL!r} version 1 first (built on first use).",
        )
    }
    subcommands = {
        "register": (RegisterApp, RegisterApp.description.splitlines()[0]),
        "stop-server": (StopServerApp, StopServerApp.description.splitlines()[0]),
    }

    service: ServeService | None = None
    threads: CapacityLimiter
    _reconciler: PeriodicCallback | None = None

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
        # cluster or a long ?wait never starves the pool the rest of the Jupyter server shares.
        self.threads = CapacityLimiter(64)
        self.service = self.build_service()
        if self.demo:
            demo = self.service.ensure_demo_model()
            if demo is not None:
                self.log.info("Registered the demo model %s version %s", demo.name, demo.version)
        self.settings["modelserve_service"] = self.service
        self.settings["modelserve_threads"] = self.threads
        self.log.info(
            "jupyter_modelserve: registry %s, backend %s, artifacts in %s",
            _redact(self.resolved_db_url()),
            self.service.backend.name,
            self.service.artifact_root,
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend(ROUTES)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # Start-up reconcile, then periodic ones; each runs in a thread (see _reconcile).
        await self._reconcile()
        if self.reconcile_interval > 0:
            self._reconciler = PeriodicCallback(self._reconcile, self.reconcile_interval * 1000)
            self._reconciler.start()

    async def _reconcile(self) -> None:
        from anyio import to_thread

        if self.service is None:
            return
        try:
            # On the extension's threads, like every handler: a slow cluster never holds up
            # the pool the rest of the Jupyter server shares.
            await to_thread.run_sync(self.service.reconcile, limiter=self.threads)
        except Exception:  # a reconcile must never take the server down; the next one retries
            self.log.exception("jupyter_modelserve: reconcile failed")

    async def stop_extension(self) -> None:
        if self._reconciler is not None:
            self._reconciler.stop()
        if self.service is not None:
            self.service.close()


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> None:
    ModelServeApp.launch_instance(argv if argv is not None else sys.argv[1:])
