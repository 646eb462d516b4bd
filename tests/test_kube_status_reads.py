"""Status reads that must hold whatever the namespace holds: Events that cannot be read (not
allowed, or a 5xx) never fail a status read; Events are asked per waiting object, bounded; a
Service deleted behind our back is named; logs are bounded. Real control plane, no kubelet (the
serve's Pod stays Pending: a waiting serve), as admin and as the deploy/rbac.yaml identity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from jupyter_modelserve.backends import kubeevents, naming
from jupyter_modelserve.backends.base import Observation, Observed, ServeSpec
from jupyter_modelserve.backends.kubernetes import MAX_LOG_BYTES_PER_READ, KubernetesBackend
from jupyter_modelserve.schemas import MAX_LOG_TAIL

from .kube.counting import counting
from .kube.failing_proxy import failing_proxy
from .kube.fixtures import KubeCluster, wait_for
from .test_kubernetes_backend import RBAC

INSTANCE = "h3"


def _role(namespace: str, without: str = "") -> dict[str, Any]:
    """deploy/rbac.yaml's Role, less the rules on resource `without`."""
    role = next(d for d in yaml.safe_load_all(RBAC.read_text()) if d["kind"] == "Role")
    role["metadata"]["namespace"] = namespace
    role["rules"] = [r for r in role["rules"] if without not in r["resources"]]
    return role


def _backend(tmp_path: Path, kubeconfig: Path, namespace: str) -> KubernetesBackend:
    return KubernetesBackend(
        tmp_path,
        artifact_root=tmp_path,
        kubeconfig=str(kubeconfig),
        namespace=namespace,
        instance=INSTANCE,
        model_volume="models",
        watch_cache=False,  # every read goes to the server (and through a proxy, if any)
    )


@pytest.fixture
def waiting(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> Iterator[tuple[ServeSpec, str]]:
    """A serve applied as admin whose Pod exists and never starts (no kubelet): (spec, Pod)."""
    from kubernetes import client

    admin = _backend(tmp_path, kube_cluster.kubeconfig, kube_namespace)
    spec = ServeSpec("simple", 1, str(tmp_path / "simple" / "1"))
    admin.apply(spec)
    core = client.CoreV1Api(admin._api.api_client())
    pods = wait_for(lambda: core.list_namespaced_pod(kube_namespace).items, what="the serve's Pod")
    try:
        yield spec, pods[0].metadata.name
    finally:
        admin.close()


def _warning(kube_cluster: KubeCluster, namespace: str, pod: str, index: int = 0) -> None:
    from kubernetes import client

    api = kube_cluster.api_client()
    try:
        client.CoreV1Api(api).create_namespaced_event(
            namespace,
            {
                "metadata": {"name": f"{pod}.h3{index}"},
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace},
                "reason": "FailedScheduling",
                "message": f"0/1 nodes are available: {index} Insufficient nvidia.com/gpu.",
                "type": "Warning",
                "lastTimestamp": f"2026-01-01T00:00:{index % 60:02d}Z",
            },
        )
    finally:
        api.close()


def _status(tmp_path: Path, kubeconfig: Path, namespace: str, spec: ServeSpec) -> Observation:
    backend = _backend(tmp_path, kubeconfig, namespace)
    try:
        return backend.statuses([spec], 5.0)[(spec.name, spec.version)]
    finally:
        backend.close()


@pytest.mark.parametrize("failure", ["events-not-allowed", "events-answer-500"])
def test_events_that_cannot_be_read_leave_the_states_standing(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tmp_path: Path,
    waiting: tuple[ServeSpec, str],
    failure: str,
) -> None:
    # Given a waiting serve with a telling Warning Event, read by an identity that may not list
    # Events, or through a proxy whose Event reads all answer 500
    spec, pod = waiting
    _warning(kube_cluster, kube_namespace, pod)
    # When the statuses are read (directly, or through the proxy)
    if failure == "events-not-allowed":
        role = _role(kube_namespace, without="events")
        kubeconfig = kube_cluster.restricted_user(kube_namespace, role).kubeconfig
        observation = _status(tmp_path, kubeconfig, kube_namespace, spec)
    else:
        user = kube_cluster.restricted_user(kube_namespace, _role(kube_namespace))
        failing = failing_proxy(user.kubeconfig, lambda path: "/events" in path, tmp_path / "p")
        with failing as via:
            observation = _status(tmp_path, via, kube_namespace, spec)

    # Then the serve reads as waiting, without the Event's detail, instead of the read failing
    assert observation.state is Observed.STARTING, observation
    assert "FailedScheduling" not in (observation.reason or "")


@pytest.mark.parametrize("identity", ["admin", "rbac-role"])
def test_events_are_asked_for_the_waiting_serves_own_objects_only(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tmp_path: Path,
    waiting: tuple[ServeSpec, str],
    identity: str,
) -> None:
    # Given a waiting serve whose Pod has a telling Warning Event
    spec, pod = waiting
    _warning(kube_cluster, kube_namespace, pod, index=7)
    kubeconfig = (
        kube_cluster.kubeconfig
        if identity == "admin"
        else kube_cluster.restricted_user(kube_namespace, _role(kube_namespace)).kubeconfig
    )
    backend = _backend(tmp_path, kubeconfig, kube_namespace)
    try:
        # When the statuses are read
        with counting(backend._api.api_client()) as calls:
            observation = backend.statuses([spec], 5.0)[(spec.name, spec.version)]
    finally:
        backend.close()

    # Then the Event is named
    assert observation.state is Observed.STARTING
    assert f"FailedScheduling: Pod {pod}: 0/1 nodes are available: 7" in (observation.reason or "")
    # And every Event read asked for one object's Warnings by field selector, a small page,
    # the Pod among them: never a namespace-wide list
    reads = calls.matching(lambda m, p, q: m == "GET" and p.endswith("/events"))
    assert 1 <= len(reads) <= kubeevents.MAX_OBJECTS
    queries = [parse_qs(query) for _method, _path, query in reads]
    selectors = [q["fieldSelector"][0] for q in queries]
    assert all(
        s.startswith("involvedObject.name=") and s.endswith(",type=Warning") for s in selectors
    )
    assert f"involvedObject.name={pod},type=Warning" in selectors
    assert all(int(q["limit"][0]) <= kubeevents.MAX_PER_OBJECT for q in queries)


@pytest.mark.parametrize("identity", ["admin", "rbac-role"])
def test_a_service_deleted_behind_our_back_is_named(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    tmp_path: Path,
    waiting: tuple[ServeSpec, str],
    identity: str,
) -> None:
    from kubernetes import client

    # Given a serve whose Deployment lives but whose Service somebody deleted
    spec, _pod = waiting
    name = naming.object_name(spec, _backend(tmp_path, kube_cluster.kubeconfig, "x").settings)
    api = kube_cluster.api_client()
    try:
        # (raw: 1.20 answers a Service delete with a Status this client's model rejects)
        response = client.CoreV1Api(api).delete_namespaced_service(
            name, kube_namespace, _preload_content=False
        )
        assert response.status == 200
    finally:
        api.close()
    kubeconfig = (
        kube_cluster.kubeconfig
        if identity == "admin"
        else kube_cluster.restricted_user(kube_namespace, _role(kube_namespace)).kubeconfig
    )
    backend = _backend(tmp_path, kubeconfig, kube_namespace)
    try:
        # When the statuses are read
        observation = backend.statuses([spec], 5.0)[(spec.name, spec.version)]
    finally:
        backend.close()

    # Then the reason names the missing Service, and the Deployment's own state stands
    assert observation.state is Observed.STARTING
    assert (observation.reason or "").startswith(
        f"Service {name} missing from namespace {kube_namespace} (deleted outside"
    ), observation


def test_a_serve_with_all_its_objects_names_nothing_missing(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path, waiting: tuple[ServeSpec, str]
) -> None:
    # Given a waiting serve with every object in place
    spec, _pod = waiting
    backend = _backend(tmp_path, kube_cluster.kubeconfig, kube_namespace)
    try:
        # When the statuses are read
        observation = backend.statuses([spec], 5.0)[(spec.name, spec.version)]
    finally:
        backend.close()
    # Then nothing is said missing
    assert "missing" not in (observation.reason or ""), observation


def test_a_log_read_is_bounded_in_lines_and_bytes(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path, waiting: tuple[ServeSpec, str]
) -> None:
    # Given a serve's Pod
    spec, pod = waiting
    backend = _backend(tmp_path, kube_cluster.kubeconfig, kube_namespace)
    try:
        # When a caller asks for far more lines than the cap
        with counting(backend._api.api_client()) as calls:
            lines = backend.logs(spec, 10**9)
    finally:
        backend.close()
    # Then every log read asked for at most the cap of lines and bytes
    reads = calls.matching(lambda m, p, q: p.endswith(f"/pods/{pod}/log"))
    assert reads
    for _method, _path, query in reads:
        asked = parse_qs(query)
        assert int(asked["tailLines"][0]) == MAX_LOG_TAIL
        assert int(asked["limitBytes"][0]) == MAX_LOG_BYTES_PER_READ
    assert all(line.startswith(f"[{pod}") for line in lines)
