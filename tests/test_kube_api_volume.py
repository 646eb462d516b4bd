"""How many calls the kubernetes backend makes, and how it takes a throttled API server.

Counts come from a hook on the backend's own HTTP pool against the real control plane
(tests/kube/counting.py); retries from a real HTTP server on loopback that answers like a
throttled or failing API server.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_modelserve.backends import naming
from jupyter_modelserve.backends.base import Observed, ServeSpec
from jupyter_modelserve.backends.kubeapi import RETRY_ATTEMPTS, KubeApi
from jupyter_modelserve.backends.kubecache import KINDS, KubeCache
from jupyter_modelserve.backends.kubernetes import KubernetesBackend
from jupyter_modelserve.errors import BackendUnavailable
from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api
from .kube.counting import counting
from .kube.fixtures import KubeCluster, wait_for
from .kube.kubelet import StandInKubelet
from .kube.loopback import loopback_kubeconfig
from .kube.serves import post_until_available
from .test_kubernetes_backend import RBAC, jp_server_config, kubeconfig  # noqa: F401

EMPTY_LIST = {"kind": "DeploymentList", "apiVersion": "apps/v1", "metadata": {}, "items": []}
STATUS_KINDS = ("deployments", "replicasets", "pods", "services")


# ------------------------------------------------------------------- retries on 429 and 5xx


class _Script:
    """Answers (status, Retry-After) in order, then 200 with an empty DeploymentList."""

    def __init__(self, answers: list[tuple[int, str | None]]) -> None:
        self.answers = list(answers)
        self.seen: list[float] = []  # monotonic time of every request
        self.lock = threading.Lock()

    def next(self) -> tuple[int, str | None]:
        with self.lock:
            self.seen.append(time.monotonic())
            return self.answers.pop(0) if self.answers else (200, None)


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[_Script, Path]]:
    script = _Script([])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, retry_after = script.next()
            body = json.dumps(EMPTY_LIST if status == 200 else {"kind": "Status", "code": status})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = loopback_kubeconfig(tmp_path / "kubeconfig", server.server_port)
    try:
        yield script, path
    finally:
        server.shutdown()
        server.server_close()


def _list(path: Path, timeout: float = 5.0) -> Any:
    api = KubeApi("ns", str(path), timeout)
    try:
        return api.call("list Deployments", api.list, "Deployment", "a=b")
    finally:
        api.close()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_throttled_or_failing_call_is_asked_again(
    status: int, scripted: tuple[_Script, Path]
) -> None:
    # Given an API server that answers `status` once, asking to come back in a moment
    script, path = scripted
    script.answers = [(status, "0.3")]
    # When the backend lists Deployments
    items = _list(path)
    # Then it asked again after the Retry-After pause, and got the answer
    assert items == []
    assert len(script.seen) == 2
    assert script.seen[1] - script.seen[0] >= 0.3


def test_retries_are_bounded_and_end_in_a_503(scripted: tuple[_Script, Path]) -> None:
    # Given an API server that keeps failing
    script, path = scripted
    script.answers = [(503, None)] * 10
    # When the backend lists Deployments
    with pytest.raises(BackendUnavailable, match="Kubernetes failed to list Deployments"):
        _list(path)
    # Then it gave up after a few attempts
    assert len(script.seen) == RETRY_ATTEMPTS


def test_a_retry_never_outlasts_the_request_deadline(scripted: tuple[_Script, Path]) -> None:
    # Given an API server that asks to come back later than the call's deadline
    script, path = scripted
    script.answers = [(429, "30")]
    started = time.monotonic()
    # When the backend lists Deployments with a 1 s deadline
    with pytest.raises(BackendUnavailable):
        _list(path, timeout=1.0)
    # Then it does not wait for it: one request, and the caller hears within the deadline
    assert len(script.seen) == 1
    assert time.monotonic() - started < 1.0


def test_a_client_error_is_not_asked_again(scripted: tuple[_Script, Path]) -> None:
    # Given an API server that refuses the request as such (403)
    script, path = scripted
    script.answers = [(403, None)]
    # When the backend lists Deployments
    with pytest.raises(BackendUnavailable, match="does not allow"):
        _list(path)
    # Then asking again would not help, so it did not
    assert len(script.seen) == 1


# ------------------------------------------------------------- calls per GET, with the cache


def _status_lists(calls: Any) -> int:
    return sum(calls.lists(kind) for kind in STATUS_KINDS)


async def test_status_reads_come_from_the_watch_cache(
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    service: ServeService,
) -> None:
    # Given an AVAILABLE serve and a synced watch cache
    await post_until_available(api)
    backend = service.backend
    assert isinstance(backend, KubernetesBackend)
    cache = wait_for(lambda: backend._cache if backend._cache and backend._cache.synced() else None)

    # When GET /api/v1/serve runs 10 times without the cache
    backend.watch_cache = False
    with counting(backend._api.api_client()) as plain:
        for _ in range(10):
            code, _envelope = await api("GET", "/api/v1/serve")
            assert code == 200
    # Then every GET lists Deployments, ReplicaSets, Pods and Services
    assert _status_lists(plain) == 40

    # When it runs 10 times with the cache
    backend.watch_cache = True
    with counting(backend._api.api_client()) as cached:
        for _ in range(10):
            code, envelope = await api("GET", "/api/v1/serve")
            assert code == 200
    # Then none of them lists those kinds, and the answer is the same
    assert _status_lists(cached) == 0
    assert [s["state"] for s in envelope["result"]] == ["AVAILABLE"]
    assert not cache.forbidden()
    print(f"calls per GET list: {len(plain.seen) / 10} without, {len(cached.seen) / 10} with")


async def test_a_waiting_post_reads_through_the_cache(
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    service: ServeService,
) -> None:
    # Given a serve whose Pod never starts, and a synced watch cache
    kubelet.policy = "pending"
    backend = service.backend
    assert isinstance(backend, KubernetesBackend)
    cache = backend._watched(naming.owner_selector(backend.settings))
    assert cache is not None
    wait_for(cache.synced, what="the watch cache to sync")

    # When a POST waits 3 s for it
    with counting(backend._api.api_client()) as calls:
        started = time.monotonic()
        code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": "3"})
        elapsed = time.monotonic() - started
    assert code == 200, envelope
    assert envelope["result"]["state"] == "PENDING"

    # Then its polls cost no lists of Deployments, ReplicaSets or Pods beyond the first read
    # of the serve just created (the cache may not have seen it yet)
    assert _status_lists(calls) <= 3
    events = calls.lists("events")
    print(f"calls per second of ?wait: {len(calls.seen) / elapsed:.1f} ({events} Event lists)")


def test_without_watch_verbs_status_falls_back_to_lists(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    # Given an identity bound to deploy/rbac.yaml's Role without its watch verbs
    role = next(d for d in yaml.safe_load_all(RBAC.read_text()) if d["kind"] == "Role")
    role["metadata"]["namespace"] = kube_namespace
    for rule in role["rules"]:
        rule["verbs"] = [verb for verb in rule["verbs"] if verb != "watch"]
    role["rules"] = [rule for rule in role["rules"] if rule["verbs"]]
    user = kube_cluster.restricted_user(kube_namespace, role)
    backend = KubernetesBackend(
        tmp_path, kubeconfig=str(user.kubeconfig), namespace=kube_namespace, instance="k6"
    )
    spec = ServeSpec("simple", 1, "")
    try:
        # When it reads a status, which starts the watches
        first = backend.statuses([spec], 5.0)[("simple", 1)]
        cache = backend._cache
        assert cache is not None

        # Then every watch gives up as forbidden
        wait_for(lambda: cache.forbidden() == set(KINDS), what="the watches to be refused")
        # And status reads keep working by plain lists
        with counting(backend._api.api_client()) as calls:
            again = backend.statuses([spec], 5.0)[("simple", 1)]
        assert first.state is again.state is Observed.ABSENT
        # (Deployments, ReplicaSets, Pods; and Services, as the Deployment is missing and the
        # other kinds are asked whether anything of the serve is left)
        assert _status_lists(calls) == 4
    finally:
        backend.close()
    # And close() ended the watch threads
    assert not any(thread.is_alive() for thread in cache._threads)


def test_close_ends_the_watches_at_once(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    # Given a backend whose watch cache is synced (and its watches idle: nothing changes)
    backend = KubernetesBackend(
        tmp_path, kubeconfig=str(kube_cluster.kubeconfig), namespace=kube_namespace, instance="k6"
    )
    backend.statuses([ServeSpec("simple", 1, "")], 5.0)
    cache = backend._cache
    assert cache is not None
    wait_for(cache.synced, what="the watch cache to sync")

    # When the backend is closed
    started = time.monotonic()
    backend.close()

    # Then every watch thread has ended, without waiting for the server to end its watch
    assert not any(thread.is_alive() for thread in cache._threads)
    assert time.monotonic() - started < 2.0


def test_a_serve_the_cache_has_not_seen_yet_is_read_from_the_server(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    # Given a synced watch cache that lags behind (its watches stopped: the worst lag there is)
    backend = KubernetesBackend(
        tmp_path,
        artifact_root=tmp_path,
        kubeconfig=str(kube_cluster.kubeconfig),
        namespace=kube_namespace,
        instance="k6",
        model_volume="models",
    )
    spec = ServeSpec("simple", 1, str(tmp_path / "simple" / "1"))
    try:
        backend.statuses([spec], 5.0)
        cache = backend._cache
        assert cache is not None
        wait_for(cache.synced, what="the watch cache to sync")
        cache.close()

        # When a serve is created and its status read at once
        backend.apply(spec)
        observation = backend.statuses([spec], 5.0)[("simple", 1)]

        # Then it is read from the API server, not taken as gone from the stale cache
        assert observation.state not in (Observed.ABSENT, Observed.PARTIAL), observation
    finally:
        backend.close()


class _Gone:
    """A loopback API server for the 410 case: a watch from resourceVersion 1 is answered the way
    kube-apiserver answers a resourceVersion it has forgotten (an ERROR event with a 410
    Status), lists answer one Pod at resourceVersion 5, and later watches stay open and quiet.
    (Against the real control plane, whether "1" is forgotten depends on etcd's compaction,
    which a freshly started cluster has not done yet.)"""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.closing = threading.Event()
        gone = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gone.requests.append(self.path)
                if "watch=" in self.path:
                    self._watch()
                else:
                    self._list()

            def _watch(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                if "resourceVersion=1&" in self.path or self.path.endswith("resourceVersion=1"):
                    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "message": "too old resource version: 1 (5)", "reason": "Expired",
                              "code": 410}  # fmt: skip
                    line = json.dumps({"type": "ERROR", "object": status}) + "\n"
                    self.wfile.write(line.encode())
                    return
                gone.closing.wait(30)  # a watch with nothing to say

            def _list(self) -> None:
                kind = self.path.split("?")[0].rsplit("/", 1)[-1]
                items = []
                if kind == "pods":
                    items = [{"metadata": {"name": "p", "namespace": "ns",
                                           "resourceVersion": "5"}}]  # fmt: skip
                body = json.dumps(
                    {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "5"},
                     "items": items}
                ).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_watch_told_410_gone_lists_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an API server that has forgotten resourceVersion 1
    gone = _Gone()
    loopback_kubeconfig(tmp_path / "kubeconfig", gone.server.server_port)
    api = KubeApi("ns", str(tmp_path / "kubeconfig"), 5.0)
    caplog.set_level(logging.WARNING, logger="jupyter_modelserve.backends.kubecache")

    # When a cache resumes its watches from resourceVersion 1
    cache = KubeCache(api, "modelserve/instance=k6").start(resume_from="1")
    try:
        # Then the 410 makes it list again, and it sees the Pod
        pods = wait_for(lambda: cache.items("Pod"), timeout=30.0, what="the relisted Pods")
        assert [p.metadata.name for p in pods] == ["p"]
        assert any("/pods?" in r and "watch=" not in r for r in gone.requests)
        # And at once, not as a failure (which would log and pause before listing again)
        assert [r.getMessage() for r in caplog.records if "failed" in r.getMessage()] == []
    finally:
        cache.close()
        api.close()
        gone.close()
