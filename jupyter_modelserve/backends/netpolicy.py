"""An optional NetworkPolicy per serve: only the Jupyter server and the ingress controller reach
the model Pods (TF Serving has no authentication of its own).

Pure, like the other manifest builders. NetworkPolicies add up: a policy of the cluster's own
(Prometheus scraping the metrics port, say) can allow more beside this one.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .base import ServeSpec
from .cluster_settings import ClusterSettings
from .exposure import GRPC_PORT, REST_PORT, pod_selector
from .naming import metadata


def network_policy(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any] | None:
    """The serve's NetworkPolicy when `network_policy` is on; InvalidInput naming what is
    missing. An empty selector would select every Pod: it is never written for an unset one."""
    if not settings.network_policy:
        return None
    if not settings.jupyter_pod_selector:
        raise InvalidInput(
            "c.KubernetesBackend.network_policy is on, but c.KubernetesBackend."
            "jupyter_pod_selector is not set: name the labels of the Jupyter server's Pods "
            "(an empty selector would let every Pod in)"
        )
    jupyter: dict[str, Any] = {"podSelector": {"matchLabels": dict(settings.jupyter_pod_selector)}}
    if settings.jupyter_namespace_selector:  # the Jupyter server runs in another namespace
        jupyter["namespaceSelector"] = {"matchLabels": dict(settings.jupyter_namespace_selector)}
    peers = [jupyter]
    if settings.ingress_namespace_selector:
        peers.append(
            {"namespaceSelector": {"matchLabels": dict(settings.ingress_namespace_selector)}}
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(spec, settings),
        "spec": {
            "podSelector": {"matchLabels": pod_selector(spec, settings)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": peers,
                    "ports": [
                        {"protocol": "TCP", "port": REST_PORT},
                        {"protocol": "TCP", "port": GRPC_PORT},
                    ],
                }
            ],
        },
    }
