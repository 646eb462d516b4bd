"""Which models and versions are loaded, and the state of each, like TF Serving's manager.

Loads and unloads run on a small thread pool so the HTTP loop never waits for TensorFlow. A
version goes START -> LOADING -> AVAILABLE, or ends in END with a non-OK error code; an unloaded
version goes UNLOADING -> END (OK) and stays visible in status, as TF Serving's monitor keeps it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..tfserving.model_config import ModelConfig
from .errors import ServingError, invalid, not_found
from .logs import log, servable_id
from .versions import Fingerprint, discover, fingerprint

if TYPE_CHECKING:
    from .servable import Servable

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"
Loader = Callable[[str, int, str], "Servable"]  # (model name, version, folder) -> Servable


def default_loader(name: str, version: int, path: str) -> Servable:
    from .servable import Servable
    from .tfimport import import_tensorflow

    import_tensorflow()  # waits for the start-up import rather than racing it
    return Servable.load(name, version, path)


@dataclass(frozen=True)
class VersionStatus:
    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "state": self.state,
            "status": {"error_code": self.error_code, "error_message": self.error_message},
        }


@dataclass(eq=False)
class _Version:
    version: int
    path: str
    fingerprint: Fingerprint | None
    state: str = START
    error_code: str = "OK"
    error_message: str = ""
    servable: Servable | None = None
    cancelled: bool = False  # no longer wanted while loading: drop it when the load ends


@dataclass(eq=False)
class _Model:
    config: ModelConfig | None  # None once the model left the config
    versions: dict[int, _Version] = field(default_factory=dict)
    aspired: set[int] = field(default_factory=set)
    problem: str | None = None  # last model-level problem logged, to log each change once


class ModelManager:
    """Applies model configs, tracks version states and hands out loaded servables."""

    def __init__(self, loader: Loader | None = None, load_threads: int = 4) -> None:
        self._loader = loader or default_loader
        self._lock = threading.RLock()
        self._models: dict[str, _Model] = {}
        self._pool = ThreadPoolExecutor(load_threads, thread_name_prefix="modelserver-load")

    # -- configuration ------------------------------------------------------------------------

    def apply_config(self, configs: Sequence[ModelConfig]) -> None:
        """Serve exactly `configs`: models left out are unloaded, unchanged ones kept as is."""
        wanted = {c.name: c for c in configs}
        with self._lock:
            for name, model in self._models.items():
                if model.config is not None and name not in wanted:
                    log.info("Removing model %s from the served models", servable_id(name))
                    model.config, model.aspired = None, set()
                    self._unload_unwanted(name, model, force=True)
            for name, config in wanted.items():
                model = self._models.setdefault(name, _Model(None))
                old = model.config
                if old is not None and (old.base_path, old.model_platform) != (
                    config.base_path,
                    config.model_platform,
                ):
                    # Another source of versions: the old ones must not survive as "the same".
                    model.aspired = set()
                    self._unload_unwanted(name, model, force=True)
                if old is None or not old.same_servables(config):
                    log.info("Configuring model %s from %s", servable_id(name), config.base_path)
                model.config = config  # labels may change without touching loaded versions
                self._reconcile(name, model)

    def poll(self) -> None:
        """Rescan every base path, picking up new version folders per the version policy."""
        with self._lock:
            for name, model in self._models.items():
                if model.config is not None:
                    self._reconcile(name, model)

    def _reconcile(self, name: str, model: _Model) -> None:
        config = model.config
        assert config is not None
        found = discover(config)
        if found.problem != model.problem and found.problem:
            log.warning("%s for servable %s", found.problem, servable_id(name))
        model.problem = found.problem
        model.aspired = set(found.wanted) | set(found.missing)
        for version, path in found.wanted.items():
            current = model.versions.get(version)
            stamp = fingerprint(path)
            if current is None or current.path != path or current.state == UNLOADING:
                self._start_load(name, model, version, path, stamp)
            elif current.cancelled and current.state in (START, LOADING):
                current.cancelled = False  # wanted again before its load even finished
            elif current.state == END and (
                current.error_code == "OK" or current.fingerprint != stamp
            ):
                # Unloaded earlier, or failed and its folder has changed since: load it again.
                self._start_load(name, model, version, path, stamp)
        for version, path in found.missing.items():
            current = model.versions.get(version)
            if current is None or (current.state == END and current.fingerprint is not None):
                entry = _Version(version, path, None, END, "NOT_FOUND")
                entry.error_message = f"Version folder {path} of model {name} does not exist"
                model.versions[version] = entry
                log.error(
                    "Loading servable version %s failed: NOT_FOUND: %s",
                    servable_id(name, version),
                    entry.error_message,
                )
        self._unload_unwanted(name, model)

    # -- loading and unloading ----------------------------------------------------------------

    def _start_load(
        self, name: str, model: _Model, version: int, path: str, stamp: Fingerprint | None
    ) -> None:
        entry = _Version(version, path, stamp)
        model.versions[version] = entry
        if model.config is not None and model.config.model_platform != "tensorflow":
            platform = model.config.model_platform
            self._finish_load(
                name, entry, None, "UNIMPLEMENTED", f"Unsupported platform {platform}"
            )
            return
        log.info("Approving load for servable version %s", servable_id(name, version))
        self._pool.submit(self._load, name, entry)

    def _load(self, name: str, entry: _Version) -> None:
        with self._lock:
            if entry.cancelled:
                self._finish_load(name, entry, None, "OK", "")
                return
            entry.state = LOADING
        log.info(
            "Loading servable version %s from %s", servable_id(name, entry.version), entry.path
        )
        try:
            servable = self._loader(name, entry.version, entry.path)
        except ServingError as error:
            self._finish_load(name, entry, None, error.code, error.message)
        except Exception as error:  # a loader bug or a TF failure: report it in the status
            self._finish_load(name, entry, None, "UNKNOWN", f"{type(error).__name__}: {error}")
        else:
            self._finish_load(name, entry, servable, "OK", "")

    def _finish_load(
        self, name: str, entry: _Version, servable: Servable | None, code: str, message: str
    ) -> None:
        sid = servable_id(name, entry.version)
        with self._lock:
            entry.state, entry.error_code, entry.error_message = END, code, message
            if code != "OK":
                log.error("Loading servable version %s failed: %s: %s", sid, code, message)
            elif entry.cancelled:
                log.info("Servable version %s is no longer wanted: discarded it", sid)
            else:
                entry.state, entry.servable = AVAILABLE, servable
                log.info("Successfully loaded servable version %s", sid)
            model = self._models.get(name)
            if model is not None:
                self._unload_unwanted(name, model)  # an old version may have waited for this one

    def _unload_unwanted(self, name: str, model: _Model, force: bool = False) -> None:
        unwanted = [
            e
            for v, e in model.versions.items()
            if v not in model.aspired and e.state in (START, LOADING, AVAILABLE) and not e.cancelled
        ]
        if not unwanted:
            return
        aspired = [e for v, e in model.versions.items() if v in model.aspired]
        # Like TF Serving's availability-preserving policy: keep serving the old version until a
        # new one is available or none is still on its way.
        waiting = any(e.state in (START, LOADING) for e in aspired)
        if not force and waiting and not any(e.state == AVAILABLE for e in aspired):
            return
        for entry in unwanted:
            if entry.state == AVAILABLE:
                entry.state = UNLOADING
                log.info("Unloading servable version %s", servable_id(name, entry.version))
                self._pool.submit(self._unload, name, entry)
            else:
                entry.cancelled = True

    def _unload(self, name: str, entry: _Version) -> None:
        with self._lock:
            # Requests still running keep their own reference; memory goes when they finish.
            entry.servable = None
            entry.state = END
            log.info("Done unloading servable version %s", servable_id(name, entry.version))

    # -- queries ------------------------------------------------------------------------------

    def _label_version(self, name: str, label: str) -> int:
        model = self._models.get(name)
        labels = model.config.version_labels if model and model.config else {}
        if label not in labels:
            raise invalid(f"Unrecognized servable version label: {label}")
        return labels[label]

    def servable(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable answering a request: a given version, a label's, or the latest."""
        with self._lock:
            if label is not None:
                version = self._label_version(name, label)
            model = self._models.get(name)
            entries = model.versions if model else {}
            if version is None:
                available = [v for v, e in entries.items() if e.state == AVAILABLE]
                if not available:
                    raise not_found(f"Servable not found for request: Latest({name})")
                version = max(available)
            entry = entries.get(version)
            if entry is None or entry.state != AVAILABLE or entry.servable is None:
                raise not_found(f"Servable not found for request: Specific({name}, {version})")
            return entry.servable

    def status(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]:
        """Version states, newest first, as TF Serving's GetModelStatus reports them."""
        with self._lock:
            if label is not None:
                version = self._label_version(name, label)
            model = self._models.get(name)
            if model is None or not model.versions:
                raise not_found(f"Could not find any versions of model {name}")
            entries = sorted(model.versions.items(), reverse=True)
            if version is not None:
                entries = [(v, e) for v, e in entries if v == version]
                if not entries:
                    raise not_found(f"Could not find version {version} of model {name}")
            return [VersionStatus(v, e.state, e.error_code, e.error_message) for v, e in entries]

    def all_statuses(self) -> dict[str, list[VersionStatus]]:
        """`status(name)` of every model that has versions, in one consistent read."""
        with self._lock:
            return {
                name: [
                    VersionStatus(v, e.state, e.error_code, e.error_message)
                    for v, e in sorted(model.versions.items(), reverse=True)
                ]
                for name, model in self._models.items()
                if model.versions
            }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
