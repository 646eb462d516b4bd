"""ServeService: the one place where the serve rules live.

Every front door (REST handlers, the `%serve` magic, the panel, the Python API) calls this class.
It checks the registry, tells the backend what to run, and folds what the backend observes into
the `serve` rows, so what it reports is what is running. All methods block: call them from a
thread when on an event loop.

Reads only read: they never start, restart or remove anything. Changing what runs is a request
(create, delete) or the reconciler's job (`reconcile`, run by whichever process holds the
reconciler lease; see `reconciler.py`). Locks are per serve, never process-wide, and wait at most
`lock_timeout` seconds before answering 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import NoReturn

from . import serve_details
from .backends.base import Backend, Observation, Observed, ServeSpec
from .errors import BackendUnavailable, Conflict, InvalidInput, ModelServeError, NotFound
from .locks import KeyedLocks
from .reconciler import Reconciler
from .registry.model_registry import DEFAULT_MAX_ARTIFACT_BYTES, ModelRegistry
from .registry.rows import ServeRecord
from .registry.store import RegistryStore
from .schemas import SUPPORTED_MODEL_TYPES, ServeState, ServeView, SignatureView
from .servestate import failure, fold, settled, view_of
from .sweepbrake import older_than_registry

log = logging.getLogger(__name__)

Key = tuple[str, int]


class ServeService:
    def __init__(
        self,
        store: RegistryStore,
        backend: Backend,
        artifact_root: str | Path,
        load_timeout: float = 300.0,
        delete_timeout: float = 60.0,
        status_timeout: float = 3.0,
        lock_timeout: float = 90.0,
        reconcile_interval: float = 30.0,
        max_artifact_bytes: int = DEFAULT_MAX_ARTIFACT_BYTES,
        max_orphan_sweep: int = 10,
    ) -> None:
        self.store = store
        # The registry's rules, composed: the serve rules ask it nothing the store cannot
        # answer, and front doors reach registered models through it.
        self.registry = ModelRegistry(store, artifact_root, lock_timeout, max_artifact_bytes)
        self.backend = backend
        self.load_timeout = load_timeout
        self.delete_timeout = delete_timeout
        self.status_timeout = status_timeout
        self.lock_timeout = lock_timeout
        # Most orphans one reconcile removes; more are refused and logged.
        self.max_orphan_sweep = max_orphan_sweep
        # The last refusal logged (why, which serves), so it is logged once per situation.
        self._sweep_refusal: tuple[str, list[Key]] | None = None
        self._serve_locks: KeyedLocks[Key] = KeyedLocks(
            lock_timeout, lambda key: f"model {key[0]!r} version {key[1]}"
        )
        self.reconciler = Reconciler(self, interval=reconcile_interval)

    def close(self) -> None:
        self.reconciler.stop()
        self.backend.close()
        self.store.close()

    # -- serves ------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        version: int,
        wait: float = 0.0,
        on_progress: Callable[[ServeView], None] | None = None,
    ) -> ServeView:
        """Serve (name, version); idempotent: a live serve is returned as it is.

        With `wait`, block until it is AVAILABLE (returned), FAILED (ServeFailed) or `wait`
        seconds passed (the current view; `servestate.not_ready` says so). `on_progress` sees
        every view on the way (the magic's progress bar).
        """
        view = self._create(name, version)
        return self.wait(name, version, wait, on_progress) if wait else view

    def _create(self, name: str, version: int) -> ServeView:
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
                self._refuse_foreign(record)
                if record.state is ServeState.DELETING:
                    raise BackendUnavailable(
                        f"model {name!r} version {version} is being deleted; "
                        "create it again once the delete finished"
                    )
                observation = self._observe([record])[_key(record)]
                if record.state is ServeState.FAILED or observation.state is Observed.FAILED:
                    # A retry: take the failed deployment down first, so the backend loads it
                    # afresh instead of keeping its failed attempt.
                    self._remove_and_confirm(spec)
                elif observation.state not in (Observed.ABSENT, Observed.PARTIAL):
                    return self._fold_and_store(record, observation) or _gone(name, version)
                # Else asked to serve what is not running (a crash, a manual edit): apply again.
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
            if updated is None:
                _gone(name, version)
            return self._refresh(updated)

    def delete(self, name: str, version: int) -> None:
        """Stop serving (name, version); returns once the backend confirmed it is gone."""
        self.start_delete(name, version)
        deadline = time.monotonic() + self.delete_timeout
        for _ in backoff(deadline):
            if self.finish_delete(name, version):
                return
        raise self.still_deleting(name, version)

    def start_delete(self, name: str, version: int) -> None:
        """Mark the serve DELETING and ask the backend to remove it; `finish_delete` confirms.

        From here on a create of the same serve is refused until the delete finished.
        """
        with self._serialized(name, version):
            record = self._record(name, version)
            self.store.update_serve(name, version, ServeState.DELETING, None)
            self.backend.remove(_spec(record))

    def finish_delete(self, name: str, version: int) -> bool:
        """True once the backend reports nothing left and the row is gone (one bounded read)."""
        record = self.store.get_serve(name, version)
        if record is None:
            return True
        observed = self._observe([record])[_key(record)]
        if observed.state is not Observed.ABSENT:
            return False
        self.store.delete_serve(name, version)
        return True

    def still_deleting(self, name: str, version: int) -> BackendUnavailable:
        return BackendUnavailable(
            f"model {name!r} version {version} is still being removed after "
            f"{self.delete_timeout:.0f} s; it stays DELETING until the backend confirms"
        )

    def get(self, name: str, version: int) -> ServeView:
        return self._refresh(self._record(name, version))

    def describe(self, name: str, version: int) -> ServeView:
        """`get` plus the model's signature, an example predict body and the serve's metrics
        (GET one; lists never pay for these reads). See serve_details.py."""
        return serve_details.describe(self, name, version)

    def signature(self, name: str, version: int) -> SignatureView | None:
        """The serving signature of a registered version, served or not (None: unknown yet)."""
        return serve_details.signature(self, name, version)

    def list_serves(self, limit: int | None = None, offset: int = 0) -> list[ServeView]:
        """A page of serves, refreshed from the backend in one bounded read.

        One bad row never breaks the list: a serve whose status cannot be read is listed with
        the reason instead.
        """
        records = self.store.list_serves(self.backend.name, limit, offset)
        observations = self._observe(records)
        views = []
        for record in records:
            try:
                view = self._fold_and_store(record, observations[_key(record)])
            except ModelServeError as error:
                view = self._view(record, reason=f"its status cannot be read: {error.message}")
            except Exception:
                log.exception("Reading serve %s %s failed", *_key(record))
                view = self._view(record, reason="its status cannot be read; see the server log")
            if view is not None:
                views.append(view)
        return views

    def logs(self, name: str, version: int, tail: int = 100) -> list[str]:
        """The backend's last `tail` log lines about a serve."""
        return self.backend.logs(_spec(self._record(name, version)), tail)

    def endpoint(self, name: str, version: int) -> tuple[str, int]:
        """Where the Jupyter server reaches a serve's TF Serving API, and its servable version."""
        spec = _spec(self._record(name, version))
        return self.backend.endpoint(spec), self.backend.served_version(spec)

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
            if settled(view):
                break
            if on_progress is not None:
                on_progress(view)
            view = self.get(name, version)
        if view.state is ServeState.FAILED:
            raise failure(view)
        return view

    # -- reconciling (the reconciler lease holder only) ----------------------------------------

    def reconcile(self) -> None:
        """Make the backend run what the rows want: drop orphans, finish interrupted deletes,
        start what was accepted but is not running, and fold every status into its row.

        Called by `Reconciler` in the one process that holds the lease. What the backend runs
        is read before the rows: anything a concurrent create deployed already has its row.
        """
        deployed = set(self.backend.deployed())
        records = self.store.list_serves(self.backend.name)
        wanted = {_key(r): r for r in records if r.state is not ServeState.DELETING}
        for name, version in self._orphans_to_sweep(sorted(deployed - set(wanted))):
            self._remove_orphan(name, version)
        observations = self._observe([r for r in records])
        for record in records:
            observation = observations[_key(record)]
            try:
                if record.state is ServeState.DELETING:
                    if observation.state is not Observed.ABSENT:
                        self.backend.remove(_spec(record))
                elif self._should_start(record, observation):
                    self._start_again(record)
            except ModelServeError as error:  # one serve's trouble must not stop the others
                log.warning("Reconciling %s %s: %s", record.model_name, record.model_version, error)
        running = [
            _spec(r)
            for r in records
            if r.state not in (ServeState.DELETING, ServeState.FAILED)
            and r.url is not None
            and observations[_key(r)].state is not Observed.ABSENT
        ]
        try:
            self.backend.refresh(running)
        except ModelServeError as error:
            log.warning("Bringing running serves to the current settings: %s", error)
        self.list_serves()

    def request_reconcile(self) -> None:
        """Ask the reconciler (in this process or another one) to run soon."""
        self.reconciler.request()

    def _should_start(self, record: ServeRecord, observation: Observation) -> bool:
        if observation.state is not Observed.ABSENT or record.state is ServeState.FAILED:
            return False
        # Never applied (its creator died before it could): start it, whatever the backend.
        # Applied and gone: a crashed local model server is restarted; objects deleted from a
        # cluster behind our back are reported FAILED instead.
        return record.url is None or self.backend.restarts_lost_serves

    def _start_again(self, record: ServeRecord) -> None:
        with self._serialized(record.model_name, record.model_version, timeout=1.0):
            latest = self.store.get_serve(record.model_name, record.model_version)
            if latest is None or latest.state in (ServeState.DELETING, ServeState.FAILED):
                return
            spec = _spec(latest)
            try:
                self.backend.validate(spec)  # a row from an older, laxer version may not pass
                self.backend.apply(spec)
            except ModelServeError as error:
                self.store.update_serve(
                    spec.name, spec.version, ServeState.FAILED, f"could not start it: {error}"
                )
                return
            if latest.url is None:
                url = self.backend.url_for(spec)
                self.store.update_serve(spec.name, spec.version, latest.state, None, url)

    def _orphans_to_sweep(self, orphans: list[Key]) -> list[Key]:
        """The orphans this reconcile may remove.

        None from a registry this process created when the backend's deployments outlive a
        registry (a cluster: an empty registry beside labelled objects is a lost database far
        more often than real orphans), none when there are more than `max_orphan_sweep`, and
        never one deployed before the registry was created (`sweepbrake`). Each refusal is
        logged with why, once per situation.
        """
        if not orphans:
            self._sweep_refusal = None
            return []
        refusal: str | None = None
        kept = orphans
        if self.store.created_here and self.backend.outlives_registry:
            refusal = (
                f"{len(orphans)} deployed serve(s) have no row in the registry, but this process "
                "created the registry database: keeping them (a new or lost database must not "
                "delete what another registry deployed); delete them by hand if they are garbage"
            )
        elif len(orphans) > self.max_orphan_sweep:
            refusal = (
                f"{len(orphans)} deployed serves have no row in the registry, more than "
                f"c.ModelServeApp.max_orphan_sweep = {self.max_orphan_sweep}: removing none "
                "(was the registry database replaced?); raise the limit to remove them"
            )
        else:  # objects older than the registry are a lost database's, whoever created this one
            kept = older_than_registry(orphans, self.backend.deployed_since, self.store)
            if kept:
                refusal = (
                    "deployed before this registry was created (by another, maybe lost, "
                    "registry): keeping them; delete them by hand if they are garbage"
                )
        if refusal is not None and (refusal, kept) != self._sweep_refusal:
            log.warning("Not removing orphaned serves %s: %s", _keys_text(kept), refusal)
        self._sweep_refusal = (refusal, kept) if refusal is not None else None
        return [key for key in orphans if key not in kept]

    def _remove_orphan(self, name: str, version: int) -> None:
        try:
            with self._serialized(name, version, timeout=1.0):
                if self.store.get_serve(name, version) is None:  # still nobody's
                    log.info("Removing %s %s: no serve row wants it", name, version)
                    self.backend.remove(ServeSpec(name, version, ""))
        except ModelServeError as error:
            log.warning("Could not remove orphaned %s %s: %s", name, version, error)

    # -- internals ---------------------------------------------------------------------------

    def _observe(self, records: Sequence[ServeRecord]) -> dict[Key, Observation]:
        """What the backend runs for each record, in one read bounded by `status_timeout`."""
        specs = [_spec(r) for r in records]
        try:
            found = self.backend.statuses(specs, self.status_timeout)
        except ModelServeError as error:
            unknown = Observation(Observed.UNKNOWN, error.message)
            return {(s.name, s.version): unknown for s in specs}
        missing = Observation(Observed.UNKNOWN, f"the {self.backend.name} backend said nothing")
        return {(s.name, s.version): found.get((s.name, s.version), missing) for s in specs}

    def _refresh(self, record: ServeRecord) -> ServeView:
        view = self._fold_and_store(record, self._observe([record])[_key(record)])
        if view is None:
            _gone(record.model_name, record.model_version)
        return view

    def _fold_and_store(self, record: ServeRecord, observation: Observation) -> ServeView | None:
        """Fold an observation into the row; the row as it now reads, or None when it is gone."""
        if record.state is ServeState.DELETING and observation.state is Observed.ABSENT:
            # A delete that did not finish (its process died), now done by the backend.
            self.store.delete_serve(record.model_name, record.model_version)
            return None
        folded = fold(
            record,
            observation,
            self.load_timeout,
            self.backend.name,
            self.backend.restarts_lost_serves,
        )
        if folded.transient:  # the backend could not be asked: say so, change nothing
            return self._view(record, reason=folded.reason)
        if folded.restart_wanted:
            self.request_reconcile()
        # A url the cluster reports (an Ingress's or LoadBalancer's address) replaces the one
        # known at create time; no news keeps it.
        url = observation.url if observation.url != record.url else None
        if (folded.state, folded.reason) == (record.state, record.reason) and url is None:
            return self._view(record)
        current = self.store.update_serve(
            record.model_name, record.model_version, folded.state, folded.reason, url, record.state
        )
        return self._view(current) if current is not None else None

    def _view(self, record: ServeRecord, reason: str | None = None) -> ServeView:
        """`view_of` plus the gRPC address, known once the serve was applied (as its url)."""
        grpc_url = self.backend.grpc_address(_spec(record)) if record.url is not None else None
        return view_of(record, reason, grpc_url)

    def _undo_apply(self, spec: ServeSpec) -> None:
        try:
            self.backend.remove(spec)
        except Exception:  # the apply's own error is the one to report; reconcile cleans up
            log.warning(
                "Could not clean up after a failed create of %s %s", spec.name, spec.version
            )

    def _remove_and_confirm(self, spec: ServeSpec) -> None:
        """Remove a deployment and wait until the backend reports nothing left of it."""
        self.backend.remove(spec)
        deadline = time.monotonic() + self.delete_timeout
        key = (spec.name, spec.version)
        for _ in backoff(deadline):
            observed = self.backend.statuses([spec], self.status_timeout).get(key)
            if observed is not None and observed.state is Observed.ABSENT:
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
        self._refuse_foreign(record)
        return record

    def _refuse_foreign(self, record: ServeRecord) -> None:
        """A serve another backend runs (the server was switched) is left alone, never read,
        redeployed or deleted through this one."""
        if record.backend != self.backend.name:
            raise Conflict(
                f"model {record.model_name!r} version {record.model_version} is served by the "
                f"{record.backend} backend, not this server's {self.backend.name} backend; "
                f"manage it from a server with c.ModelServeApp.backend = {record.backend!r}"
            )

    def _serialized(
        self, name: str, version: int, timeout: float | None = None
    ) -> AbstractContextManager[None]:
        """One create/delete/restart per serve at a time in this process, never waiting forever.

        Across processes the serve table's primary key, compare-and-set updates and the
        backend's own lock keep it to one deployment.
        """
        return self._serve_locks.hold((name, version), timeout)


def _keys_text(keys: Sequence[Key], shown: int = 5) -> str:
    text = ", ".join(f"{name} {version}" for name, version in keys[:shown])
    return text + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def _key(record: ServeRecord) -> Key:
    return (record.model_name, record.model_version)


def _spec(record: ServeRecord) -> ServeSpec:
    return ServeSpec(record.model_name, record.model_version, record.source)


def _gone(name: str, version: int) -> NoReturn:
    raise NotFound(f"model {name!r} version {version} is not served (it was just deleted)")


def backoff(deadline: float, first: float = 0.02, longest: float = 0.5) -> Iterator[None]:
    """Yield until `deadline`, pausing a little longer each time: polling with a deadline."""
    pause = first
    while time.monotonic() < deadline:
        yield
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, longest)
