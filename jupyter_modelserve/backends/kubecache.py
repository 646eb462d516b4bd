"""A watch-backed cache of the Deployments, ReplicaSets, Pods and Services of one server's serves.

Status reads (GET lists, `?wait` polls, the reconciler) would otherwise cost four list calls
each; with the cache they cost none once it is synced. One thread per kind lists once, then
watches from that list's resourceVersion; a 410 Gone (the server forgot that version) lists
again. Until a kind is synced, after a watch error, or when the identity may not watch
(403: deploy/rbac.yaml without the watch verbs), `items()` answers None and the caller lists
as before: the cache only ever saves calls, it is never the only way to read.

A watch can break without an error (a dead connection, a stuck proxy): the server ends every
watch after `WATCH_SECONDS` and sends bookmarks meanwhile, the client gives up a read silent
for `WATCH_SECONDS` + a margin, and a kind not heard from (list, event, bookmark, the server
ending a watch) for `STALE_AFTER` seconds counts as unsynced, so reads fall back to lists.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kubeapi import KubeApi

log = logging.getLogger(__name__)

KINDS = ("Deployment", "ReplicaSet", "Pod", "Service")
WATCH_SECONDS = 60  # the server ends each watch after this; we then resume from where it was
READ_MARGIN = 15.0  # seconds past WATCH_SECONDS before the client gives a silent watch up
STALE_AFTER = WATCH_SECONDS + 2 * READ_MARGIN  # silence after which a kind is not believed
ERROR_PAUSE = 5.0  # seconds before listing again after a failure (the API server is struggling)
CLOSE_TIMEOUT = 2.0  # seconds close() waits for all threads together (they are daemons)


class KubeCache:
    """Objects of `KINDS` that `selector` selects in the namespace of `api`."""

    def __init__(
        self,
        api: KubeApi,
        selector: str,
        stale_after: float = STALE_AFTER,
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        self.api = api
        self.selector = selector
        self.stale_after = stale_after
        self.watch_seconds = watch_seconds
        self._heard: dict[str, float] = dict.fromkeys(KINDS, 0.0)  # monotonic, per kind
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self._synced: dict[str, bool] = dict.fromkeys(KINDS, False)
        self._forbidden: set[str] = set()
        self._stop = threading.Event()
        self._watches: dict[str, Any] = {}
        self._resume_from: str | None = None
        self._threads = [
            threading.Thread(
                target=self._run, args=(kind,), name=f"modelserve-watch-{kind}", daemon=True
            )
            for kind in KINDS
        ]

    def start(self, resume_from: str | None = None) -> KubeCache:
        """Start listing and watching; `resume_from`: watch from that resourceVersion first
        instead of listing (an old one is answered 410 Gone, and the kind is listed again)."""
        self._resume_from = resume_from
        for thread in self._threads:
            thread.start()
        return self

    def items(self, kind: str) -> list[Any] | None:
        """The cached objects of `kind`, or None when the cache cannot answer for it."""
        with self._lock:
            if not self._fresh(kind):
                return None
            return list(self._items[kind].values())

    def synced(self) -> bool:
        with self._lock:
            return all(self._fresh(kind) for kind in KINDS)

    def _fresh(self, kind: str) -> bool:
        """Synced, and heard from within `stale_after` (call with the lock held)."""
        silent = time.monotonic() - self._heard.get(kind, 0.0)
        return bool(self._synced.get(kind)) and silent <= self.stale_after

    def _heard_from(self, kind: str) -> None:
        with self._lock:
            self._heard[kind] = time.monotonic()

    def forbidden(self) -> set[str]:
        with self._lock:
            return set(self._forbidden)

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Stop every watch and wait for the threads to end, `timeout` seconds in all: a thread
        blocked in a list that does not answer ends with that list (it is a daemon)."""
        self._stop.set()
        with self._lock:
            watches = list(self._watches.values())
        for watch in watches:
            watch.stop()  # shuts its socket down: the blocked read returns at once
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    # -- one thread per kind ---------------------------------------------------------------

    def _run(self, kind: str) -> None:
        from kubernetes.client.exceptions import ApiException

        resource_version = self._resume_from
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list(kind)
                resource_version = self._watch(kind, resource_version)
            except ApiException as exc:
                self._unsync(kind)
                resource_version = None
                if exc.status == 410:  # our resourceVersion is too old: list again now
                    continue
                if exc.status == 403:
                    with self._lock:
                        self._forbidden.add(kind)
                    log.info("Not allowed to list/watch %ss; reading them by plain lists", kind)
                    return
                log.warning("Watching %ss failed (%s); listing again", kind, exc.status)
                self._stop.wait(ERROR_PAUSE)
            except Exception as exc:  # network trouble: plain lists answer meanwhile
                if self._stop.is_set():
                    return
                self._unsync(kind)
                resource_version = None
                log.warning("Watching %ss failed: %r; listing again", kind, exc)
                self._stop.wait(ERROR_PAUSE)

    def _list(self, kind: str) -> str:
        api, suffix = self.api.kind_api(kind)
        listed = getattr(api, f"list_namespaced_{suffix}")(
            self.api.namespace, label_selector=self.selector, _request_timeout=self.api.timeout
        )
        with self._lock:
            self._items[kind] = {item.metadata.name: item for item in listed.items}
            self._synced[kind] = True
            self._heard[kind] = time.monotonic()
        return str(listed.metadata.resource_version)

    def _watch(self, kind: str, resource_version: str) -> str | None:
        """Apply events until the server ends the watch; return where to resume."""
        from kubernetes import watch

        api, suffix = self.api.kind_api(kind)
        stream = watch.Watch()
        with self._lock:
            self._watches[kind] = stream
        if self._stop.is_set():
            return resource_version
        try:
            for event in stream.stream(
                getattr(api, f"list_namespaced_{suffix}"),
                self.api.namespace,
                label_selector=self.selector,
                resource_version=resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self.watch_seconds,
                _request_timeout=(self.api.timeout[0], self.watch_seconds + READ_MARGIN),
            ):
                self._heard_from(kind)
                if event["type"] == "BOOKMARK":  # only news of where to resume (stream keeps it)
                    resource_version = stream.resource_version or resource_version
                    continue
                obj = event["object"]
                with self._lock:
                    if event["type"] == "DELETED":
                        self._items[kind].pop(obj.metadata.name, None)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        self._items[kind][obj.metadata.name] = obj
                resource_version = obj.metadata.resource_version or resource_version
        finally:
            with self._lock:
                self._watches.pop(kind, None)
        if not self._stop.is_set():
            self._heard_from(kind)  # the server ended the watch on time: the line is alive
        return stream.resource_version or resource_version

    def _unsync(self, kind: str) -> None:
        with self._lock:
            self._synced[kind] = False
            self._items[kind] = {}
