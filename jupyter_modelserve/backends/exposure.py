"""How a serve is reached: its Service, its Ingress and the URLs the user is given.

Pure functions of the spec and the settings, like the rest of the manifests. Paths are keyed on
the registry version, which TF Serving serves in the Pod (storage.py), never on the source
folder's number: two sources that both end in `/1` get distinct routes.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .base import ServeSpec
from .cluster_settings import ClusterSettings
from .naming import LABEL_INSTANCE, instance_label, metadata, object_name

REST_PORT = 8501
GRPC_PORT = 8500
# `ingress_host = "*"`: an Ingress with no host rule; the url then comes from its status.
ANY_HOST = "*"
# `ingress_host = "{instance}.models.example.com"`: one host per Jupyter server (`host`).
INSTANCE_PLACEHOLDER = "{instance}"
# TF Serving's REST API of one version, each route exactly: a predict route never shadows the
# metadata one, and nothing else of the server (other models, other versions) is exposed.
VERB_SUFFIXES = (":predict", ":classify", ":regress", "/metadata", "")
# Types that need no opt-in; those of EXPOSING reach TF Serving from outside the cluster.
INTERNAL_TYPES = ("ClusterIP",)
EXPOSING_TYPES = ("LoadBalancer", "NodePort")
# Exact: the API's own exact match. ImplementationSpecific: for controllers that refuse `:` in
# Exact paths (ingress-nginx's strict path validation); they then match the same strings their way.
PATH_TYPES = ("Exact", "ImplementationSpecific")


def version_path(spec: ServeSpec) -> str:
    return f"/v1/models/{spec.name}/versions/{spec.version}"


def host(settings: ClusterSettings) -> str:
    """The Ingress host: `ingress_host` with `{instance}` replaced by this server's instance, so
    servers sharing a namespace (or a cluster) can each get their own host from one setting."""
    return settings.ingress_host.replace(INSTANCE_PLACEHOLDER, instance_label(settings))


def scheme(settings: ClusterSettings) -> str:
    return "https" if settings.ingress_tls_secret else "http"


def predict_url(spec: ServeSpec, settings: ClusterSettings) -> str:
    """The url known before the cluster says anything: the Ingress host's, else in-cluster."""
    path = f"{version_path(spec)}:predict"
    if settings.ingress_host and settings.ingress_host != ANY_HOST:
        return f"{scheme(settings)}://{host(settings)}{path}"
    return f"{cluster_endpoint(spec, settings)}{path}"


def cluster_endpoint(spec: ServeSpec, settings: ClusterSettings) -> str:
    """The Service's in-cluster address (what the Jupyter server's proxy talks to)."""
    # `.svc` without the cluster domain resolves on every cluster, whatever its domain is.
    return f"http://{object_name(spec, settings)}.{settings.namespace}.svc:{REST_PORT}"


def grpc_address(spec: ServeSpec, settings: ClusterSettings) -> str:
    """The Service's in-cluster gRPC address, `host:port` as gRPC clients take it. gRPC is not
    routed by the Ingress (HTTP paths of the REST API only): clients reach it in the cluster."""
    return f"{object_name(spec, settings)}.{settings.namespace}.svc:{GRPC_PORT}"


def check_service_type(settings: ClusterSettings) -> None:
    """InvalidInput unless the Service type is known, and allowed when it exposes TF Serving."""
    kind = settings.service_type
    if kind in INTERNAL_TYPES:
        return
    if kind not in EXPOSING_TYPES:
        raise InvalidInput(
            f"c.KubernetesBackend.service_type {kind!r} is not one of "
            f"{', '.join(INTERNAL_TYPES + EXPOSING_TYPES)}"
        )
    if not settings.allow_load_balancer:
        raise InvalidInput(
            f"c.KubernetesBackend.service_type {kind!r} would expose TensorFlow Serving, which "
            "has no authentication, outside the cluster; use an Ingress (ingress_host) or set "
            "c.KubernetesBackend.allow_load_balancer = True to accept that"
        )


def service(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    check_service_type(settings)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec, settings),
        "spec": {
            "type": settings.service_type,
            "selector": pod_selector(spec, settings),
            # `protocol` spelled out: server-side apply keys this list on (port, protocol).
            "ports": [
                {"name": "http", "port": REST_PORT, "targetPort": "http", "protocol": "TCP"},
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
            ],
        },
    }


def pod_selector(spec: ServeSpec, settings: ClusterSettings) -> dict[str, str]:
    """The labels that select exactly this serve's Pods (Service, NetworkPolicy)."""
    return {
        "app.kubernetes.io/instance": object_name(spec, settings),
        LABEL_INSTANCE: instance_label(settings),
    }


def ingress(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any] | None:
    if not settings.ingress_host:
        return None
    if settings.ingress_path_type not in PATH_TYPES:
        raise InvalidInput(
            f"c.KubernetesBackend.ingress_path_type {settings.ingress_path_type!r} is not one "
            f"of {', '.join(PATH_TYPES)}"
        )
    backend = {"service": {"name": object_name(spec, settings), "port": {"number": REST_PORT}}}
    paths = [
        {
            "path": f"{version_path(spec)}{suffix}",
            "pathType": settings.ingress_path_type,
            "backend": backend,
        }
        for suffix in VERB_SUFFIXES
    ]
    rule: dict[str, Any] = {"http": {"paths": paths}}
    if settings.ingress_host != ANY_HOST:
        rule["host"] = host(settings)
    meta = metadata(spec, settings)
    # Ours last: an annotation setting cannot take the model-name annotation away.
    meta["annotations"] = {**settings.ingress_annotations, **meta["annotations"]}
    body: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta,
        "spec": {"rules": [rule]},
    }
    if settings.ingress_class:
        body["spec"]["ingressClassName"] = settings.ingress_class
    if settings.ingress_tls_secret:
        tls: dict[str, Any] = {"secretName": settings.ingress_tls_secret}
        if settings.ingress_host != ANY_HOST:
            tls["hosts"] = [host(settings)]
        body["spec"]["tls"] = [tls]
    return body


def wants_status(settings: ClusterSettings) -> tuple[bool, bool]:
    """(Ingresses, Services): which kinds' status can tell a url `predict_url` does not know.

    With a real `ingress_host` neither: routing needs that Host, an address adds nothing.
    """
    if settings.ingress_host and settings.ingress_host != ANY_HOST:
        return False, False
    return settings.ingress_host == ANY_HOST, settings.service_type == "LoadBalancer"


def learnt_url(
    spec: ServeSpec, settings: ClusterSettings, ingress_obj: Any, service_obj: Any
) -> str | None:
    """The url from the status of the serve's Ingress, else of its LoadBalancer Service, once
    one has an address (client model objects; None for an object not read)."""
    from_ingress, from_service = wants_status(settings)
    path = f"{version_path(spec)}:predict"
    address = _address(ingress_obj) if from_ingress else None
    if address:
        return f"{scheme(settings)}://{address}{path}"
    address = _address(service_obj) if from_service else None
    if address:
        return f"http://{address}:{REST_PORT}{path}"
    return None


def _address(obj: Any) -> str | None:
    """The first hostname or IP of an object's `status.loadBalancer.ingress`."""
    status = getattr(obj, "status", None)
    balancer = getattr(status, "load_balancer", None)
    for entry in getattr(balancer, "ingress", None) or []:
        found = getattr(entry, "hostname", None) or getattr(entry, "ip", None)
        if found:
            host = str(found)
            return f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
    return None
