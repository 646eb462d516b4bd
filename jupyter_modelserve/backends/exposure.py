"""How a serve is reached: its Service, its Ingress and the URLs the user is given.

Pure functions of the spec and the settings, like the rest of the manifests.
"""

from __future__ import annotations

from typing import Any

from .base import ServeSpec
from .cluster_settings import ClusterSettings
from .naming import LABEL_INSTANCE, label_value, metadata, object_name
from .storage import model_location

REST_PORT = 8501
GRPC_PORT = 8500


def predict_url(spec: ServeSpec, settings: ClusterSettings) -> str:
    version = model_location(spec, settings).servable_version
    path = f"/v1/models/{spec.name}/versions/{version}:predict"
    if settings.ingress_host:
        return f"http://{settings.ingress_host}{path}"
    return f"{cluster_endpoint(spec, settings)}{path}"


def cluster_endpoint(spec: ServeSpec, settings: ClusterSettings) -> str:
    """The Service's in-cluster address (what the Jupyter server's proxy talks to)."""
    # `.svc` without the cluster domain resolves on every cluster, whatever its domain is.
    return f"http://{object_name(spec)}.{settings.namespace}.svc:{REST_PORT}"


def service(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec, settings),
        "spec": {
            "type": settings.service_type,
            "selector": {
                "app.kubernetes.io/instance": object_name(spec),
                LABEL_INSTANCE: label_value(settings.instance),
            },
            "ports": [
                {"name": "http", "port": REST_PORT, "targetPort": "http"},
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc"},
            ],
        },
    }


def ingress(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any] | None:
    if not settings.ingress_host:
        return None
    version = model_location(spec, settings).servable_version
    body: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(spec, settings),
        "spec": {
            "rules": [
                {
                    "host": settings.ingress_host,
                    "http": {
                        "paths": [
                            {
                                # "…/versions/1:predict" is not a Prefix match of "…/versions/1"
                                # (Prefix compares whole path elements), so let the controller
                                # match the string.
                                "path": f"/v1/models/{spec.name}/versions/{version}",
                                "pathType": "ImplementationSpecific",
                                "backend": {
                                    "service": {
                                        "name": object_name(spec),
                                        "port": {"number": REST_PORT},
                                    }
                                },
                            }
                        ]
                    },
                }
            ]
        },
    }
    if settings.ingress_class:
        body["spec"]["ingressClassName"] = settings.ingress_class
    return body
