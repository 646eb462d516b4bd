"""Settings changes reach running serves by server-side apply, on the real control plane.

The reconciler re-applies a serve only when what the settings make of it changed (a hash on
its Deployment), as the field manager jupyter-modelserve, and never takes `spec.replicas` from
whoever else scales the Deployment. GPU serves and serves on a ReadWriteOnce model volume stop
the old Pod before starting the new one (Recreate). Every scenario runs as admin and as the
identity bound only to deploy/rbac.yaml (the fixtures of test_kubernetes_backend).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jupyter_modelserve.backends import naming
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.kubernetes import KubernetesBackend
from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api
from .kube.counting import counting
from .kube.fixtures import KubeCluster, wait_for
from .kube.kubelet import StandInKubelet
from .kube.serves import post_until_available
from .test_kubernetes_backend import jp_server_config, kubeconfig  # noqa: F401

MANAGER = "jupyter-modelserve"


def _backend(service: ServeService) -> KubernetesBackend:
    backend = service.backend
    assert isinstance(backend, KubernetesBackend)
    return backend


def _deployment(kube_cluster: KubeCluster, namespace: str, backend: KubernetesBackend) -> Any:
    from kubernetes import client

    name = naming.object_name(ServeSpec("simple", 1, ""), backend.settings)
    api = kube_cluster.api_client()
    try:
        return client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    finally:
        api.close()


def _template_managers(deployment: Any) -> set[tuple[str, str]]:
    """(manager, operation) of every managedFields entry that owns part of the Pod template."""
    return {
        (entry.manager, entry.operation)
        for entry in deployment.metadata.managed_fields or []
        if "f:template" in ((entry.fields_v1 or {}).get("f:spec") or {})
    }


async def test_changed_image_and_resources_reach_a_running_serve_by_server_side_apply(
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    service: ServeService,
) -> None:
    # Given an AVAILABLE serve
    await post_until_available(api)
    backend = _backend(service)

    # When the reconciler runs with the settings unchanged
    with counting(backend._api.api_client()) as calls:
        await asyncio.to_thread(service.reconcile)
    # Then it writes nothing to the cluster
    assert calls.writes() == []

    # When the image and resources change and the reconciler runs again
    backend.image = "tensorflow/serving:2.14.1-k6"
    backend.resources = {"cpu": "750m", "memory": "1536Mi"}
    await asyncio.to_thread(service.reconcile)

    # Then the running serve's Deployment has them, applied by jupyter-modelserve only
    deployment = _deployment(kube_cluster, kube_namespace, backend)
    [container] = deployment.spec.template.spec.containers
    assert container.image == "tensorflow/serving:2.14.1-k6"
    assert container.resources.limits == {"cpu": "750m", "memory": "1536Mi"}
    assert _template_managers(deployment) == {(MANAGER, "Apply")}

    # And the rollout completes on the new Pod
    def rolled_out() -> bool:
        live = _deployment(kube_cluster, kube_namespace, backend)
        status = live.status
        return bool(
            status.observed_generation == live.metadata.generation
            and status.updated_replicas == 1
            and status.available_replicas == 1
            and not status.unavailable_replicas
        )

    wait_for(rolled_out, timeout=60, what="the rollout of the new settings")


@pytest.mark.parametrize("scaler", ["field-manager", "scale-subresource"])
async def test_replicas_someone_else_set_are_never_overwritten(
    scaler: str,
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    service: ServeService,
) -> None:
    from kubernetes import client

    # Given an AVAILABLE serve that something else scaled: an HPA-like field manager, or the
    # /scale subresource (which a 1.20 API server does not record in managedFields)
    await post_until_available(api)
    backend = _backend(service)
    name = naming.object_name(ServeSpec("simple", 1, ""), backend.settings)
    admin = kube_cluster.api_client()
    try:
        apps = client.AppsV1Api(admin)
        if scaler == "field-manager":
            apps.patch_namespaced_deployment(
                name, kube_namespace, {"spec": {"replicas": 3}}, field_manager="hpa-like"
            )
        else:
            apps.patch_namespaced_deployment_scale(
                name, kube_namespace, {"spec": {"replicas": 3}}, field_manager="hpa-like"
            )
    finally:
        admin.close()

    # When a settings change is applied by the reconciler
    backend.resources = {"cpu": "600m", "memory": "1Gi"}
    await asyncio.to_thread(service.reconcile)

    # Then the change is in, and the replicas are still theirs
    deployment = _deployment(kube_cluster, kube_namespace, backend)
    assert deployment.spec.template.spec.containers[0].resources.limits["cpu"] == "600m"
    assert deployment.spec.replicas == 3


async def test_a_serve_that_gains_a_gpu_switches_to_recreate(
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    service: ServeService,
) -> None:
    # Given an AVAILABLE CPU serve, updated by rolling updates
    await post_until_available(api)
    backend = _backend(service)
    assert _deployment(kube_cluster, kube_namespace, backend).spec.strategy.type == "RollingUpdate"

    # When the settings ask for a GPU and the reconciler runs
    backend.resources = {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"}
    await asyncio.to_thread(service.reconcile)

    # Then the Deployment stops the old Pod (holding the GPU) before starting the new one
    deployment = _deployment(kube_cluster, kube_namespace, backend)
    assert deployment.spec.strategy.type == "Recreate"
    assert deployment.spec.strategy.rolling_update is None
    assert deployment.spec.template.spec.containers[0].image.endswith("-gpu")


@pytest.mark.parametrize(
    ("access_modes", "strategy"),
    [(["ReadWriteOnce"], "Recreate"), (["ReadOnlyMany", "ReadWriteOnce"], "RollingUpdate")],
)
async def test_a_serve_on_a_read_write_once_volume_uses_recreate(
    access_modes: list[str],
    strategy: str,
    api: Api,
    simple_registered: dict[str, Any],
    kube_cluster: KubeCluster,
    kube_namespace: str,
    service: ServeService,
) -> None:
    from kubernetes import client

    # Given the model volume is a claim with these access modes
    admin = kube_cluster.api_client()
    try:
        client.CoreV1Api(admin).create_namespaced_persistent_volume_claim(
            kube_namespace,
            {
                "metadata": {"name": "models"},
                "spec": {
                    "accessModes": access_modes,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
    finally:
        admin.close()

    # When a serve is created
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200, envelope

    # Then a claim that attaches to one node at a time gets Recreate, a shared one rolls
    deployment = _deployment(kube_cluster, kube_namespace, _backend(service))
    assert deployment.spec.strategy.type == strategy
