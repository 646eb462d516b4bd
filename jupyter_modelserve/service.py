"""ServeService: the one place where the rules live.

Every front door (REST handlers, the `%serve` magic, the panel) calls this class. It checks the
registry, tells the backend what to run, and folds what the backend observes into the `serve`
rows, so what it reports is what is running. All methods block: call them from a thread when on
an event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .backends.base import Backend, Observation, Observed, ServeSpec
from .errors import BackendUnavailable, InvalidInput, ModelServeError, NotFound, ServeFailed
from .registration import RegistryRules
from .registry.store import RegistryStore, ServeRecord
from .schemas import (
    SUPPORTED_MODEL_TYPES,
    ServeState,
    ServeView,
)

log = logging.getLogger(__name__)

_IN_PROGRESS = (ServeState.PENDING, ServeState.LOADING)
# How long a starting serve may miss objects before that counts as "they vanished".
APPLY_GRACE_SECONDS = 30.0
_OBSERVED_TO_STATE = {
    Observed.STARTING: ServeState.PENDING,
    Observed.LOADING: ServeState.LOADING,
    Observed.AVAILABLE: ServeState.AVAILABLE,
    Observed.FAILED: ServeState.FAILED,
}


class ServeService(RegistryRules):
    def __init__(
        self,
        store: RegistryStore,
        backend: Backend,
        artifact_root: str | Path,
        load_timeout: float = 300.0,
        delete_timeout: float = 60.0,
    ) -> None:
        self.store = store
        self.backend = backend
        self.artifact_root = Path(artifact_root)
        self.load_timeout = load_timeout
        self.delete_timeout = delete_timeout
        self._locks: dict[tuple[str, int], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Held while desired state changes together with the backend (create, delete, sync,
        # re-apply), so a reconcile in one thread never undoes a delete in another.
        self._desired = threading.RLock()

    def close(self) -> None:
        self.backend.close()
        self.store.close()

    # -- serves ------------------------------------------------------------------------------

    def create(self, name: str, version: int) -> ServeView:
        """Serve (name, version); idempotent: a live serve is returned as it is."""
        with self._serialized(name, version):
            model_version = self.store.get_model_version(name, version)
            if model_version.model_type not in SUPPORTED_MODEL_TYPES:
                raise InvalidInput(
                    f"modelType: {model_version.model_type!r} cannot be served; "
                    f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
                )
            spec = ServeSpec(name, version, model_version.source)
            self.backend.validate(spec)  # a 400 before anything is created
            record, created = self.store.insert_serve(name, version, self.backend.name, None)
            if not created:
                if record.state is ServeState.DELETING:
                    raise BackendUnavailable(
                        f"model {name!r} version {version} is being deleted; "
                        "create it again once the delete finished"
                    )
                if record.state is ServeState.FAILED:
                    # A retry: take the failed deployment down first, so the backend loads it
                    # afresh instead of keeping its failed attempt.
                    self._remove_and_confirm(spec)
                else:
                    current = self._refresh(record)
                    if current is not None:
                        return current
            with self._desired:
                try:
                    self.backend.apply(spec)
                except BaseException:
                    if created:  # nothing half-done: no row, and nothing of a deployment
                        self._undo_apply(spec)
                        self.store.delete_serve(name, version)
                    raise
                updated = self.store.update_serve(
                    name, version, ServeState.PENDING, None, self.backend.url_for(spec)
                )
            view = self._refresh(updated) if updated is not None else None
            if view is None:
                raise NotFound(f"model {name!r} version {version} was deleted while being created")
            return view

    def delete(self, name: str, version: int) -> None:
        """Stop serving (name, version); returns once the backend confirmed it is gone."""
        with self._serialized(name, version):
            record = self._record(name, version)
            spec = _spec(record)
            with self._desired:
                self.store.update_serve(name, version, ServeState.DELETING, None)
            self._remove_and_confirm(spec)
            self.store.delete_serve(name, version)

    def get(self, name: str, version: int) -> ServeView:
        view = self._refresh(self._record(name, version))
        if view is None:
            raise NotFound(f"model {name!r} version {version} is not served (it was just deleted)")
        return view

    def list_serves(self) -> list[ServeView]:
        """Every serve, each refreshed from the backend (no orphan sweep: that is reconcile's)."""
        records = [r for r in self.store.list_serves() if r.backend == self.backend.name]
        views = (self._refresh(record) for record in records)
        return [view for view in views if view is not None]

    def logs(self, name: str, version: int, tail: int = 100) -> list[str]:
        """The backend's last `tail` log lines about a serve."""
        return self.backend.logs(_spec(self._record(name, version)), tail)

    def endpoint(self, name: str, version: int) -> tuple[str, int]:
        """Where the Jupyter server reaches a serve's TF Serving API, and its servable version."""
        spec = _spec(self._record(name, version))
        return self.backend.endpoint(spec), spec.servable_version

    def wait(
        self,
        name: str,
        version: int,
        timeout: float,
        on_progress: Callable[[ServeView], None] | None = None,
    ) -> ServeView:
        """Wait until AVAILABLE (returned), FAILED (raised) or `timeout` (current view).

        `on_progress` sees every view that is not settled yet (the magic's progress bar).
        """
        deadline = time.monotonic() + timeout
        view = self.get(name, version)
        for _ in backoff(deadline):
            if view.state is ServeState.AVAILABLE:
                return view
            if view.state is ServeState.FAILED:
                raise ServeFailed(f"model {name!r} version {version} FAILED: {view.reason}")
            if on_progress is not None:
                on_progress(view)
            view = self.get(name, version)
        return view

    def reconcile(self) -> list[ServeView]:
        """Align rows and backend: drop what no row wants, then refresh every serve.

        Run at start-up and periodically by the Jupyter server only; reads refresh without the
        sweep, so busy readers (a panel, a kernel) never race another process's creates.
        """
        with self._desired:
            records = [r for r in self.store.list_serves() if r.backend == self.backend.name]
            wanted = [_spec(r) for r in records if r.state is not ServeState.DELETING]
            self.backend.sync(wanted)
        return self.list_serves()

    # -- internals ---------------------------------------------------------------------------

    def _undo_apply(self, spec: ServeSpec) -> None:
        try:
            self.backend.remove(spec)
        except Exception:  # the apply's own error is the one to report; sync cleans up later
            log.warning(
                "Could not clean up after a failed create of %s %s", spec.name, spec.version
            )

    def _remove_and_confirm(self, spec: ServeSpec) -> None:
        """Remove a deployment and wait until the backend reports nothing left of it."""
        with self._desired:
            self.backend.remove(spec)
        deadline = time.monotonic() + self.delete_timeout
        for _ in backoff(deadline):
            if self.backend.status(spec).state is Observed.ABSENT:
                return
        raise BackendUnavailable(
            f"model {spec.name!r} version {spec.version} is still being removed after "
            f"{self.delete_timeout:.0f} s; it stays DELETING until the backend confirms"
        )

    def _record(self, name: str, version: int) -> ServeRecord:
        record = self.store.get_serve(name, version)
        if record is None:
            self.store.get_model_version(name, version)  # 404 for an unknown model first
            raise NotFound(f"model {name!r} version {version} is not served")
        return record

    def _refresh(self, record: ServeRecord) -> ServeView | None:
        """Fold the backend's observation into the row; None when the row is gone."""
        spec = _spec(record)
        observation = self.backend.status(spec)
        if record.state is ServeState.DELETING:
            if observation.state is Observed.ABSENT:  # a delete that did not finish, now done
                self.store.delete_serve(record.model_name, record.model_version)
                return None
            return _view(record)
        state, reason = self._fold(record, observation)
        with self._desired:
            lost = state is ServeState.PENDING and observation.state is Observed.ABSENT
            if lost and self.backend.restarts_lost_serves:
                # The backend lost it (a crash, a manual edit): serve it again, unless a delete
                # got there first.
                latest = self.store.get_serve(record.model_name, record.model_version)
                if latest is None or latest.state is ServeState.DELETING:
                    return _view(latest) if latest is not None else None
                try:
                    self.backend.apply(spec)
                except ModelServeError as error:
                    state, reason = ServeState.FAILED, f"could not start it again: {error}"
            url = self.backend.url_for(spec)  # after apply: a restarted server may have moved
            current: ServeRecord | None = record
            if (state, reason, url) != (record.state, record.reason, record.url):
                current = self.store.update_serve(
                    record.model_name, record.model_version, state, reason, url, record.state
                )
        return _view(current) if current is not None else None

    def _fold(self, record: ServeRecord, observation: Observation) -> tuple[ServeState, str | None]:
        if observation.state in (Observed.ABSENT, Observed.PARTIAL):
            if record.state is ServeState.FAILED:
                return record.state, record.reason
            starting = (_now() - record.state_since).total_seconds() < APPLY_GRACE_SECONDS
            if record.state in _IN_PROGRESS and starting:
                # Another thread or process may be creating its objects right now: missing
                # pieces of a serve this young are not news yet.
                return ServeState.PENDING, "its objects are being created"
            if observation.state is Observed.PARTIAL:
                return ServeState.FAILED, (
                    f"{observation.reason}; delete the serve and create it again"
                )
            if not self.backend.restarts_lost_serves:
                return ServeState.FAILED, (
                    f"it is gone from the {self.backend.name} backend ({observation.reason}); "
                    "delete the serve and create it again"
                )
            state = ServeState.PENDING
            reason: str | None = (
                f"not running on the backend, starting it again ({observation.reason})"
            )
        else:
            state = _OBSERVED_TO_STATE[observation.state]
            reason = None if state is ServeState.AVAILABLE else observation.reason
        if record.state is ServeState.FAILED and state in _IN_PROGRESS:
            # FAILED is final until a retry (POST again): a backend still trying does not make
            # it LOADING again, or waiters would see FAILED, then LOADING, then FAILED...
            return record.state, record.reason
        if state in _IN_PROGRESS:
            waited = (_now() - record.state_since).total_seconds()
            if record.state in _IN_PROGRESS and waited > self.load_timeout:
                return ServeState.FAILED, (
                    f"not AVAILABLE after {self.load_timeout:.0f} s; last seen: "
                    f"{state.value} ({observation.reason or 'no detail'})"
                )
        return state, reason

    @contextmanager
    def _serialized(self, name: str, version: int) -> Iterator[None]:
        # In-process: one create/delete per (name, version) at a time. Across processes the
        # serve table's primary key and the backend's own lock keep it to one deployment.
        with self._locks_guard:
            lock = self._locks.setdefault((name, version), threading.Lock())
        with lock:
            yield


def _spec(record: ServeRecord) -> ServeSpec:
    return ServeSpec(record.model_name, record.model_version, record.source)


def _view(record: ServeRecord) -> ServeView:
    return ServeView(
        model_name=record.model_name,
        model_version=record.model_version,
        state=record.state,
        reason=record.reason,
        url=record.url,
        backend=record.backend,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def backoff(deadline: float, first: float = 0.02, longest: float = 0.5) -> Iterator[None]:
    """Yield until `deadline`, pausing a little longer each time: polling with a deadline."""
    pause = first
    while time.monotonic() < deadline:
        yield
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, longest)
