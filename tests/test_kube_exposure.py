"""How serves are reached, on the real control plane (issue 11, item 9): Ingress routes keyed on the
registry version, the url learnt from an Ingress's or LoadBalancer's status, the LoadBalancer
opt-in, and the NetworkPolicy that lives and dies with its serve.

Every scenario runs as cluster admin and as the identity bound only to deploy/rbac.yaml. No
ingress controller or cloud load balancer runs here: the test writes the status they would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_modelserve.backends import naming
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, eventually, server_config
from .kube.fixtures import KubeCluster
from .kube.kubelet import StandInKubelet
from .kube.serves import post_until_available, serve_of

RBAC = Path(__file__).parent.parent / "deploy" / "rbac.yaml"
JUPYTER_PODS = {"app": "jupyterhub", "component": "singleuser-server"}
INGRESS_NAMESPACE = {"kubernetes.io/metadata.name": "ingress-nginx"}


@pytest.fixture(params=["admin", "rbac-role"])
def kubeconfig(
    request: pytest.FixtureRequest, kube_cluster: KubeCluster, kube_namespace: str
) -> Path:
    """Cluster admin, then a ServiceAccount bound only to the Role of deploy/rbac.yaml."""
    if request.param == "admin":
        return kube_cluster.kubeconfig
    role = next(d for d in yaml.safe_load_all(RBAC.read_text()) if d["kind"] == "Role")
    role["metadata"]["namespace"] = kube_namespace
    return kube_cluster.restricted_user(kube_namespace, role).kubeconfig


@pytest.fixture
def exposure() -> dict[str, Any]:
    """The test's exposure settings of c.KubernetesBackend (tests parametrize it)."""
    return {}


@pytest.fixture
def jp_server_config(
    kube_namespace: str,
    kubeconfig: Path,
    exposure: dict[str, Any],
) -> dict[str, Any]:
    return server_config(
        ModelServeApp={"backend": "kubernetes"},
        KubernetesBackend={
            "kubeconfig": str(kubeconfig),
            "namespace": kube_namespace,
            "model_volume": "models",
            **exposure,
        },
    )


def _name(service: ServeService, model: str = "simple", version: int = 1) -> str:
    settings = service.backend.settings  # type: ignore[attr-defined]
    return naming.object_name(ServeSpec(model, version, ""), settings)


def _kinds(kube_cluster: KubeCluster, namespace: str) -> dict[str, list[Any]]:
    """The objects of the kinds a serve is exposed by, as the admin reads them."""
    from kubernetes import client

    api = kube_cluster.api_client()
    try:
        core, networking = client.CoreV1Api(api), client.NetworkingV1Api(api)
        return {
            "Deployment": client.AppsV1Api(api).list_namespaced_deployment(namespace).items,
            "Service": core.list_namespaced_service(namespace).items,
            "Ingress": networking.list_namespaced_ingress(namespace).items,
            "NetworkPolicy": networking.list_namespaced_network_policy(namespace).items,
        }
    finally:
        api.close()


@pytest.mark.parametrize("exposure", [{"ingress_host": "models.example.com"}])
async def test_two_sources_ending_in_1_under_two_registry_versions_get_distinct_routes(
    api: Api,
    service: ServeService,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    # Given registry versions 1 and 2 of one model whose sources both end in a folder named 1
    for bucket in ("gs://team-a/remote/1", "gs://team-b/remote/1"):
        code, envelope = await api(
            "POST", "/api/v1/model-version", {"name": "remote", "source": bucket}
        )
        assert code == 200, envelope

    # When both are served behind one Ingress host
    urls = []
    for version in (1, 2):
        body = {"modelName": "remote", "modelVersion": version}
        code, envelope = await api("POST", "/api/v1/serve", body)
        assert code == 200, envelope
        urls.append(envelope["result"]["url"])

    # Then the API server holds one Ingress per version, each routing its own registry version
    ingresses = {i.metadata.name: i for i in _kinds(kube_cluster, kube_namespace)["Ingress"]}
    routes = {}
    for version in (1, 2):
        [rule] = ingresses[_name(service, "remote", version)].spec.rules
        assert rule.host == "models.example.com"
        routes[version] = {(p.path, p.path_type) for p in rule.http.paths}
        assert (f"/v1/models/remote/versions/{version}:predict", "Exact") in routes[version]
    # And no route of one is a route of the other (a folder-keyed path would be shared)
    assert not routes[1] & routes[2]
    assert urls == [
        f"http://models.example.com/v1/models/remote/versions/{v}:predict" for v in (1, 2)
    ]


async def _url_is(api: Api, url: str) -> Any:
    serve = await serve_of(api)
    return serve if serve is not None and serve["url"] == url else None


@pytest.mark.parametrize(
    ("exposure", "kind", "address", "url"),
    [
        (
            {"ingress_host": "*", "ingress_tls_secret": "models-tls"},
            "Ingress",
            {"hostname": "lb.example.test"},
            "https://lb.example.test/v1/models/simple/versions/1:predict",
        ),
        (
            {"service_type": "LoadBalancer", "allow_load_balancer": True},
            "Service",
            {"ip": "203.0.113.9"},
            "http://203.0.113.9:8501/v1/models/simple/versions/1:predict",
        ),
    ],
    ids=["ingress", "load-balancer"],
)
async def test_the_url_is_learnt_from_the_status_once_the_cluster_reports_an_address(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kind: str,
    address: dict[str, str],
    url: str,
) -> None:
    from kubernetes import client

    # Given an AVAILABLE serve whose Ingress or LoadBalancer has no address yet
    served = await post_until_available(api)
    name = _name(service)
    assert served["url"] == (
        f"http://{name}.{kube_namespace}.svc:8501/v1/models/simple/versions/1:predict"
    )

    # When the ingress controller or cloud load balancer writes the address into its status
    status = {"status": {"loadBalancer": {"ingress": [address]}}}
    admin = kube_cluster.api_client()
    try:
        if kind == "Ingress":
            client.NetworkingV1Api(admin).patch_namespaced_ingress_status(
                name, kube_namespace, status
            )
        else:
            client.CoreV1Api(admin).patch_namespaced_service_status(name, kube_namespace, status)
    finally:
        admin.close()

    # Then GET gives the url at that address, and the serve stays AVAILABLE
    serve = await eventually(lambda: _url_is(api, url), what=f"the url from the {kind} status")
    assert serve["state"] == "AVAILABLE"
    # And the row keeps it: the list reads it too
    _, listed = await api("GET", "/api/v1/serve")
    assert [s["url"] for s in listed["result"]] == [url]


@pytest.mark.parametrize("exposure", [{"service_type": "LoadBalancer"}])
async def test_a_load_balancer_is_refused_unless_allowed_and_nothing_is_created(
    api: Api,
    simple_registered: dict[str, Any],
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    # Given service_type LoadBalancer without allow_load_balancer
    # When a serve is created
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)

    # Then it is refused, naming the setting that allows it
    assert code == 400, envelope
    assert "c.KubernetesBackend.allow_load_balancer" in envelope["message"]
    # And nothing of it exists in the cluster
    assert not any(_kinds(kube_cluster, kube_namespace).values())
    _, listed = await api("GET", "/api/v1/serve")
    assert listed["result"] == []


@pytest.mark.parametrize(
    "exposure",
    [
        {
            "network_policy": True,
            "jupyter_pod_selector": JUPYTER_PODS,
            "ingress_namespace_selector": INGRESS_NAMESPACE,
        }
    ],
)
async def test_the_network_policy_is_created_and_deleted_with_its_serve(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    # Given network_policy on
    # When a serve becomes AVAILABLE
    await post_until_available(api)

    # Then its NetworkPolicy fences exactly its Pods, admitting the Jupyter Pods and the ingress
    # controller's namespace
    objects = _kinds(kube_cluster, kube_namespace)
    [policy] = objects["NetworkPolicy"]
    [deployment] = objects["Deployment"]
    assert policy.metadata.name == _name(service)
    assert policy.spec.pod_selector.match_labels == deployment.spec.selector.match_labels
    [rule] = policy.spec.ingress
    peers = [(p.pod_selector, p.namespace_selector) for p in rule._from]
    assert [(p and p.match_labels, n and n.match_labels) for p, n in peers] == [
        (JUPYTER_PODS, None),
        (None, INGRESS_NAMESPACE),
    ]
    assert sorted(p.port for p in rule.ports) == [8500, 8501]

    # When the serve is deleted
    code, envelope = await api("DELETE", "/api/v1/serve", SEED_BODY)
    assert code == 200, envelope

    # Then its NetworkPolicy is gone with everything else
    assert not any(_kinds(kube_cluster, kube_namespace).values())
    await eventually(lambda: _gone(api), what="the serve to be gone")


async def _gone(api: Api) -> bool:
    _, listed = await api("GET", "/api/v1/serve")
    return listed["result"] == []


@pytest.mark.parametrize("exposure", [{"ingress_host": "models.example.com"}])
async def test_a_stored_url_follows_a_changed_ingress_host_and_tls_setting(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
) -> None:
    # Given an AVAILABLE serve whose row holds the url of the first host
    served = await post_until_available(api)
    assert served["url"] == "http://models.example.com/v1/models/simple/versions/1:predict"

    # When the settings move the Ingress to another host behind TLS (no status says anything)
    backend = service.backend
    backend.ingress_host = "new.example.com"  # type: ignore[attr-defined]
    backend.ingress_tls_secret = "models-tls"  # type: ignore[attr-defined]

    # Then GET gives the url the current settings make, and the row keeps it for the list
    url = "https://new.example.com/v1/models/simple/versions/1:predict"
    serve = await eventually(lambda: _url_is(api, url), what="the url of the new host")
    assert serve["state"] == "AVAILABLE"
    _, listed = await api("GET", "/api/v1/serve")
    assert [s["url"] for s in listed["result"]] == [url]
