"""Settings shared by every process that builds a `ServeService`.

The Jupyter server reads them as `c.ModelServeApp.*`; the CLI and kernels read the very same
Jupyter config files through `load_settings`, so all of them talk to one registry and backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_core.paths import jupyter_config_path, jupyter_data_dir
from traitlets import Float, Int, Type, Undefined, Unicode
from traitlets.config import Config, LoggingConfigurable
from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

if TYPE_CHECKING:
    from .backends.base import Backend
    from .service import ServeService

# Short names for the backends that ship with the package.
BACKENDS = {
    "local": "jupyter_modelserve.backends.local.LocalBackend",
    "kubernetes": "jupyter_modelserve.backends.kubernetes.KubernetesBackend",
}


log = logging.getLogger(__name__)


def modelserve_dir() -> Path:
    """Where the registry, artifacts and the local model server live by default."""
    return Path(jupyter_data_dir()) / "modelserve"


class ComputedUnicode(Unicode):
    """A string setting whose default is computed when it is read, so it follows
    JUPYTER_DATA_DIR as Jupyter's own paths do, and that `--help-all` shows as it will be."""

    def __init__(self, compute: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_value = Undefined  # type: ignore[assignment]  # read: compute()
        self._compute = compute

    def make_dynamic_default(self) -> str:
        return self._compute()

    def default_value_repr(self) -> str:
        return repr(self._compute())


class BackendClass(Type):
    """A Backend class, given as a class, its dotted path, or a short name from BACKENDS."""

    def validate(self, obj: Any, value: Any) -> Any:
        if isinstance(value, str):
            value = BACKENDS.get(value, value)
        return super().validate(obj, value)


# The files a Jupyter server reads its own settings from, lowest precedence first.
CONFIG_FILE_NAMES = ("jupyter_config", "jupyter_server_config")


class ModelServeSettings(LoggingConfigurable):
    db_url = ComputedUnicode(
        lambda: f"sqlite:///{modelserve_dir() / 'registry.db'}",
        config=True,
        help="SQLAlchemy URL of the model registry (a SQLite file under the Jupyter data folder "
        "unless set).",
    )
    artifact_root = ComputedUnicode(
        lambda: str(modelserve_dir() / "artifacts"),
        config=True,
        help="Folder where registered models are copied, as <name>/<version>/.",
    )
    backend = BackendClass(
        default_value=BACKENDS["local"],
        klass="traitlets.config.LoggingConfigurable",
        config=True,
        help="Where serves run: 'local', 'kubernetes', or a Backend class (or its dotted path).",
    )
    load_timeout = Float(
        300.0,
        config=True,
        help="Seconds a serve may stay PENDING or LOADING before it is marked FAILED.",
    )
    delete_timeout = Float(
        60.0,
        config=True,
        help="Seconds DELETE waits for the backend to confirm a serve is gone; after that it "
        "answers 503 and the serve stays DELETING until the backend confirms. On Kubernetes, "
        "keep it above c.KubernetesBackend.termination_grace_period_seconds.",
    )
    status_timeout = Float(
        3.0,
        config=True,
        help="Deadline in seconds for one status read of the backend, for a single serve or a "
        "whole list: a model server or cluster that does not answer within it is reported as "
        "not answering instead of holding the request.",
    )
    proxy_timeout = Float(
        120.0,
        config=True,
        help="Seconds a predict through the proxy (/modelserve/v1/models/...) may take before "
        "it answers 503.",
    )
    max_artifact_bytes = Int(
        4 * 1024**3,
        config=True,
        help="Largest model artifact (the sum of a SavedModel folder's files) that registration "
        "copies; a larger one is refused with 413 before it fills the disk.",
    )
    max_request_bytes = Int(
        64 * 1024,
        config=True,
        help="Largest body the control API (/api/v1/serve, the registry routes) accepts; larger "
        "bodies get 413 before they are read whole.",
    )
    max_predict_bytes = Int(
        64 * 1024**2,
        config=True,
        help="Largest predict body the proxy (/modelserve/v1/models/...) forwards; larger ones get "
        '413 in TF Serving\'s {"error": ...} form.',
    )
    reconcile_interval = Float(
        30.0,
        config=True,
        help="Seconds between reconciliations of serves with the backend (0 disables).",
    )

    def resolved_artifact_root(self) -> Path:
        return Path(self.artifact_root).expanduser().resolve()

    max_orphan_sweep = Int(
        10,
        config=True,
        help="Most serves without a registry row the reconciler removes in one pass; when it "
        "finds more, it removes none and logs why (a lost or swapped registry database looks "
        "exactly like that). A registry created by this process never sweeps.",
    )

    def build_backend(self) -> Backend:
        backend: Backend = self.backend(
            data_dir=modelserve_dir(), artifact_root=self.resolved_artifact_root(), parent=self
        )
        return backend

    def build_service(self) -> ServeService:
        from .registry.store import RegistryStore
        from .service import ServeService

        store = RegistryStore(self.db_url)
        backend = self.build_backend()
        try:
            # Only a backend that takes its instance from the registry reads the identity row:
            # a broken row must not stop a server whose instance is configured, nor a local one.
            if _wants_registry_identity(backend):
                backend.use_registry_identity(store.identity().short_id)
        except Exception:
            store.close()
            raise
        grace = getattr(backend, "termination_grace_period_seconds", None)
        if isinstance(grace, int) and self.delete_timeout <= grace:
            # Pods get `grace` seconds to stop: a shorter DELETE wait answers 503 every time.
            log.warning(
                "c.ModelServeApp.delete_timeout (%.0f s) is not above the model Pods' "
                "termination grace period (%d s): DELETE will answer 503 while Pods still stop",
                self.delete_timeout,
                grace,
            )
        return ServeService(
            store=store,
            backend=backend,
            artifact_root=self.resolved_artifact_root(),
            load_timeout=self.load_timeout,
            delete_timeout=self.delete_timeout,
            status_timeout=self.status_timeout,
            reconcile_interval=self.reconcile_interval,
            max_artifact_bytes=self.max_artifact_bytes,
            max_orphan_sweep=self.max_orphan_sweep,
        )


def _wants_registry_identity(backend: Backend) -> bool:
    """Whether `backend` names its objects after the registry's id: it has an `instance`
    setting (the kubernetes backend) and it is left empty."""
    return getattr(backend, "instance", None) == ""


def load_settings(extra: Config | None = None, **overrides: Any) -> ModelServeSettings:
    """Settings from the Jupyter server's config files, for processes that are not the server.

    `extra` (a command line's config, say) wins over the files; `overrides` win over both.
    """
    config = load_config(extra)
    # The server reads `c.ModelServeApp`; here the same values configure the plain settings.
    config.ModelServeSettings.merge(config.ModelServeApp)
    settings = ModelServeSettings(config=config)
    for name, value in overrides.items():
        setattr(settings, name, value)
    return settings


def load_config(extra: Config | None = None) -> Config:
    """The Jupyter server's config, read from its files as the server reads them (`extra` wins)."""
    config = Config()
    for folder in reversed(jupyter_config_path()):  # later folders take precedence
        for name in CONFIG_FILE_NAMES:
            for loader, suffix in ((JSONFileConfigLoader, ".json"), (PyFileConfigLoader, ".py")):
                path = Path(folder) / f"{name}{suffix}"
                if path.is_file():
                    config.merge(loader(path.name, path=str(path.parent)).load_config())
    if extra is not None:
        config.merge(extra)
    return config
