"""`jupyter modelserve` subcommands: the magic's forms, from a shell.

    jupyter modelserve register PATH --name NAME     serve NAME VERSION     delete NAME VERSION
    jupyter modelserve list     status NAME VERSION     logs NAME VERSION     stop-server

They need neither Jupyter Server nor its imports: command.py starts them without either. Errors
print one line and exit 2 for a wrong command line or input, 1 for anything else (no such model,
a serve that FAILED), so scripts can rely on the status.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

from jupyter_core.application import JupyterApp
from traitlets import Bool, Float, Int, Unicode
from traitlets.config import Config

from ._version import __version__
from .errors import InvalidInput, ModelServeError
from .schemas import (
    validate_description,
    validate_model_name,
    validate_source,
    validate_version,
    validate_wait_seconds,
)
from .settings import load_settings

if TYPE_CHECKING:
    from .service import ServeService

USAGE_ERROR = 2
FAILED = 1


class _Command(JupyterApp):
    """One subcommand: `run()` does the work on a service built from the Jupyter config."""

    version = __version__
    command = ""  # the word after `jupyter modelserve`
    usage = ""  # "NAME VERSION": what follows it
    positional = 0

    def start(self) -> None:
        if len(self.extra_args) != self.positional:
            self._exit(
                f"usage: jupyter modelserve {self.command} {self.usage}".rstrip(), USAGE_ERROR
            )
        try:
            self.check()
        except ModelServeError as error:
            self._exit(f"error: {error}", _exit_status(error))
        try:
            service = load_settings(_one_shot(self.config)).build_service()
        except ModelServeError as error:  # the registry or backend cannot be used: not usage
            self._exit(f"error: {error}", FAILED)
        try:
            self.run(service)
        except ModelServeError as error:
            # A wrong input is the command line's fault (2), like a bad option; the rest is 1.
            self._exit(
                f"error: {error}", USAGE_ERROR if isinstance(error, InvalidInput) else FAILED
            )
        finally:
            service.close()

    def check(self) -> None:
        """The REST API's checks on the command line, before the registry is opened."""

    def run(self, service: ServeService) -> None:
        raise NotImplementedError

    def name_and_version(self) -> tuple[str, int]:
        return (
            validate_model_name(self.extra_args[0], "NAME"),
            validate_version(self.extra_args[1], "VERSION"),
        )

    def _exit(self, message: str, status: int) -> NoReturn:
        print(message, file=sys.stderr)
        self.exit(status)
        raise SystemExit(status)  # for mypy: exit() never returns


class RegisterApp(_Command):
    name = "jupyter-modelserve-register"  # also names its config file
    command = "register"
    description = """Register a model as the next version of NAME.

    jupyter modelserve register SOURCE --name NAME [--description TEXT]

    SOURCE: a SavedModel folder, a .keras or .h5 file (relative to this shell's folder), an
    s3:// or gs:// folder, or an MLflow runs:/ or models:/ URI.
    """
    usage, positional = "SOURCE --name NAME", 1
    model_name = Unicode("", config=True, help="Registered model name.")
    model_description = Unicode("", config=True, help="Description of this version.")
    aliases = {"name": "RegisterApp.model_name", "description": "RegisterApp.model_description"}

    def check(self) -> None:
        if not self.model_name:
            raise InvalidInput("--name: say which model this is a version of")
        self.source = validate_source(_from_here(self.extra_args[0]), "SOURCE")
        self.model = validate_model_name(self.model_name, "--name")
        self.about = validate_description(self.model_description or None, "--description")

    def run(self, service: ServeService) -> None:
        from .registry.model_registry import VersionDetails  # the registry's imports: only now

        version = service.registry.register(
            self.source, self.model, VersionDetails(description=self.about)
        )
        print(f"Registered {version.name} version {version.version} at {version.source}")


class ServeApp(_Command):
    name = "jupyter-modelserve-serve"  # also names its config file
    command = "serve"
    description = """Serve a registered version and wait until it is AVAILABLE.

    jupyter modelserve serve NAME VERSION [--no-wait] [--timeout S]
    """
    usage, positional = "NAME VERSION [--no-wait] [--timeout S]", 2
    no_wait = Bool(False, config=True, help="Return once the serve is accepted.")
    timeout = Float(300.0, config=True, help="Seconds to wait for AVAILABLE.")
    aliases = {"timeout": "ServeApp.timeout"}
    flags = {"no-wait": ({"ServeApp": {"no_wait": True}}, "Return once the serve is accepted.")}

    def check(self) -> None:
        self.wait = validate_wait_seconds(self.timeout, "--timeout")

    def run(self, service: ServeService) -> None:
        from .serve_handle import Serve
        from .servestate import not_ready, settled

        name, version = self.name_and_version()
        view = service.create(name, version, wait=0.0 if self.no_wait else self.wait)
        print(repr(Serve(view, service)))
        if not self.no_wait and not settled(view):  # FAILED raised ServeFailed: an error line
            self._exit(f"error: {not_ready(view, self.wait)}", FAILED)


class DeleteApp(_Command):
    name = "jupyter-modelserve-delete"  # also names its config file
    command = "delete"
    description = "Stop serving a version (it stays registered)."
    usage, positional = "NAME VERSION", 2

    def run(self, service: ServeService) -> None:
        name, version = self.name_and_version()
        service.delete(name, version)
        print(f"Stopped serving {name} version {version}")


class ListApp(_Command):
    name = "jupyter-modelserve-list"  # also names its config file
    command = "list"
    description = "List every serve with its state and url."

    def run(self, service: ServeService) -> None:
        from .results import Table
        from .serve_handle import SERVE_TABLE, Serve

        views = service.list_serves(limit=1000)
        print(repr(Table((Serve(view, service) for view in views), SERVE_TABLE)))


class StatusApp(_Command):
    name = "jupyter-modelserve-status"  # also names its config file
    command = "status"
    description = "Show one serve: state, url, signature and traffic."
    usage, positional = "NAME VERSION", 2

    def run(self, service: ServeService) -> None:
        from .serve_handle import Serve

        print(repr(Serve(service.describe(*self.name_and_version()), service)))


class LogsApp(_Command):
    name = "jupyter-modelserve-logs"  # also names its config file
    command = "logs"
    description = "Print a serve's last log lines."
    usage, positional = "NAME VERSION [--tail N]", 2
    tail = Int(100, config=True, help="How many log lines.")
    aliases = {"tail": "LogsApp.tail"}

    def run(self, service: ServeService) -> None:
        name, version = self.name_and_version()
        print("\n".join(service.logs(name, version, validate_version(self.tail, "--tail"))))


class StopServerApp(JupyterApp):
    name = "jupyter-modelserve-stop-server"
    command = "stop-server"
    version = __version__
    description = """Stop the local model server; it stays stopped until a serve is POSTed again."""

    def start(self) -> None:
        try:
            backend = load_settings(self.config).build_backend()
        except ModelServeError as error:
            print(f"error: {error}", file=sys.stderr)
            self.exit(FAILED)
            return
        stop = getattr(backend, "stop_server", None)
        if stop is None:
            print(f"error: the {backend.name} backend runs no local model server", file=sys.stderr)
            self.exit(FAILED)
            return
        print("Stopped the local model server" if stop() else "No local model server was running")


def _exit_status(error: ModelServeError) -> int:
    """A wrong input is the command line's fault (2), like a bad option; the rest is 1."""
    return USAGE_ERROR if isinstance(error, InvalidInput) else FAILED


def _from_here(source: str) -> str:
    """A relative path is this shell's, as for every command-line tool: made absolute here so
    the registry does not read it against the Jupyter server's root folder."""
    if not source or "://" in source or source.startswith(("runs:/", "models:/")):
        return source
    return os.path.abspath(source)


SUBCOMMANDS: dict[str, type[JupyterApp]] = {
    app.command: app
    for app in (RegisterApp, ServeApp, DeleteApp, ListApp, StatusApp, LogsApp, StopServerApp)
}


def _one_shot(config: Config) -> Config:
    """The command line's config for a process that reads once and exits: a watch would cost
    more API calls than the one list it saves."""
    once = Config(config)
    once.KubernetesBackend.watch_cache = False
    return once
