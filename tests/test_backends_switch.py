"""Switching backends: serves carry the backend that runs them, and only that backend sees them.

A real `jupyter modelserve` process serves on the local backend, then a Jupyter server with the
kubernetes backend (pytest-jupyter's, in the very same Jupyter folders, so the same registry)
runs and reconciles, then the local one comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.app import ModelServeApp
from jupyter_modelserve.backends import manifests, naming
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings

from .conftest import SEED_BODY, Api, post_json, server_config
from .kube.fixtures import KubeCluster
from .kube.kubelet import StandInKubelet
from .servers import JupyterProcess, kill_model_server

PREDICT = {"instances": [1.0, 2.0, 5.0]}
PREDICTED = {"predictions": [2.5, 3.0, 4.5]}


@pytest.fixture
def local_jupyter(tmp_path: Path, half_plus_two: Path) -> Iterator[tuple[JupyterProcess, str]]:
    """simple 1 served on the local backend by a real Jupyter server, stopped again; and the url.

    Its Jupyter folders are tmp_path's data/config/runtime, the ones pytest-jupyter's server
    uses too: both read one registry.
    """
    local = JupyterProcess(tmp_path, {"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
    try:
        local.start()
        code, _ = local.call(
            "POST", "/api/v1/model-version", {"name": "simple", "source": str(half_plus_two)}
        )
        assert code == 200
        code, envelope = local.call("POST", "/api/v1/serve", SEED_BODY, wait=60)
        assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
        local.stop()  # hands the reconciler lease on; its model server keeps serving
        yield local, envelope["result"]["url"]
    finally:
        local.stop()
        kill_model_server(local.env["JUPYTER_DATA_DIR"])


ORPHAN = ServeSpec("orphan", 1, "/models/orphan/1")


@pytest.fixture
def orphan_deployment(
    kube_cluster: KubeCluster, kube_namespace: str
) -> Iterator[Callable[[], Any]]:
    """A Deployment of ours that no serve row wants; reads it back (None once it is gone).

    Its removal shows that the kubernetes server's start-up reconcile ran.
    """
    from kubernetes import client

    api_client = kube_cluster.api_client()
    apps = client.AppsV1Api(api_client)
    settings = ClusterSettings(
        namespace=kube_namespace, model_volume="models", artifact_root="/models", instance="t"
    )
    body: Any = manifests.deployment(ORPHAN, settings)  # the client takes a plain dict too
    apps.create_namespaced_deployment(kube_namespace, body)
    name = naming.object_name(ORPHAN, settings)

    def read() -> Any:
        found: list[Any] = apps.list_namespaced_deployment(kube_namespace).items
        return next((d for d in found if d.metadata.name == name), None)

    yield read
    api_client.close()


@pytest.fixture
def jp_server_config(
    local_jupyter: tuple[JupyterProcess, str],
    orphan_deployment: Callable[[], Any],
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> dict[str, Any]:
    # Depends on local_jupyter and the orphan so both exist before this server starts.
    return server_config(
        ModelServeApp={"backend": "kubernetes"},
        KubernetesBackend={
            "kubeconfig": str(kube_cluster.kubeconfig),
            "namespace": kube_namespace,
            "model_volume": "models",
            "instance": "t",  # the orphan's
        },
    )


async def test_local_serves_are_not_listed_or_touched_by_a_kubernetes_server_and_come_back(
    api: Api,
    modelserve_app: ModelServeApp,
    local_jupyter: tuple[JupyterProcess, str],
    orphan_deployment: Callable[[], Any],
    kubelet: StandInKubelet,
    half_plus_two: Path,
) -> None:
    # Given simple 1 AVAILABLE on the local backend, then a Jupyter server on the same registry
    # with the kubernetes backend, whose start-up reconcile ran: it removed the orphan
    local, url = local_jupyter
    service = modelserve_app.service
    assert service is not None and service.backend.name == "kubernetes"
    orphan = orphan_deployment()
    assert orphan is None or orphan.metadata.deletion_timestamp is not None, orphan

    # Then the kubernetes server does not list the local serve
    code, listed = await api("GET", "/api/v1/serve")
    assert (code, listed["result"]) == (200, [])
    # And serves its own beside it
    code, _ = await api(
        "POST", "/api/v1/model-version", {"name": "other", "source": str(half_plus_two)}
    )
    assert code == 200
    body = {"modelName": "other", "modelVersion": 1}
    code, envelope = await api("POST", "/api/v1/serve", body, params={"wait": 60})
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    _, listed = await api("GET", "/api/v1/serve")
    assert [(s["modelName"], s["backend"]) for s in listed["result"]] == [("other", "kubernetes")]
    # And the local model server was left alone: the local url still predicts
    assert await post_json(url, PREDICT) == (200, PREDICTED)

    # When the Jupyter server is back on the local backend
    local.start()

    # Then it finds its serve as it was, and not the kubernetes one
    code, envelope = local.call("GET", "/api/v1/serve")
    assert code == 200
    assert [(s["modelName"], s["state"], s["backend"], s["url"]) for s in envelope["result"]] == [
        ("simple", "AVAILABLE", "local", url)
    ]
    assert await post_json(url, PREDICT) == (200, PREDICTED)


async def test_a_kubernetes_server_asked_for_a_local_serve_by_name_leaves_it_alone(
    api: Api, modelserve_app: ModelServeApp, local_jupyter: tuple[JupyterProcess, str]
) -> None:
    # Given simple 1 AVAILABLE on the local backend, and a server with the kubernetes backend
    local, url = local_jupyter

    # When the kubernetes server is asked for it, to serve it, to delete it, by name
    for method in ("GET", "POST", "DELETE"):
        path = "/api/v1/serve/simple/1" if method == "GET" else "/api/v1/serve"
        code, envelope = await api(method, path, None if method == "GET" else SEED_BODY)

        # Then it answers that the serve is not its own, naming the backend that runs it
        assert code in (404, 409), (method, envelope)
        assert "local backend" in envelope["message"], (method, envelope)

    # And the local server, back, finds it as it was
    local.start()
    code, envelope = local.call("GET", "/api/v1/serve/simple/1")
    assert code == 200, envelope
    assert (envelope["result"]["state"], envelope["result"]["url"]) == ("AVAILABLE", url)
    assert await post_json(url, PREDICT) == (200, PREDICTED)
