"""Status the Pod's own fields do not tell, on the real control plane: Events (a volume that
cannot be mounted or is attached elsewhere), an eviction and its replacement, a failing init
container, and an AVAILABLE serve's reason reaching GET. The stand-in kubelet writes what a
kubelet (or the attach/detach controller) would; the real controllers do the rest. Every test
runs as admin and as the identity bound only to deploy/rbac.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_modelserve import serve_details
from jupyter_modelserve.backends import naming
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, eventually
from .kube.fixtures import KubeCluster, wait_for
from .kube.kubelet import Behaviour, Outcome, StandInKubelet
from .kube.serves import in_state, post_until_available
from .test_kubernetes_backend import jp_server_config, kubeconfig  # noqa: F401


def _deployment(service: ServeService) -> str:
    return naming.object_name(ServeSpec("simple", 1, ""), service.backend.settings)  # type: ignore[attr-defined]


def _pods(kube_cluster: KubeCluster, namespace: str) -> list[Any]:
    from kubernetes import client

    api = kube_cluster.api_client()
    try:
        return list(client.CoreV1Api(api).list_namespaced_pod(namespace).items)
    finally:
        api.close()


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [
        ("failed_mount", 'FailedMount: Pod {}: MountVolume.SetUp failed for volume "'),
        ("multi_attach", 'FailedAttachVolume: Pod {}: Multi-Attach error for volume "pvc-'),
    ],
)
async def test_a_volume_that_cannot_be_used_is_the_reason_the_serve_waits(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    behaviour: Behaviour,
    said: str,
) -> None:
    # Given a node whose kubelet cannot mount (or attach) the serve's volume: the Pod's status
    # says only ContainerCreating, the Warning Event says why
    kubelet.policy = behaviour

    # When the serve is created
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200

    # Then GET says it waits for the Pod, naming the Event's reason, its Pod and its message
    # (until the Deployment controller has observed the Deployment, the reason says that
    # first, then the Event: both true, so the wait is for the settled form)
    [pod] = wait_for(lambda: _pods(kube_cluster, kube_namespace), what="the serve's Pod")
    waiting = "waiting for the Pod to start; " + said.format(pod.metadata.name)
    serve = await eventually(in_state(api, "PENDING", waiting), what=f"{behaviour} named")
    assert serve["reason"].startswith(waiting)


async def test_an_evicted_pod_is_replaced_and_named_while_its_replacement_starts(
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    # Given an AVAILABLE serve
    await post_until_available(api)
    [first] = _pods(kube_cluster, kube_namespace)
    uid = first.metadata.uid

    # When the kubelet evicts its Pod (memory pressure) and the replacement is slow to start
    kubelet.policy = lambda pod: "evicted" if pod.metadata.uid == uid else "pending"
    wait_for(lambda: len(_pods(kube_cluster, kube_namespace)) == 2, what="the replacement Pod")

    # Then the serve waits for the replacement, saying which Pod was evicted and why
    serve = await eventually(
        in_state(api, "PENDING", f"Evicted: Pod {first.metadata.name} was evicted"),
        what="the eviction named",
    )
    assert serve["reason"].startswith("waiting for the Pod to start")
    assert "The node was low on resource: memory." in serve["reason"]

    # And once the replacement is ready it is AVAILABLE, the evicted Pod forgotten
    kubelet.policy = lambda pod: "evicted" if pod.metadata.uid == uid else "ready"
    serve = await eventually(in_state(api, "AVAILABLE"), what="AVAILABLE on the replacement")
    assert serve["reason"] is None


async def test_a_failing_init_container_is_named_not_tf_serving(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    from kubernetes import client

    # Given an AVAILABLE serve whose Pods gain an init container (a model download) that keeps
    # failing, rolled out by Recreate so no old Pod serves meanwhile
    await post_until_available(api)
    kubelet.policy = Outcome(
        "crash_loop", container="fetch-model", message="AccessDenied: no credentials"
    )
    fetch = {"name": "fetch-model", "image": "example.org/fetch:1"}
    admin = kube_cluster.api_client()
    client.AppsV1Api(admin).patch_namespaced_deployment(
        _deployment(service),
        kube_namespace,
        {
            "spec": {
                "strategy": {"type": "Recreate", "rollingUpdate": None},
                "template": {"spec": {"initContainers": [fetch]}},
            }
        },
    )
    admin.close()

    # Then the serve FAILED, naming the init container, its exit and its message
    serve = await eventually(in_state(api, "FAILED", "init container fetch-model"), what="FAILED")
    assert "CrashLoopBackOff: init container fetch-model of Pod" in serve["reason"]
    assert "exit code 1, last message: AccessDenied: no credentials" in serve["reason"]
    assert "tensorflow-serving" not in serve["reason"]

    # And its logs are asked of the init container's last run too, named so
    [pod] = [p for p in _pods(kube_cluster, kube_namespace) if p.spec.init_containers]
    code, envelope = await api("GET", "/api/v1/serve/simple/1/logs", params={"tail": 10})
    assert code == 200
    init_lines = [
        line
        for line in envelope["result"]
        if line.startswith(f"[{pod.metadata.name} fetch-model previous]")
    ]
    assert init_lines, envelope["result"]


async def test_an_available_serves_reason_reaches_get_until_every_replica_is_ready(
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

    # Then GET says AVAILABLE with why not every replica is
    serve = await eventually(
        in_state(api, "AVAILABLE", "2 of 3 replicas ready"), what="the replicas' reason"
    )
    assert serve["reason"].startswith("2 of 3 replicas ready; CrashLoopBackOff: container ")
    assert f"tensorflow-serving of Pod {bad[0]} keeps failing" in serve["reason"]
    # And lists say the same
    code, envelope = await api("GET", "/api/v1/serve")
    [listed] = [s for s in envelope["result"] if s["modelName"] == "simple"]
    assert listed["state"] == "AVAILABLE" and listed["reason"] == serve["reason"]
    # And such a serve still answers (GET one asks its model server), a failed status read not
    view = service.get("simple", 1)
    assert serve_details._answering(service, view)
    assert not serve_details._answering(service, view.model_copy(update={"reason": "no answer"}))

    # When the bad replica recovers, Then the reason is gone
    kubelet.policy = "ready"
    await eventually(_reason_cleared(api), what="the reason cleared")


def _reason_cleared(api: Api) -> Any:
    async def check() -> bool:
        code, envelope = await api("GET", "/api/v1/serve/simple/1")
        return code == 200 and envelope["result"]["reason"] is None

    return check
