"""One reconciler per registry: whichever process holds the lease row reconciles, the rest read.

The Jupyter server, every kernel using the Python API or `%serve`, and the CLI share one registry
and one backend. If each of them swept orphans and restarted serves, two would race each other
(one sweeping what another was creating). Instead each long-lived process ticks `Reconciler.tick`
every `TICK_SECONDS`: the tick renews (or takes over a lapsed) lease in the registry database,
and only the holder reconciles: every `interval` seconds, at once when a reader asked for it
(`request`), or when the backend reports a crash it can see locally (`needs_attention`).
A kernel with no Jupyter server running therefore still heals its serves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .errors import ModelServeError

if TYPE_CHECKING:
    from .service import ServeService

log = logging.getLogger(__name__)

LEASE = "reconciler"
TICK_SECONDS = 1.0
# A holder that stops renewing (killed, hung) loses the role after this long.
LEASE_TTL_SECONDS = 10.0
# Readers in other processes write a request at most this often.
REQUEST_EVERY_SECONDS = 1.0


class Reconciler:
    def __init__(
        self, service: ServeService, interval: float, lease_ttl: float = LEASE_TTL_SECONDS
    ) -> None:
        self.service = service
        self.interval = interval
        self.lease_ttl = lease_ttl
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = threading.Event()
        self._next_due = 0.0  # monotonic; 0: reconcile at the first tick that holds the lease
        self._last_started: datetime | None = None
        self._last_request_sent = 0.0
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None

    @property
    def is_holder(self) -> bool:
        return self._held

    def tick(self) -> bool:
        """Renew or take the lease, and reconcile when due; True when it reconciled. Blocks."""
        store = self.service.store
        self._held = store.leases.acquire(LEASE, self.holder, self.lease_ttl)
        if not self._held or not self._due():
            return False
        self._wake.clear()
        self._last_started = datetime.now(timezone.utc)
        self._next_due = time.monotonic() + self.interval if self.interval > 0 else float("inf")
        self.service.reconcile()
        return True

    def request(self) -> None:
        """Ask for a reconcile soon: wakes this process's own, and tells another holder."""
        self._wake.set()
        if self.is_holder:
            return
        now = time.monotonic()
        if now - self._last_request_sent < REQUEST_EVERY_SECONDS:
            return
        self._last_request_sent = now
        try:
            self.service.store.leases.request(LEASE)
        except ModelServeError as error:  # the holder's own schedule still comes
            log.debug("Could not ask the reconciler to run: %s", error)

    def _due(self) -> bool:
        if self._wake.is_set() or time.monotonic() >= self._next_due:
            return True
        requested = self.service.store.leases.requested_at(LEASE)
        if requested is not None and (self._last_started is None or requested > self._last_started):
            return True
        try:
            return self.service.backend.needs_attention()
        except Exception:  # a check that fails is a reason to look, not to stop
            return True

    # -- a thread of its own, for processes without an event loop of ours (kernels) --------------

    def start_thread(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="modelserve-reconciler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.safe_tick()
            self._stop.wait(TICK_SECONDS)

    def safe_tick(self) -> None:
        """`tick`, logging instead of raising: a reconcile must never take its process down."""
        try:
            self.tick()
            self._last_error = None
        except ModelServeError as error:
            if error.message != self._last_error:  # once per new problem, not once a second
                log.warning("jupyter_modelserve: reconcile failed: %s", error.message)
            self._last_error = error.message
        except Exception:
            log.exception("jupyter_modelserve: reconcile failed")

    def stop(self) -> None:
        """Stop ticking and hand the lease on at once rather than after it lapses."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._held:
            self._held = False
            with contextlib.suppress(ModelServeError):  # else it lapses by itself
                self.service.store.leases.release(LEASE, self.holder)
