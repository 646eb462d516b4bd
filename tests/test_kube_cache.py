"""The watch cache does not go stale silently and never holds up close(): real control plane
(and, for a list that never answers, a real HTTP server on loopback that holds every request)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.backends import naming
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.kubeapi import KubeApi
from jupyter_modelserve.backends.kubecache import CLOSE_TIMEOUT, KINDS, KubeCache
from jupyter_modelserve.backends.kubernetes import KubernetesBackend

from .kube.counting import counting
from .kube.fixtures import KubeCluster, wait_for
from .kube.loopback import loopback_kubeconfig

SELECTOR = "app.kubernetes.io/managed-by=jupyter-modelserve,modelserve/instance=h3"


def _watches(calls: object, resource: str) -> list[tuple[str, str, str]]:
    return calls.matching(  # type: ignore[attr-defined, no-any-return]
        lambda m, p, q: m == "GET" and p.endswith(f"/{resource}") and "watch=" in q
    )


def test_watches_ask_for_bookmarks_with_a_short_server_timeout(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    # Given a cache on the real API server whose watches end every 3 s
    api = KubeApi(kube_namespace, str(kube_cluster.kubeconfig), 5.0)
    with counting(api.api_client()) as calls:
        cache = KubeCache(api, SELECTOR, watch_seconds=3).start()
        try:
            # When the first watch of Pods has ended and the next one started
            wait_for(lambda: len(_watches(calls, "pods")) >= 2, timeout=20, what="a resumed watch")
            # Then every watch asked for bookmarks with the short server-side timeout
            for _m, _p, query in _watches(calls, "pods"):
                assert "allowWatchBookmarks=true" in query and "timeoutSeconds=3" in query
            # And resumed from where it was: Pods were listed once, never again
            assert calls.lists("pods") == 1
            assert cache.items("Pod") == []
        finally:
            cache.close()
            api.close()


class _Bookmarking:
    """An API server on loopback: empty lists at resourceVersion 5; every watch sends one
    BOOKMARK (resourceVersion 6) and ends, except from the third on, which it holds open."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def count(self, needle: str) -> int:
        with self.lock:
            return sum(needle in path for path in self.requests)


@pytest.fixture
def bookmarking(tmp_path: Path) -> Iterator[tuple[_Bookmarking, Path]]:
    script = _Bookmarking()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with script.lock:
                script.requests.append(self.path)
                watches = sum("watch=" in p for p in script.requests)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Connection", "close")
            self.end_headers()
            if "watch=" not in self.path:
                self.wfile.write(b'{"metadata": {"resourceVersion": "5"}, "items": []}')
                return
            bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}}
            self.wfile.write(json.dumps(bookmark).encode() + b"\n")
            self.wfile.flush()
            if watches > len(KINDS):
                script.stop.wait(10)  # held open: an idle watch

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = loopback_kubeconfig(tmp_path / "kubeconfig", server.server_port)
    try:
        yield script, path
    finally:
        script.stop.set()
        server.shutdown()
        server.server_close()


def test_a_bookmark_moves_the_watch_on_without_a_relist(
    bookmarking: tuple[_Bookmarking, Path],
) -> None:
    # Given an API server whose watches send a bookmark and end
    script, path = bookmarking
    api = KubeApi("ns", str(path), 5.0)
    cache = KubeCache(api, SELECTOR).start()
    try:
        # When every kind's watch has had its bookmark and resumed
        wait_for(lambda: script.count("watch=") >= 2 * len(KINDS), what="resumed watches")
        # Then each resumed from the bookmark's resourceVersion, with no second list, and the
        # cache still answers
        with script.lock:
            resumed = [p for p in script.requests if "watch=" in p and "resourceVersion=6" in p]
            lists = [p for p in script.requests if "watch=" not in p]
        assert len(resumed) >= len(KINDS) and len(lists) == len(KINDS)
        assert all(cache.items(kind) == [] for kind in KINDS)
    finally:
        cache.close()
        api.close()


def test_a_silent_watch_is_not_believed_and_status_reads_list(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    # Given a backend whose watch cache was synced, then heard nothing for longer than its
    # bound (an idle namespace and a one-second bound: a broken watch looks the same)
    backend = KubernetesBackend(
        tmp_path, kubeconfig=str(kube_cluster.kubeconfig), namespace=kube_namespace, instance="h3"
    )
    selector = naming.owner_selector(backend.settings)
    cache = KubeCache(backend._api, selector, stale_after=1.0).start()
    backend._cache = cache
    spec = ServeSpec("simple", 1, "")
    try:
        wait_for(lambda: cache.items("Deployment") is not None, what="the cache to sync")
        wait_for(lambda: cache.items("Deployment") is None, timeout=5, what="the silence bound")

        # When a status is read
        with counting(backend._api.api_client()) as calls:
            backend.statuses([spec], 5.0)

        # Then the cache does not answer: the kinds are listed from the server
        assert not cache.synced()
        assert all(calls.lists(kind) == 1 for kind in ("deployments", "replicasets", "pods"))
    finally:
        backend.close()


@pytest.fixture
def silent_server(tmp_path: Path) -> Iterator[tuple[Path, list[socket.socket]]]:
    """A kubeconfig for an HTTP server on loopback that reads every request and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)  # held open, unanswered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    path = loopback_kubeconfig(tmp_path / "kubeconfig", listener.getsockname()[1])
    try:
        yield path, held
    finally:
        stop.set()
        thread.join(2)
        for connection in held:
            connection.close()
        listener.close()


def test_close_returns_promptly_while_every_list_hangs(
    silent_server: tuple[Path, list[socket.socket]],
) -> None:
    # Given a cache whose three first lists hang (an API server that never answers)
    path, held = silent_server
    api = KubeApi("ns", str(path), 30.0)
    cache = KubeCache(api, SELECTOR).start()
    wait_for(lambda: len(held) >= len(KINDS), what="every kind's list to be under way")

    # When the cache is closed
    started = time.monotonic()
    cache.close()
    elapsed = time.monotonic() - started

    # Then close() returned within its bound for all threads together
    assert elapsed < CLOSE_TIMEOUT + 0.5, elapsed
    api.close()
