"""`jupyter modelserve` subcommands, and the demo model of `jupyter modelserve --demo`."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from jupyter_core.application import JupyterApp
from traitlets import Unicode

from ._version import __version__
from .config import load_settings
from .errors import ModelServeError, NotFound
from .service import ServeService

DEMO_MODEL = "simple"


class RegisterApp(JupyterApp):
    name = "jupyter-modelserve-register"
    version = __version__
    description = """Register a SavedModel folder as the next version of a model.

    jupyter modelserve register PATH --name NAME [--description TEXT]
    """
    model_name = Unicode("", config=True, help="Registered model name.")
    model_description = Unicode("", config=True, help="Description of this version.")
    aliases = {
        "name": "RegisterApp.model_name",
        "description": "RegisterApp.model_description",
    }

    def start(self) -> None:
        if len(self.extra_args) != 1 or not self.model_name:
            self.exit_with("usage: jupyter modelserve register PATH --name NAME")
        service = load_settings(self.config).build_service()
        try:
            version = service.register_saved_model(
                self.extra_args[0], self.model_name, self.model_description or None
            )
        except ModelServeError as error:
            self.exit_with(f"error: {error}")
        finally:
            service.close()
        print(f"Registered {version.name} version {version.version} at {version.source}")

    def exit_with(self, message: str) -> None:
        print(message, file=sys.stderr)
        self.exit(2)


class StopServerApp(JupyterApp):
    name = "jupyter-modelserve-stop-server"
    version = __version__
    description = """Stop the local model server (serves start it again on their next check)."""

    def start(self) -> None:
        backend = load_settings(self.config).build_backend()
        stop = getattr(backend, "stop_server", None)
        if stop is None:
            print(f"the {backend.name} backend runs no local model server", file=sys.stderr)
            self.exit(2)
            return
        stop()
        print("Stopped the local model server")


def ensure_demo_model(service: ServeService, log: logging.Logger) -> None:
    """Register half_plus_two as `simple` version 1 when it is missing, building it once."""
    try:
        service.store.get_model_version(DEMO_MODEL, 1)
        return
    except NotFound:
        pass
    folder = Path(service.artifact_root).parent / "demo" / "half_plus_two" / "1"
    if not (folder / "saved_model.pb").is_file():
        log.info("Building the demo model half_plus_two in %s", folder)
        # A child process, so the Jupyter server never imports TensorFlow itself.
        subprocess.run(
            [sys.executable, "-m", "jupyter_modelserve.demo", str(folder)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    version = service.register_saved_model(folder, DEMO_MODEL, "half_plus_two: y = 0.5 * x + 2")
    log.info("Registered the demo model %s version %s", DEMO_MODEL, version.version)
