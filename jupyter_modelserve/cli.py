"""`jupyter modelserve` subcommands: register a model, stop the local model server.

They need neither Jupyter Server nor its imports: command.py starts them without either.
"""

from __future__ import annotations

import sys

from jupyter_core.application import JupyterApp
from traitlets import Unicode

from ._version import __version__
from .errors import ModelServeError
from .schemas import validate_description, validate_model_name, validate_source
from .settings import load_settings


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
        try:  # the REST API's checks, before the registry is even opened
            source = validate_source(self.extra_args[0], "PATH")
            name = validate_model_name(self.model_name, "--name")
            description = validate_description(self.model_description or None, "--description")
        except ModelServeError as error:
            self.exit_with(f"error: {error}")
            return
        from .registry.model_registry import VersionDetails  # the registry's imports: only now

        service = load_settings(self.config).build_service()
        try:
            version = service.registry.register_saved_model(
                source, name, VersionDetails(description=description)
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
    description = """Stop the local model server; it stays stopped until a serve is POSTed again."""

    def start(self) -> None:
        backend = load_settings(self.config).build_backend()
        stop = getattr(backend, "stop_server", None)
        if stop is None:
            print(f"the {backend.name} backend runs no local model server", file=sys.stderr)
            self.exit(2)
            return
        stop()
        print("Stopped the local model server")


SUBCOMMANDS: dict[str, type[JupyterApp]] = {"register": RegisterApp, "stop-server": StopServerApp}
