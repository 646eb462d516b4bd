"""How serves are reached, with no cluster: Ingress routes, TLS, Service types, the url learnt from
the cluster's status, and the optional NetworkPolicy (issue 11, item 9)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from jupyter_modelserve.backends import exposure, manifests, netpolicy
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings
from jupyter_modelserve.errors import InvalidInput

from .kube import model

ROOT = "/srv/jupyter/artifacts"
# Two registry versions whose sources both end in a folder named 1.
FIRST = ServeSpec("simple", 1, f"{ROOT}/simple/1")
SECOND = ServeSpec("simple", 2, f"{ROOT}/retrained/simple/1")
BASE = ClusterSettings(
    namespace="serving", model_volume="models", artifact_root=ROOT, instance="lab"
)
HOSTED = ClusterSettings(**{**BASE.__dict__, "ingress_host": "models.example.com"})
FENCED = ClusterSettings(
    **{
        **BASE.__dict__,
        "network_policy": True,
        "jupyter_pod_selector": {"app": "jupyterhub", "component": "singleuser-server"},
        "ingress_namespace_selector": {"kubernetes.io/metadata.name": "ingress-nginx"},
    }
)
KUBERNETES_VERSIONS = ["1.36.0", "1.37.0"]


def _with(settings: ClusterSettings, **changes: Any) -> ClusterSettings:
    return ClusterSettings(**{**settings.__dict__, **changes})


def _paths(obj: dict[str, Any]) -> list[tuple[str, str]]:
    [rule] = obj["spec"]["rules"]
    return [(p["path"], p["pathType"]) for p in rule["http"]["paths"]]


def test_each_verb_of_the_registry_version_has_its_own_exact_route() -> None:
    # Given an Ingress host
    # When the second registry version's Ingress is built (its source folder is named 1)
    ingress = exposure.ingress(SECOND, HOSTED)

    # Then every TF Serving verb of version 2 is routed exactly, and nothing else
    assert ingress is not None
    assert _paths(ingress) == [
        ("/v1/models/simple/versions/2:predict", "Exact"),
        ("/v1/models/simple/versions/2:classify", "Exact"),
        ("/v1/models/simple/versions/2:regress", "Exact"),
        ("/v1/models/simple/versions/2/metadata", "Exact"),
        ("/v1/models/simple/versions/2", "Exact"),
    ]
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "models.example.com"
    assert {p["backend"]["service"]["name"] for p in rule["http"]["paths"]} == {
        ingress["metadata"]["name"]
    }
    # And its url names the registry version too
    assert exposure.predict_url(SECOND, HOSTED) == (
        "http://models.example.com/v1/models/simple/versions/2:predict"
    )


def test_two_sources_ending_in_the_same_folder_never_share_a_route() -> None:
    # Given two registry versions whose sources both end in /1
    # When both get an Ingress on the same host
    first, second = exposure.ingress(FIRST, HOSTED), exposure.ingress(SECOND, HOSTED)

    # Then no path of one is a path of the other, and their urls differ
    assert first is not None and second is not None
    assert not {p for p, _ in _paths(first)} & {p for p, _ in _paths(second)}
    assert exposure.predict_url(FIRST, HOSTED) != exposure.predict_url(SECOND, HOSTED)


def test_the_path_type_can_be_left_to_controllers_that_refuse_colons_in_exact_paths() -> None:
    # Given ingress_path_type ImplementationSpecific (ingress-nginx's strict path validation
    # refuses ':' in Exact paths)
    settings = _with(HOSTED, ingress_path_type="ImplementationSpecific")

    # When the Ingress is built, Then the same five routes use that type
    ingress = exposure.ingress(SECOND, settings)
    assert ingress is not None
    assert {t for _, t in _paths(ingress)} == {"ImplementationSpecific"}
    assert [p for p, _ in _paths(ingress)] == [
        p for p, _ in _paths(exposure.ingress(SECOND, HOSTED) or {})
    ]

    # And a type that would widen the routes (Prefix) or is unknown is refused, naming the setting
    for wrong in ("Prefix", "exact"):
        with pytest.raises(InvalidInput, match=r"ingress_path_type .* not one of Exact, Impl"):
            manifests.manifests(SECOND, _with(HOSTED, ingress_path_type=wrong))


def test_tls_makes_the_url_https_and_names_the_secret_for_the_host() -> None:
    # Given a TLS Secret for the Ingress host
    settings = _with(HOSTED, ingress_tls_secret="models-tls")

    # When the Ingress and url are built
    ingress = exposure.ingress(FIRST, settings)

    # Then the Ingress terminates TLS for that host and the url is https
    assert ingress is not None
    assert ingress["spec"]["tls"] == [{"secretName": "models-tls", "hosts": ["models.example.com"]}]
    assert exposure.predict_url(FIRST, settings).startswith("https://models.example.com/")
    # And without the Secret there is no tls block and the url stays http
    plain = exposure.ingress(FIRST, HOSTED)
    assert plain is not None and "tls" not in plain["spec"]
    assert exposure.predict_url(FIRST, HOSTED).startswith("http://")


def test_annotations_reach_the_ingress_without_replacing_ours() -> None:
    # Given annotations for the ingress controller, one of them trying to reuse our key
    annotations = {
        "nginx.ingress.kubernetes.io/proxy-body-size": "64m",
        "modelserve/model-name": "spoofed",
    }
    settings = _with(HOSTED, ingress_annotations=annotations, ingress_class="nginx")

    # When the Ingress is built
    ingress = exposure.ingress(FIRST, settings)

    # Then the controller's annotation is there, and ours still names the model
    assert ingress is not None
    meta = ingress["metadata"]["annotations"]
    assert meta["nginx.ingress.kubernetes.io/proxy-body-size"] == "64m"
    assert meta["modelserve/model-name"] == "simple"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    # And the other objects do not get them
    service = exposure.service(FIRST, settings)
    assert "nginx.ingress.kubernetes.io/proxy-body-size" not in service["metadata"]["annotations"]


def test_any_host_ingress_has_no_host_rule_and_the_url_waits_for_its_status() -> None:
    # Given ingress_host "*" (no DNS name: the controller's address is the way in)
    settings = _with(BASE, ingress_host=exposure.ANY_HOST, ingress_tls_secret="tls")

    # When the Ingress is built
    ingress = exposure.ingress(FIRST, settings)

    # Then its rule matches any host, and TLS names no host
    assert ingress is not None
    [rule] = ingress["spec"]["rules"]
    assert "host" not in rule
    assert ingress["spec"]["tls"] == [{"secretName": "tls"}]
    # And until the cluster reports an address, the url is the in-cluster one
    assert exposure.predict_url(FIRST, settings) == (
        "http://" + exposure.cluster_endpoint(FIRST, settings).split("://")[1]
        + "/v1/models/simple/versions/1:predict"
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["LoadBalancer", "NodePort"])
def test_a_service_type_exposing_tf_serving_is_refused_unless_allowed(kind: str) -> None:
    # Given a Service type that reaches TF Serving from outside the cluster
    settings = _with(BASE, service_type=kind)

    # When a serve's objects are built, Then it is refused, naming the opt-in
    with pytest.raises(InvalidInput, match=r"allow_load_balancer") as refused:
        manifests.manifests(FIRST, settings)
    assert "no authentication" in refused.value.message

    # And once explicitly allowed, the Service has that type
    allowed = _with(settings, allow_load_balancer=True)
    assert exposure.service(FIRST, allowed)["spec"]["type"] == kind


@pytest.mark.parametrize("kind", ["ExternalName", "clusterip", ""])
def test_an_unknown_service_type_is_refused_naming_the_accepted_ones(kind: str) -> None:
    # Given a Service type that is not one of Kubernetes' serving types
    settings = _with(BASE, service_type=kind, allow_load_balancer=True)

    # When the Service is built, Then the error lists the types accepted
    with pytest.raises(InvalidInput, match=r"not one of ClusterIP, LoadBalancer, NodePort"):
        exposure.service(FIRST, settings)


def _ingress_status(**address: str) -> Any:
    from kubernetes.client import V1Ingress

    return model(V1Ingress, {"status": {"loadBalancer": {"ingress": [address]}}})


def _service_status(**address: str) -> Any:
    from kubernetes.client import V1Service

    return model(V1Service, {"status": {"loadBalancer": {"ingress": [address]}}})


def test_the_url_comes_from_the_ingress_status_once_it_has_an_address() -> None:
    settings = _with(BASE, ingress_host=exposure.ANY_HOST, ingress_tls_secret="tls")
    # Given an Ingress the controller has not admitted yet, Then nothing is learnt
    assert exposure.learnt_url(FIRST, settings, _ingress_status(), None) is None
    assert exposure.learnt_url(FIRST, settings, None, None) is None

    # When it reports a hostname, Then the url is https on that hostname
    learnt = exposure.learnt_url(FIRST, settings, _ingress_status(hostname="lb.example"), None)
    assert learnt == "https://lb.example/v1/models/simple/versions/1:predict"
    # And an IP works as well
    assert exposure.learnt_url(FIRST, settings, _ingress_status(ip="203.0.113.7"), None) == (
        "https://203.0.113.7/v1/models/simple/versions/1:predict"
    )


def test_the_url_comes_from_a_load_balancer_status_with_the_rest_port() -> None:
    settings = _with(BASE, service_type="LoadBalancer", allow_load_balancer=True)
    # Given a LoadBalancer Service with an IPv6 address, When its url is learnt
    learnt = exposure.learnt_url(FIRST, settings, None, _service_status(ip="2001:db8::1"))

    # Then the address is bracketed and the port is TF Serving's REST port
    assert learnt == "http://[2001:db8::1]:8501/v1/models/simple/versions/1:predict"
    # And a ClusterIP Service's status is never read
    assert exposure.learnt_url(FIRST, BASE, None, _service_status(ip="10.0.0.1")) is None


def test_a_named_ingress_host_is_the_url_whatever_the_status_says() -> None:
    # Given a real host (the controller routes by it) and a LoadBalancer too
    settings = _with(
        HOSTED, service_type="LoadBalancer", allow_load_balancer=True, ingress_tls_secret="t"
    )

    # When both statuses carry addresses, Then no other url is learnt: the host's stands
    assert exposure.wants_status(settings) == (False, False)
    ingress, service = _ingress_status(ip="203.0.113.7"), _service_status(ip="198.51.100.2")
    assert exposure.learnt_url(FIRST, settings, ingress, service) is None
    assert exposure.predict_url(FIRST, settings).startswith("https://models.example.com/")


def test_no_network_policy_unless_asked() -> None:
    assert netpolicy.network_policy(FIRST, BASE) is None
    assert "NetworkPolicy" not in {o["kind"] for o in manifests.manifests(FIRST, BASE)}


def test_the_network_policy_admits_only_the_jupyter_pods_and_the_ingress_namespace() -> None:
    # Given network_policy with the Jupyter Pods' and the ingress controller's selectors
    # When the serve's objects are built
    objects = manifests.manifests(FIRST, FENCED)
    policy = objects[0]

    # Then the NetworkPolicy comes first, so no Pod runs before it exists
    assert policy["kind"] == "NetworkPolicy"
    # And it selects exactly the serve's Pods, as the Service does
    service = next(o for o in objects if o["kind"] == "Service")
    assert policy["spec"]["podSelector"] == {"matchLabels": service["spec"]["selector"]}
    assert policy["metadata"]["name"] == service["metadata"]["name"]
    assert policy["metadata"]["labels"] == service["metadata"]["labels"]
    # And only the two peers reach TF Serving's ports, for incoming traffic only
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "singleuser-server"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}},
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8501}, {"protocol": "TCP", "port": 8500}]


def test_a_jupyter_server_in_another_namespace_is_one_peer_of_namespace_and_pods() -> None:
    # Given the Jupyter server's namespace labels, and no ingress controller
    settings = _with(
        FENCED, jupyter_namespace_selector={"team": "ds"}, ingress_namespace_selector={}
    )

    # When the policy is built
    policy = netpolicy.network_policy(FIRST, settings)

    # Then one peer requires both (a podSelector alone would mean the serve's namespace)
    assert policy is not None
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [
        {
            "podSelector": {"matchLabels": {"app": "jupyterhub", "component": "singleuser-server"}},
            "namespaceSelector": {"matchLabels": {"team": "ds"}},
        }
    ]


def test_a_network_policy_without_the_jupyter_selector_is_refused() -> None:
    # Given network_policy on but no jupyter_pod_selector (an empty one admits every Pod)
    settings = _with(FENCED, jupyter_pod_selector={})

    # When the objects are built, Then the error names the missing setting
    with pytest.raises(InvalidInput, match=r"jupyter_pod_selector is not set"):
        manifests.manifests(FIRST, settings)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_exposure_objects_are_valid_for_current_kubernetes(version: str) -> None:
    # Given every exposure option at once
    settings = _with(
        FENCED,
        ingress_host="models.example.com",
        ingress_tls_secret="tls",
        ingress_annotations={"a.example/b": "c"},
        jupyter_namespace_selector={"team": "ds"},
        service_type="LoadBalancer",
        allow_load_balancer=True,
    )
    # Then each object passes the schema of current Kubernetes, strictly
    for obj in manifests.manifests(SECOND, settings):
        kubernetes_validate.validate(obj, version, strict=True)
