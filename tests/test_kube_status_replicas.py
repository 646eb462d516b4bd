"""Status with several Pods on the real control plane: only the current ReplicaSet's Pods that
are not being deleted speak for a serve, and one bad replica among ready ones is news, not a
failure. The stand-in kubelet writes the Pod statuses; the real controllers do the rest."""

from __future__ import annotations

from typing import Any

from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, eventually
from .kube.fixtures import KubeCluster, wait_for
from .kube.kubelet import Behaviour, Outcome, StandInKubelet
from .kube.serves import in_state, observed, post_until_available, serve_of
from .test_kubernetes_backend import jp_server_config, kubeconfig  # noqa: F401

DEPLOYMENT = "ms-t-simple-v1"


def _pods(kube_cluster: KubeCluster, namespace: str) -> list[Any]:
    from kubernetes import client

    api = kube_cluster.api_client()
    try:
        return list(client.CoreV1Api(api).list_namespaced_pod(namespace).items)
    finally:
        api.close()


def _hash(pod: Any) -> str:
    return str(pod.metadata.labels["pod-template-hash"])


def _roll(kube_cluster: KubeCluster, namespace: str) -> None:
    """Change the Pod template, as a settings change or `kubectl rollout restart` does."""
    from kubernetes import client

    api = kube_cluster.api_client()
    try:
        client.AppsV1Api(api).patch_namespaced_deployment(
            DEPLOYMENT,
            namespace,
            {"spec": {"template": {"metadata": {"annotations": {"test/rollout": "2"}}}}},
        )
    finally:
        api.close()


async def test_a_failing_pod_of_an_old_replicaset_does_not_fail_the_serve(
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    # Given an AVAILABLE serve
    await post_until_available(api)
    [old] = _pods(kube_cluster, kube_namespace)

    # When a rollout starts whose new Pod is still being created, and the old Pod crash-loops
    def policy(pod: Any) -> Behaviour:
        return "crash_loop" if _hash(pod) == _hash(old) else "pending"

    kubelet.policy = policy
    _roll(kube_cluster, kube_namespace)
    wait_for(
        lambda: len({_hash(p) for p in _pods(kube_cluster, kube_namespace)}) == 2,
        what="the new ReplicaSet's Pod",
    )
    kubelet.resync()  # the old Pod crash-loops now, whatever order the events came in

    # Then the serve waits for the new Pod instead of failing on the old one
    serve = await eventually(
        in_state(api, "PENDING", "waiting for the Pod to start"), what="PENDING"
    )
    assert "CrashLoopBackOff" not in serve["reason"]

    # And once the new Pod is ready, the serve is AVAILABLE again
    kubelet.policy = lambda pod: "crash_loop" if _hash(pod) == _hash(old) else "ready"
    await eventually(in_state(api, "AVAILABLE"), what="AVAILABLE after the rollout")


async def test_a_failing_terminating_pod_does_not_fail_the_serve(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    from kubernetes import client

    # Given an AVAILABLE serve, and a kubelet slow to confirm deletions
    await post_until_available(api)
    [old] = _pods(kube_cluster, kube_namespace)
    kubelet.confirm_deletions = False

    # When its Pod is deleted (a node drain) and crash-loops while it terminates
    admin = kube_cluster.api_client()
    client.CoreV1Api(admin).delete_namespaced_pod(old.metadata.name, kube_namespace)
    admin.close()
    kubelet.policy = lambda pod: "crash_loop" if pod.metadata.uid == old.metadata.uid else "ready"

    def crashing_while_terminating() -> bool:
        pods = _pods(kube_cluster, kube_namespace)
        [pod] = [p for p in pods if p.metadata.uid == old.metadata.uid]
        waiting = pod.status.container_statuses[0].state.waiting
        return pod.metadata.deletion_timestamp is not None and waiting is not None

    wait_for(crashing_while_terminating, what="the terminating Pod to crash-loop")
    wait_for(lambda: len(_pods(kube_cluster, kube_namespace)) == 2, what="the replacement Pod")

    # Then the serve reads AVAILABLE from the replacement, not FAILED from the leaving Pod
    serve = await eventually(in_state(api, "AVAILABLE"), what="AVAILABLE")
    assert serve["reason"] is None
    # And the backend has nothing to say against it (the leaving Pod is not a bad replica)
    assert wait_for(lambda: observed(service, "AVAILABLE", "")).reason is None


async def test_one_crash_looping_replica_among_ready_ones_is_news_not_a_failure(
    api: Api, simple_registered: dict[str, Any], service: ServeService, kubelet: StandInKubelet
) -> None:
    # Given three replicas, one of which crash-loops (the first the kubelet sees)
    service.backend.replicas = 3  # type: ignore[attr-defined]
    bad: list[str] = []

    def policy(pod: Any) -> Behaviour | Outcome:
        if not bad:
            bad.append(pod.metadata.name)
        return "crash_loop" if pod.metadata.name == bad[0] else "ready"

    kubelet.policy = policy

    # When it is served
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200

    # Then the backend observes AVAILABLE, with a reason naming the bad replica and container
    # (the replicas get ready one by one: "1 of 3" comes first, then "2 of 3", which stays)
    seen = wait_for(
        lambda: observed(service, "AVAILABLE", "2 of 3 replicas ready"), what="2 of 3 ready"
    )
    assert "CrashLoopBackOff" in seen.reason
    assert f"container tensorflow-serving of Pod {bad[0]} keeps failing" in seen.reason
    serve = await serve_of(api)
    assert serve["state"] == "AVAILABLE"


async def test_available_replicas_win_over_a_current_progress_deadline(
    api: Api, simple_registered: dict[str, Any], service: ServeService, kubelet: StandInKubelet
) -> None:
    # Given four replicas, one never ready, and a one-second progress deadline: the rollout
    # times out although the Deployment is Available (3 >= its minimum of 4 - 25%)
    service.backend.replicas = 4  # type: ignore[attr-defined]
    service.backend.progress_deadline_seconds = 1  # type: ignore[attr-defined]
    slow: list[str] = []

    def policy(pod: Any) -> Behaviour:
        if not slow:
            slow.append(pod.metadata.name)
        return "pending" if pod.metadata.name == slow[0] else "ready"

    kubelet.policy = policy

    # When it is served
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200

    # Then it serves, and says the rollout timed out
    seen = wait_for(
        lambda: observed(service, "AVAILABLE", "ProgressDeadlineExceeded"),
        what="the timed-out rollout",
    )
    assert "3 of 4 replicas ready" in seen.reason
