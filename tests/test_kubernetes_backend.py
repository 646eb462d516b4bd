"""The kubernetes backend against a real API server and controller manager (tests/kube).

Every scenario runs twice: as cluster admin, and as a ServiceAccount bound only to the Role
shipped in deploy/rbac.yaml, which proves that Role is enough. A stand-in kubelet plays the
node: it makes Pods ready, or fails them the way a real kubelet reports failures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_modelserve.backends import exposure, manifests
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.errors import InvalidInput
from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, eventually, server_config
from .kube.fixtures import KubeCluster
from .kube.kubelet import Outcome, StandInKubelet

RBAC = Path(__file__).parent.parent / "deploy" / "rbac.yaml"
IMAGE = "tensorflow/serving:2.14.1"


@pytest.fixture(params=["admin", "rbac-role"])
def kubeconfig(
    request: pytest.FixtureRequest, kube_cluster: KubeCluster, kube_namespace: str
) -> Path:
    if request.param == "admin":
        return kube_cluster.kubeconfig
    role = next(d for d in yaml.safe_load_all(RBAC.read_text()) if d["kind"] == "Role")
    role["metadata"]["namespace"] = kube_namespace
    return kube_cluster.restricted_user(kube_namespace, role).kubeconfig


@pytest.fixture
def jp_server_config(kube_namespace: str, kubeconfig: Path) -> dict[str, Any]:
    return server_config(
        ModelServeApp={"backend": "kubernetes"},
        KubernetesBackend={
            "kubeconfig": str(kubeconfig),
            "namespace": kube_namespace,
            "model_volume": "models",
            "resources": {"cpu": "500m", "memory": "1Gi"},
            "instance": "t",  # object names read ms-t-<model>-v<version>
        },
    )


def _objects(kube_cluster: KubeCluster, namespace: str) -> dict[str, list[str]]:
    """Every object a serve could leave behind, by kind."""
    from kubernetes import client

    api = kube_cluster.api_client()
    try:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        networking = client.NetworkingV1Api(api)
        found = {
            "Deployment": apps.list_namespaced_deployment(namespace).items,
            "ReplicaSet": apps.list_namespaced_replica_set(namespace).items,
            "Pod": core.list_namespaced_pod(namespace).items,
            "Service": core.list_namespaced_service(namespace).items,
            "ConfigMap": [
                c for c in core.list_namespaced_config_map(namespace).items
                if c.metadata.name != "kube-root-ca.crt"
            ],
            "Ingress": networking.list_namespaced_ingress(namespace).items,
        }  # fmt: skip
        return {kind: [o.metadata.name for o in items] for kind, items in found.items() if items}
    finally:
        api.close()


async def _state(api: Api, name: str = "simple", version: int = 1) -> Any:
    code, envelope = await api("GET", f"/api/v1/serve/{name}/{version}")
    return envelope["result"] if code == 200 else None


async def test_create_becomes_available_and_delete_leaves_nothing(
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    from kubernetes import client

    # When the seed's POST runs on the kubernetes backend
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200, envelope
    serve = envelope["result"]
    assert serve["backend"] == "kubernetes"
    assert serve["url"] == (
        f"http://ms-t-simple-v1.{kube_namespace}.svc:8501/v1/models/simple/versions/1:predict"
    )

    # Then its objects exist as designed
    api_client = kube_cluster.api_client()
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(
        "ms-t-simple-v1", kube_namespace
    )
    pod_spec = deployment.spec.template.spec
    [container] = pod_spec.containers
    assert container.image == IMAGE
    assert "--model_config_file=/etc/modelserve/models.config" in container.args
    assert container.readiness_probe.http_get.path == "/v1/models/simple/versions/1/metadata"
    assert container.resources.limits == {"cpu": "500m", "memory": "1Gi"}
    models = next(v for v in pod_spec.volumes if v.name == "models")
    assert models.persistent_volume_claim.claim_name == "models"
    assert models.persistent_volume_claim.read_only is True
    assert deployment.metadata.labels["app.kubernetes.io/managed-by"] == "jupyter-modelserve"
    assert deployment.metadata.labels["modelserve/name"] == "simple"
    config = client.CoreV1Api(api_client).read_namespaced_config_map(
        "ms-t-simple-v1", kube_namespace
    )
    assert "versions: 1" in config.data["models.config"]
    api_client.close()

    # And once the kubelet makes its Pod ready, GET says AVAILABLE
    ready = await eventually(
        lambda: _available(api), timeout=60, what="the serve to become AVAILABLE"
    )
    assert ready["reason"] is None

    # When it is deleted, nothing of it is left, Pods included
    code, envelope = await api("DELETE", "/api/v1/serve", SEED_BODY)
    assert code == 200, envelope
    assert _objects(kube_cluster, kube_namespace) == {}
    _, listed = await api("GET", "/api/v1/serve")
    assert listed["result"] == []


async def _available(api: Api) -> Any:
    serve = await _state(api)
    return serve if serve and serve["state"] == "AVAILABLE" else None


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (
            Outcome("crash_loop", message="Failed to start server: no such model path"),
            ["CrashLoopBackOff", "exit code 1", "Failed to start server: no such model path"],
        ),
    ],
    ids=["crash-loop"],
)
async def test_failures_end_failed_with_the_reason(
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    outcome: Outcome,
    expected: list[str],
) -> None:
    kubelet.policy = outcome
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 422, envelope
    for fragment in expected:
        assert fragment in envelope["message"]
    serve = await _state(api)
    assert serve["state"] == "FAILED"
    for fragment in expected:
        assert fragment in serve["reason"]


async def test_sources_the_cluster_cannot_read_are_400s_before_anything_exists(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    # A scheme the download init container cannot read (s3:// and gs:// need no Secret: a
    # ServiceAccount, a node role or a public bucket will do, tests/test_kube_storage.py)
    with pytest.raises(InvalidInput, match="downloads only s3:// and gs://"):
        service.backend.validate(ServeSpec("remote", 1, "hdfs://namenode/remote/1"))

    # A local artifact with no volume to mount it from
    service.backend.model_volume = ""  # type: ignore[attr-defined]
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 400 and "c.KubernetesBackend.model_volume is not set" in envelope["message"]

    assert _objects(kube_cluster, kube_namespace) == {}
    _, listed = await api("GET", "/api/v1/serve")
    assert listed["result"] == []


async def test_our_own_objects_are_adopted_and_foreign_ones_are_a_409(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    from kubernetes import client

    api_client = kube_cluster.api_client()
    core = client.CoreV1Api(api_client)
    settings = service.backend.settings  # type: ignore[attr-defined]
    spec = ServeSpec("simple", 1, simple_registered["source"])

    # Given a Service this backend made earlier for simple 1 (a crash between two creates)
    existing = core.create_namespaced_service(kube_namespace, exposure.service(spec, settings))
    # When simple 1 is served, the Service is adopted, not duplicated or refused
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200, envelope
    adopted = core.read_namespaced_service("ms-t-simple-v1", kube_namespace)
    assert adopted.metadata.uid == existing.metadata.uid
    await api("DELETE", "/api/v1/serve", SEED_BODY)

    # Given a ConfigMap of the same name that somebody else made
    core.create_namespaced_config_map(
        kube_namespace, {"metadata": {"name": "ms-t-simple-v1"}, "data": {"mine": "yes"}}
    )
    # Then the create is a 409 naming it, and nothing of the serve is created
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 409
    assert "ConfigMap named ms-t-simple-v1 already exists" in envelope["message"]
    assert _objects(kube_cluster, kube_namespace) == {"ConfigMap": ["ms-t-simple-v1"]}
    api_client.close()


async def test_reconcile_removes_orphans_and_reports_vanished_serves(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    from kubernetes import client

    # Given simple 1 AVAILABLE, and a labelled Deployment that no serve row wants
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200
    await eventually(lambda: _available(api), timeout=60, what="AVAILABLE")
    settings = service.backend.settings  # type: ignore[attr-defined]
    orphan = ServeSpec("simple", 9, simple_registered["source"].replace("/1", "/9"))
    api_client = kube_cluster.api_client()
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(kube_namespace, manifests.deployment(orphan, settings))
    # And simple 1's Deployment deleted behind our back
    apps.delete_namespaced_deployment(
        "ms-t-simple-v1", kube_namespace, propagation_policy="Foreground"
    )

    # When the service reconciles (as the reconciler lease holder does)

    def deployments() -> list[str]:
        return [d.metadata.name for d in apps.list_namespaced_deployment(kube_namespace).items]

    await eventually(_as_async(lambda: "ms-t-simple-v1" not in deployments()), what="deletion")
    # (a server started later on this registry: one created in this process's life never sweeps)
    later = service.backend.parent.build_service()  # type: ignore[attr-defined]
    try:
        later.reconcile()
    finally:
        later.close()

    # Then the orphan is gone, and the serve whose objects vanished reads FAILED with why
    await eventually(
        _as_async(lambda: "ms-t-simple-v9" not in deployments()), what="orphan removal"
    )
    serve = await _state(api)
    assert serve["state"] == "FAILED"
    assert serve["reason"].startswith("Deployment ms-t-simple-v1 is missing from namespace")
    api_client.close()


async def test_logs_name_each_pod(
    api: Api, simple_registered: dict[str, Any], kubelet: StandInKubelet
) -> None:
    await api("POST", "/api/v1/serve", SEED_BODY)
    await eventually(lambda: _available(api), timeout=60, what="AVAILABLE")
    code, envelope = await api("GET", "/api/v1/serve/simple/1/logs", params={"tail": 10})
    assert code == 200
    # The stand-in kubelet runs no containers, so the API server has no log to give: each pod
    # says so by name instead of the route failing.
    assert envelope["result"] and all(
        line.startswith("[ms-t-simple-v1-") for line in envelope["result"]
    )


def _as_async(check: Any) -> Any:
    async def run() -> Any:
        return check()

    return run


async def test_a_deployment_past_its_progress_deadline_is_failed(
    api: Api, simple_registered: dict[str, Any], service: ServeService, kubelet: StandInKubelet
) -> None:
    # Given Pods that run but never become ready, and a one-second progress deadline
    kubelet.policy = "pending"
    service.backend.progress_deadline_seconds = 1  # type: ignore[attr-defined]
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200

    # Then the Deployment controller's verdict becomes the serve's reason
    async def failed() -> Any:
        serve = await _state(api)
        return serve if serve and serve["state"] == "FAILED" else None

    serve = await eventually(failed, timeout=60, what="ProgressDeadlineExceeded")
    assert serve["reason"].startswith("ProgressDeadlineExceeded: ")
    assert "ms-t-simple-v1" in serve["reason"]


async def test_an_unschedulable_pod_is_reported_while_it_waits(
    api: Api, simple_registered: dict[str, Any], kubelet: StandInKubelet
) -> None:
    # An autoscaler may still add a node: the scheduler's message shows, but it is no failure
    kubelet.policy = Outcome("unschedulable")
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200

    async def reported() -> Any:
        serve = await _state(api)
        return serve if serve and "Unschedulable" in (serve["reason"] or "") else None

    serve = await eventually(reported, timeout=60, what="the scheduler's reason")
    assert serve["state"] == "PENDING"
    assert serve["reason"].startswith("Unschedulable: Pod ms-t-simple-v1-")
