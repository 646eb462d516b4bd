"""The Kubernetes harness is real: these behaviours come from kube-apiserver and its controllers.

Nothing here is mocked: Deployments get ReplicaSets and Pods from the real controllers, the API
server validates, conflicts and authorises, the garbage collector cascades. Only the node is a
stand-in (tests/kube/kubelet.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import config
from kubernetes.client import (
    ApiClient,
    ApiException,
    AppsV1Api,
    CoreV1Api,
    V1Deployment,
    V1Pod,
    V1Service,
)

from . import model
from .fixtures import KubeCluster, wait_for
from .kubelet import Outcome, StandInKubelet, by_image

IMAGE = "tensorflow/serving:2.14.1"


def manifest(name: str, replicas: int = 1, image: str = IMAGE) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "serving",
                            "image": image,
                            "ports": [{"name": "rest", "containerPort": 8501}],
                        }
                    ]
                },
            },
        },
    }


def deployment(name: str, replicas: int = 1, image: str = IMAGE) -> V1Deployment:
    return model(V1Deployment, manifest(name, replicas, image))


def conditions(obj: V1Deployment | V1Pod) -> dict[str, str]:
    found = obj.status.conditions if obj.status else None
    return {str(c.type): str(c.status) for c in found or []}


def pods_of(core: CoreV1Api, namespace: str, app: str) -> list[V1Pod]:
    return list(core.list_namespaced_pod(namespace, label_selector=f"app={app}").items)


def test_deployment_gets_replicaset_and_pod_and_becomes_available(
    kube_api_client: ApiClient, kube_namespace: str, kubelet: StandInKubelet
) -> None:
    apps, core = AppsV1Api(kube_api_client), CoreV1Api(kube_api_client)
    apps.create_namespaced_deployment(kube_namespace, deployment("serving"))

    def available_deployment() -> V1Deployment | None:
        found = apps.read_namespaced_deployment("serving", kube_namespace)
        return found if conditions(found).get("Available") == "True" else None

    available = wait_for(available_deployment, what="the Deployment to become Available")
    assert available.status is not None and available.status.ready_replicas == 1

    # The ReplicaSet and the Pod were made by the real controllers, and are owned accordingly.
    (replica_set,) = apps.list_namespaced_replica_set(kube_namespace).items
    assert replica_set.metadata is not None and available.metadata is not None
    assert [o.uid for o in replica_set.metadata.owner_references or []] == [available.metadata.uid]
    (pod,) = pods_of(core, kube_namespace, "serving")
    assert pod.metadata is not None and pod.spec is not None and pod.status is not None
    assert [o.uid for o in pod.metadata.owner_references or []] == [replica_set.metadata.uid]
    assert pod.spec.node_name == kubelet.node_name
    assert pod.status.phase == "Running"
    assert conditions(pod) == {
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }
    (status,) = pod.status.container_statuses or []
    assert status.ready and status.state is not None and status.state.running is not None
    assert status.image == IMAGE
    assert pod.status.pod_ip

    # Label selectors are evaluated by the server.
    assert pods_of(core, kube_namespace, "something-else") == []
    assert len(core.list_namespaced_pod(kube_namespace, label_selector="app in (serving)").items)

    # The endpoint controller publishes the ready Pod behind a Service selecting it.
    service = {
        "metadata": {"name": "serving"},
        "spec": {"selector": {"app": "serving"}, "ports": [{"name": "rest", "port": 8501}]},
    }
    core.create_namespaced_service(kube_namespace, model(V1Service, service))

    def ready_addresses() -> list[str]:
        try:
            endpoints = core.read_namespaced_endpoints("serving", kube_namespace)
        except ApiException as exc:
            if exc.status == 404:  # not written yet
                return []
            raise
        return [a.ip for s in endpoints.subsets or [] for a in s.addresses or []]

    assert wait_for(ready_addresses, what="the Service's endpoints") == [pod.status.pod_ip]


def test_image_pull_backoff_is_reported_in_the_container_status(
    kube_api_client: ApiClient, kube_namespace: str, kubelet: StandInKubelet
) -> None:
    apps, core = AppsV1Api(kube_api_client), CoreV1Api(kube_api_client)
    missing = "example.invalid/no-such-model-server:0.0"
    kubelet.policy = by_image({missing: "image_pull_backoff"})
    apps.create_namespaced_deployment(kube_namespace, deployment("broken", image=missing))

    def waiting_reason() -> Any:
        for pod in pods_of(core, kube_namespace, "broken"):
            for status in (pod.status.container_statuses or []) if pod.status else []:
                if status.state and status.state.waiting:
                    return status.state.waiting
        return None

    waiting = wait_for(waiting_reason, what="the container to wait on its image")
    assert waiting.reason == "ImagePullBackOff"
    assert missing in (waiting.message or "")
    deployment_now = apps.read_namespaced_deployment("broken", kube_namespace)
    assert deployment_now.status is not None and not deployment_now.status.available_replicas
    assert conditions(deployment_now).get("Available") == "False"


def test_crash_loop_and_unschedulable_policies(
    kube_api_client: ApiClient, kube_namespace: str, kubelet: StandInKubelet
) -> None:
    apps, core = AppsV1Api(kube_api_client), CoreV1Api(kube_api_client)
    kubelet.policy = lambda pod: (
        "unschedulable"
        if ((pod.metadata and pod.metadata.labels) or {}).get("app") == "big"
        else Outcome("crash_loop", message="Failed to start server. Error: Not found")
    )
    apps.create_namespaced_deployment(kube_namespace, deployment("crashing"))
    big = manifest("big")
    big["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"nvidia.com/gpu": "4"}
    }
    apps.create_namespaced_deployment(kube_namespace, model(V1Deployment, big))

    def crashed() -> Any:
        for pod in pods_of(core, kube_namespace, "crashing"):
            for status in (pod.status.container_statuses or []) if pod.status else []:
                if status.state and status.state.waiting:
                    return status
        return None

    status = wait_for(crashed, what="the container to crash-loop")
    assert status.state.waiting.reason == "CrashLoopBackOff"
    assert status.restart_count > 0
    assert status.last_state.terminated.exit_code == 1
    assert status.last_state.terminated.message == "Failed to start server. Error: Not found"

    def unschedulable() -> Any:
        for pod in pods_of(core, kube_namespace, "big"):
            for condition in (pod.status.conditions or []) if pod.status else []:
                if condition.type == "PodScheduled" and condition.status == "False":
                    return pod
        return None

    pod = wait_for(unschedulable, what="the GPU-hungry pod to be unschedulable")
    (scheduled,) = [c for c in pod.status.conditions if c.type == "PodScheduled"]
    assert scheduled.reason == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in scheduled.message
    assert not pod.spec.node_name


def test_invalid_object_is_rejected_with_422(
    kube_api_client: ApiClient, kube_namespace: str
) -> None:
    apps = AppsV1Api(kube_api_client)
    invalid = manifest("serving")
    invalid["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    with pytest.raises(ApiException) as raised:
        apps.create_namespaced_deployment(kube_namespace, model(V1Deployment, invalid))
    assert raised.value.status == 422
    assert "containerPort" in (raised.value.body or "")


def test_duplicate_create_is_a_409(kube_api_client: ApiClient, kube_namespace: str) -> None:
    apps = AppsV1Api(kube_api_client)
    apps.create_namespaced_deployment(kube_namespace, deployment("serving"))
    with pytest.raises(ApiException) as raised:
        apps.create_namespaced_deployment(kube_namespace, deployment("serving"))
    assert raised.value.status == 409
    assert "AlreadyExists" in (raised.value.body or "")


def test_foreground_deletion_cascades_to_pods(
    kube_api_client: ApiClient, kube_namespace: str, kubelet: StandInKubelet
) -> None:
    apps, core = AppsV1Api(kube_api_client), CoreV1Api(kube_api_client)
    apps.create_namespaced_deployment(kube_namespace, deployment("serving", replicas=2))
    wait_for(
        lambda: (
            len(
                [
                    p
                    for p in pods_of(core, kube_namespace, "serving")
                    if conditions(p).get("Ready") == "True"
                ]
            )
            == 2
        ),
        what="two ready pods",
    )

    # Without a kubelet, nobody confirms the Pods' graceful deletion: the foreground deletion
    # must then wait for them, which tells it apart from a background one.
    kubelet.stop()
    apps.delete_namespaced_deployment(
        "serving", kube_namespace, propagation_policy="Foreground", _preload_content=False
    )

    def terminating_pods() -> list[V1Pod]:
        pods = pods_of(core, kube_namespace, "serving")
        marked = [p for p in pods if p.metadata and p.metadata.deletion_timestamp]
        return marked if len(marked) == len(pods) == 2 else []

    wait_for(terminating_pods, what="the garbage collector to delete both pods")
    waiting = apps.read_namespaced_deployment("serving", kube_namespace)
    assert waiting.metadata is not None and waiting.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in (waiting.metadata.finalizers or [])

    def everything_gone() -> bool:
        return (
            not apps.list_namespaced_deployment(kube_namespace).items
            and not apps.list_namespaced_replica_set(kube_namespace).items
            and not pods_of(core, kube_namespace, "serving")
        )

    with StandInKubelet(kube_api_client, [kube_namespace]):  # confirms the pods' deletion
        wait_for(everything_gone, what="the Deployment, its ReplicaSet and its Pods to go")


def test_restricted_user_is_refused_outside_its_role(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    user = kube_cluster.restricted_user(
        kube_namespace,
        {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]},
    )
    api = config.new_client_from_config(config_file=str(user.kubeconfig))
    try:
        core, apps = CoreV1Api(api), AppsV1Api(api)
        assert core.list_namespaced_pod(kube_namespace).items == []

        refused = [
            lambda: apps.list_namespaced_deployment(kube_namespace),  # another resource
            lambda: core.list_namespaced_pod("default"),  # another namespace
            lambda: core.create_namespaced_pod(  # another verb
                kube_namespace,
                model(
                    V1Pod,
                    {
                        "metadata": {"name": "p"},
                        "spec": {"containers": [{"name": "c", "image": IMAGE}]},
                    },
                ),
            ),
        ]
        for call in refused:
            with pytest.raises(ApiException) as raised:
                call()
            assert raised.value.status == 403
            assert user.username in (raised.value.body or "")
    finally:
        api.close()

    # A ClusterRole bound in the namespace only: `view` reads Deployments there, nowhere else.
    viewer = kube_cluster.restricted_user(kube_namespace, "view")
    api = config.new_client_from_config(config_file=str(viewer.kubeconfig))
    try:
        apps = AppsV1Api(api)
        assert apps.list_namespaced_deployment(kube_namespace).items == []
        with pytest.raises(ApiException) as raised:
            apps.list_namespaced_deployment("default")
        assert raised.value.status == 403
        with pytest.raises(ApiException) as raised:
            apps.create_namespaced_deployment(kube_namespace, deployment("serving"))
        assert raised.value.status == 403
    finally:
        api.close()
