"""The Python API for notebook code: register a model, serve it, predict, all in one process.

    from jupyter_modelserve import api
    api.register(keras_model, "churn")            # a Keras model, a SavedModel folder, a .keras
                                                  # file, s3://…/churn/3 or an MLflow models:/ URI
    s = api.serve("churn", 1)                     # waits until AVAILABLE
    s.signature                                   # its inputs and outputs
    s.predict([[0.1, 0.2, 0.3]])                  # numpy arrays and DataFrames too
    api.serves(), api.models(), api.versions("churn")
    api.delete("churn", 1); api.unregister("churn", 1)

It builds the same `ServeService` as the Jupyter server, from the same Jupyter config files, so
a serve made here is listed by `GET /api/v1/serve` at once, and the other way round. Errors are
the types below (all `ModelServeError`), each saying what to do.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import (
    BackendUnavailable,
    Conflict,
    InvalidInput,
    ModelServeError,
    NotFound,
    PayloadTooLarge,
    RegistryUnavailable,
    ServeFailed,
    ServerFault,
)
from .jupyter_info import root_dir
from .registry.model_registry import VersionDetails
from .results import MODEL_TABLE, VERSION_TABLE, Model, Table, Version
from .schemas import (
    validate_description,
    validate_model_name,
    validate_source,
    validate_tags,
    validate_version,
    validate_wait_seconds,
)
from .serve_handle import DEFAULT_TIMEOUT, SERVE_TABLE, Serve, available
from .service import ServeService
from .settings import load_settings

LIST_LIMIT = 1000  # a table a notebook can show; the REST API pages beyond it
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
) -> Version:
    """Register `source` as `name`'s next version: a Keras model object, a SavedModel folder, a
    `.keras`/`.h5` file, an s3:// or gs:// folder, or an MLflow `runs:/`/`models:/` URI.
    Relative paths are read from the Jupyter server's root folder."""
    # The same checks as the REST API's, before anything is exported or copied.
    name = validate_model_name(name)
    description = validate_description(description)
    tags = validate_tags(tags)
    details = VersionDetails(description=description, tags=tuple(tags or ()))
    if isinstance(source, str) or hasattr(source, "__fspath__"):
        source = validate_source(str(source))
        view = service().registry.register(source, name, details, base_dir=root_dir())
    else:
        view = service().registry.register_keras_model(source, name, details)
    return Version(view)


def serve(name: str, version: int, wait: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Serve:
    """Serve a registered version; with `wait`, return once it is AVAILABLE (FAILED raises
    ServeFailed, a wait that runs out BackendUnavailable)."""
    name, version = validate_model_name(name), validate_version(version)
    timeout = validate_wait_seconds(timeout)
    if not wait:
        return Serve(service().create(name, version), service())
    return Serve(available(service().create(name, version, wait=timeout), timeout), service())


def get(name: str, version: int) -> Serve:
    name, version = validate_model_name(name), validate_version(version)
    return Serve(service().describe(name, version), service())


def delete(name: str, version: int) -> None:
    """Stop serving a version (it stays registered)."""
    service().delete(validate_model_name(name), validate_version(version))


def serves() -> Table[Serve]:
    """Every serve, as a table in a notebook."""
    return Table(
        (Serve(view, service()) for view in service().list_serves(LIST_LIMIT)), SERVE_TABLE
    )


def models() -> Table[Model]:
    """Every registered model (the first 1000)."""
    views = service().registry.list_registered_models(limit=LIST_LIMIT)
    return Table(map(Model, views), MODEL_TABLE)


def versions(name: str) -> Table[Version]:
    """A model's registered versions (the first 1000)."""
    views = service().registry.list_model_versions(validate_model_name(name), limit=LIST_LIMIT)
    return Table(map(Version, views), VERSION_TABLE)


def unregister(name: str, version: int) -> None:
    """Delete a registered version and its stored copy; a served version must be deleted
    (stopped) first, and Conflict says so."""
    service().registry.delete_model_version(validate_model_name(name), validate_version(version))


__all__ = [
    "BackendUnavailable",
    "Conflict",
    "InvalidInput",
    "Model",
    "ModelServeError",
    "NotFound",
    "PayloadTooLarge",
    "RegistryUnavailable",
    "Serve",
    "ServeFailed",
    "ServerFault",
    "Table",
    "Version",
    "delete",
    "get",
    "models",
    "register",
    "serve",
    "serves",
    "service",
    "unregister",
    "versions",
]
