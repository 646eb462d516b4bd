"""Kubernetes serves across a Jupyter server restart, past deadlines, and with no cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.backends import manifests
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings

from .conftest import SEED_BODY, Api, eventually, server_config
from .kube.fixtures import KubeCluster, wait_for
from .kube.kubelet import StandInKubelet
from .servers import JupyterProcess


def _kube_config(kubeconfig: Path, namespace: str, **extra: Any) -> dict[str, Any]:
    return {
        "kubeconfig": str(kubeconfig),
        "namespace": namespace,
        "model_volume": "models",
        "instance": "t",  # object names read ms-t-<model>-v<version>
        **extra,
    }


@pytest.fixture
def kube_jupyter(
    tmp_path: Path, kube_cluster: KubeCluster, kube_namespace: str
) -> Iterator[JupyterProcess]:
    server = JupyterProcess(
        tmp_path,
        {
            "ModelServeApp": {"backend": "kubernetes"},
            "KubernetesBackend": _kube_config(kube_cluster.kubeconfig, kube_namespace),
        },
    )
    yield server
    server.stop()


def test_a_restarted_jupyter_server_reconciles_with_the_cluster(
    kube_jupyter: JupyterProcess,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kubelet: StandInKubelet,
    half_plus_two: Path,
) -> None:
    from kubernetes import client

    # Given simple 1 AVAILABLE on the cluster
    kube_jupyter.start()
    code, registered = kube_jupyter.call(
        "POST", "/api/v1/model-version", {"name": "simple", "source": str(half_plus_two)}
    )
    assert code == 200
    code, envelope = kube_jupyter.call("POST", "/api/v1/serve", SEED_BODY, wait=60)
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope

    # When, while the Jupyter server is down, its Deployment vanishes and an orphan appears
    kube_jupyter.stop()
    api = kube_cluster.api_client()
    apps = client.AppsV1Api(api)
    apps.delete_namespaced_deployment(
        "ms-t-simple-v1", kube_namespace, propagation_policy="Foreground"
    )
    settings = ClusterSettings(
        namespace=kube_namespace,
        model_volume="models",
        artifact_root=str(Path(registered["result"]["source"]).parents[1]),
        instance="t",
    )
    orphan = ServeSpec("simple", 7, registered["result"]["source"].rsplit("/", 1)[0] + "/7")
    apps.create_namespaced_deployment(kube_namespace, manifests.deployment(orphan, settings))

    def names() -> set[str]:
        return {d.metadata.name for d in apps.list_namespaced_deployment(kube_namespace).items}

    wait_for(lambda: "ms-t-simple-v1" not in names(), what="the Deployment to be deleted")

    # Then the restarted server's start-up reconcile removes the orphan by itself
    kube_jupyter.start()
    wait_for(lambda: "ms-t-simple-v7" not in names(), timeout=60, what="the orphan to be removed")
    # And the serve whose objects vanished reads FAILED, saying what happened
    code, envelope = kube_jupyter.call("GET", "/api/v1/serve/simple/1")
    assert code == 200 and envelope["result"]["state"] == "FAILED"
    assert envelope["result"]["reason"].startswith(
        "Deployment ms-t-simple-v1 is missing from namespace"
    )
    assert "left behind: ConfigMap, Service" in envelope["result"]["reason"]
    api.close()


@pytest.fixture
def jp_server_config(kube_cluster: KubeCluster, kube_namespace: str) -> dict[str, Any]:
    return server_config(
        ModelServeApp={"backend": "kubernetes", "load_timeout": 3.0},
        KubernetesBackend=_kube_config(kube_cluster.kubeconfig, kube_namespace),
    )


async def test_no_serve_stays_loading_past_the_deadline(
    api: Api, simple_registered: dict[str, Any], kubelet: StandInKubelet
) -> None:
    # Given Pods that start but never become ready
    kubelet.policy = "pending"
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200

    # Then past the load deadline the serve is FAILED with what was last seen
    async def failed() -> Any:
        _, one = await api("GET", "/api/v1/serve/simple/1")
        return one["result"]["state"] == "FAILED" and one["result"]

    serve = await eventually(failed, timeout=30, what="the deadline to pass")
    assert serve["reason"].startswith("not AVAILABLE after 3 s; last seen: ")
    # And it stays FAILED although the cluster is still trying: waiters saw the verdict
    for _ in range(3):
        _, again = await api("GET", "/api/v1/serve/simple/1")
        assert (again["result"]["state"], again["result"]["reason"]) == ("FAILED", serve["reason"])
