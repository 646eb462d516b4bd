"""The Python API for notebook code: register a model, serve it, predict, all in one process.

    from jupyter_modelserve import api
    api.register(keras_model, "churn")            # or a SavedModel folder, or s3://…/churn/3
    s = api.serve("churn", 1)                     # waits until AVAILABLE
    s.predict([[0.1, 0.2, 0.3]])

It builds the same `ServeService` as the Jupyter server, from the same Jupyter config files, so
a serve made here is listed by `GET /api/v1/serve` at once, and the other way round.
"""

from __future__ import annotations

import html
import json
import threading
import urllib.error
import urllib.request
from typing import Any

from .display import state_badge
from .errors import BackendUnavailable, InvalidInput, ModelServeError
from .registry.model_registry import VersionDetails
from .schemas import (
    ModelVersionView,
    ServeState,
    ServeView,
    validate_description,
    validate_model_name,
    validate_source,
    validate_tags,
    validate_version,
)
from .servestate import not_ready
from .service import ServeService
from .settings import load_settings

DEFAULT_TIMEOUT = 300.0  # as long as the service's load deadline: waiting less loses serves
_service: ServeService | None = None
_service_lock = threading.Lock()


def service() -> ServeService:
    """This process's ServeService, built once from the Jupyter config files."""
    global _service
    with _service_lock:
        if _service is None:
            _service = load_settings().build_service()
            # A kernel heals its serves too when no Jupyter server holds the reconciler lease.
            _service.reconciler.start_thread()
        return _service


def register(
    source: Any, name: str, description: str | None = None, tags: list[str] | None = None
) -> ModelVersionView:
    """Register a Keras model, a SavedModel folder or an s3:// or gs:// URI as `name`'s next
    version."""
    # The same checks as the REST API's, before anything is exported or copied.
    name = validate_model_name(name)
    description = validate_description(description)
    tags = validate_tags(tags)
    details = VersionDetails(description=description, tags=tuple(tags or ()))
    if isinstance(source, str) or hasattr(source, "__fspath__"):
        return service().registry.register(validate_source(str(source)), name, details)
    return service().registry.register_keras_model(source, name, details)


def serve(name: str, version: int, wait: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Serve:
    """Serve a registered version; with `wait`, return once it is AVAILABLE (FAILED raises
    ServeFailed, a wait that runs out BackendUnavailable)."""
    name, version = validate_model_name(name), validate_version(version)
    if not wait:
        return Serve(service().create(name, version))
    return Serve(_available(service().create(name, version, wait=timeout), timeout))


def get(name: str, version: int) -> Serve:
    return Serve(service().get(validate_model_name(name), validate_version(version)))


def serves() -> list[Serve]:
    return [Serve(view) for view in service().list_serves()]


class Serve:
    """One serve, as notebook code sees it; `refresh()` reads it again from the service."""

    def __init__(self, view: ServeView) -> None:
        self._view = view

    name = property(lambda self: self._view.model_name)
    version = property(lambda self: self._view.model_version)
    state = property(lambda self: self._view.state.value)  # its name: notebooks print it
    reason = property(lambda self: self._view.reason)
    url = property(lambda self: self._view.url)
    backend = property(lambda self: self._view.backend)

    def refresh(self) -> Serve:
        self._view = service().get(self.name, self.version)
        return self

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> Serve:
        """Wait until AVAILABLE; FAILED raises ServeFailed with the reason."""
        self._view = _available(service().wait(self.name, self.version, timeout), timeout)
        return self

    def predict(self, instances: Any, signature_name: str | None = None) -> Any:
        """TF Serving's row-format predict; numpy arrays are accepted. Returns `predictions`."""
        if not self.url:
            raise BackendUnavailable(f"model {self.name!r} version {self.version} has no url yet")
        body: dict[str, Any] = {"instances": _jsonable(instances)}
        if signature_name:
            body["signature_name"] = signature_name
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["predictions"]
        except urllib.error.HTTPError as error:
            message = _error_message(error)
            if error.code == 400:
                raise InvalidInput(f"instances: {message}") from None
            raise BackendUnavailable(f"predict failed with HTTP {error.code}: {message}") from None
        except OSError as error:
            raise BackendUnavailable(f"cannot reach {self.url}: {error}") from None

    def logs(self, tail: int = 100) -> list[str]:
        return service().logs(self.name, self.version, validate_version(tail, "tail"))

    def delete(self) -> None:
        service().delete(self.name, self.version)

    def curl(self) -> str:
        """A copyable command that predicts with this serve."""
        return f"curl -H 'Content-Type: application/json' -d '{{\"instances\": [...]}}' {self.url}"

    def __repr__(self) -> str:
        reason = f", reason={self.reason!r}" if self.reason else ""
        return f"Serve({self.name!r}, {self.version}, state={self.state}{reason}, url={self.url!r})"

    def _repr_html_(self) -> str:
        rows = [
            ("model", f"{html.escape(self.name)} version {self.version}"),
            ("state", state_badge(self._view.state)),
            ("url", f"<code>{html.escape(self.url or '')}</code>"),
            ("curl", f"<code style='user-select:all'>{html.escape(self.curl())}</code>"),
        ]
        if self.reason:
            rows.insert(2, ("reason", html.escape(self.reason)))
        cells = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td>{v}</td></tr>"
            for k, v in rows
        )
        return f"<table class='modelserve-serve'>{cells}</table>"


def _available(view: ServeView, waited: float) -> ServeView:
    """The view of a finished wait when AVAILABLE; a wait that ran out raises, saying so."""
    if view.state is not ServeState.AVAILABLE:
        # The serve goes on: `Serve.wait()` again, or `%serve status`, keeps watching it.
        raise BackendUnavailable(not_ready(view, waited))
    return view


def _jsonable(instances: Any) -> Any:
    tolist = getattr(instances, "tolist", None)
    if callable(tolist):  # numpy arrays, and anything shaped like them
        return tolist()
    if isinstance(instances, list | tuple):
        return [_jsonable(item) for item in instances]
    if isinstance(instances, dict):
        return {key: _jsonable(value) for key, value in instances.items()}
    return instances


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(error).get("error", error.reason))
    except (ValueError, AttributeError):
        return str(error.reason)


__all__ = ["ModelServeError", "Serve", "get", "register", "serve", "serves", "service"]
