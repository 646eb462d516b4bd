"""Status from containers on the real control plane: image pulls the kubelet retries, OOMKilled,
sidecars and quota refusals, each named with its container. The stand-in kubelet writes what a
kubelet would; the real ReplicaSet and Deployment controllers record the rest."""

from __future__ import annotations

from typing import Any

from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, eventually
from .kube.fixtures import KubeCluster, wait_for
from .kube.kubelet import Outcome, StandInKubelet
from .kube.serves import in_state, observed, post_until_available
from .test_kubernetes_backend import jp_server_config, kubeconfig  # noqa: F401

IMAGE = "tensorflow/serving:2.14.1"


async def test_an_image_pull_that_fails_then_succeeds_waits_and_becomes_available(
    api: Api, simple_registered: dict[str, Any], kubelet: StandInKubelet
) -> None:
    # Given a first pull that fails
    kubelet.policy = "err_image_pull"
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200

    # Then the serve waits, naming the container and the image
    serve = await eventually(in_state(api, "PENDING", "ErrImagePull"), what="ErrImagePull")
    assert "container tensorflow-serving of Pod ms-t-simple-v1-" in serve["reason"]
    assert f"cannot pull image {IMAGE} yet" in serve["reason"]

    # When the kubelet backs off, the serve still waits: the kubelet keeps retrying
    kubelet.policy = "image_pull_backoff"
    serve = await eventually(in_state(api, "PENDING", "ImagePullBackOff"), what="back-off")
    assert f'Back-off pulling image "{IMAGE}"' in serve["reason"]

    # And once a pull succeeds, it is AVAILABLE
    kubelet.policy = "ready"
    await eventually(in_state(api, "AVAILABLE"), what="AVAILABLE after the pull")


async def test_an_oom_killed_container_is_named_with_its_cause(
    api: Api, simple_registered: dict[str, Any], kubelet: StandInKubelet
) -> None:
    # Given a container the kernel kills for its memory limit, again and again
    kubelet.policy = Outcome("crash_loop", reason="OOMKilled", exit_code=137)

    # When it is served and waited for
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})

    # Then it fails, saying OOMKilled of which container, not a log line
    assert code == 422, envelope
    serve = await eventually(in_state(api, "FAILED"), what="FAILED")
    assert "CrashLoopBackOff: container tensorflow-serving of Pod" in serve["reason"]
    assert "OOMKilled (exit code 137)" in serve["reason"]


async def test_a_crashing_sidecar_is_not_blamed_on_tf_serving(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    from kubernetes import client

    # Given a serve whose Pods gain a sidecar (as a mesh's injector adds one) that crash-loops
    await post_until_available(api)
    kubelet.policy = Outcome("crash_loop", container="proxy", message="proxy: bad config")
    admin = kube_cluster.api_client()
    sidecar = {"name": "proxy", "image": "example.org/proxy:1"}
    client.AppsV1Api(admin).patch_namespaced_deployment(
        "ms-t-simple-v1",
        kube_namespace,
        {"spec": {"template": {"spec": {"containers": [sidecar]}}}},
    )
    admin.close()

    # Then the old Pod keeps serving, and the reason names the sidecar, not TF Serving
    seen = wait_for(
        lambda: observed(service, "AVAILABLE", "container proxy of Pod"), what="the sidecar"
    )
    assert "proxy: bad config" in seen.reason
    assert "tensorflow-serving" not in seen.reason


async def test_a_pod_refused_at_admission_is_the_reason_it_waits(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    from kubernetes import client

    # Given a namespace whose LimitRange allows less CPU than the serve's limit (500m): the
    # ReplicaSet controller's Pod create is refused at admission, as by a quota or a policy
    admin = kube_cluster.api_client()
    limits = {"type": "Container", "max": {"cpu": "100m"}}
    limit_range = {"metadata": {"name": "small"}, "spec": {"limits": [limits]}}
    client.CoreV1Api(admin).create_namespaced_limit_range(kube_namespace, limit_range)
    admin.close()

    # When a serve is created
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200

    # Then it waits with the ReplicaSet controller's FailedCreate as the reason (the controller
    # retries: quota can be freed, a policy changed; the progress deadline decides)
    serve = await eventually(
        in_state(api, "PENDING", "ReplicaFailure: FailedCreate"), what="FailedCreate"
    )
    assert "forbidden" in serve["reason"] and "maximum cpu usage" in serve["reason"]
