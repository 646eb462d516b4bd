"""Test harness for the Kubernetes backend: a real control plane plus a stand-in kubelet.

``scripts/test-cluster`` runs etcd, kube-apiserver and kube-controller-manager on loopback (as
controller-runtime's envtest does); :mod:`tests.kube.kubelet` plays the node (as KWOK does);
:mod:`tests.kube.fixtures` wires both into pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar


class _Model(Protocol):
    @classmethod
    def from_dict(cls, obj: dict[str, Any] | None) -> Any: ...


M = TypeVar("M", bound=_Model)


def model(cls: type[M], manifest: Mapping[str, Any]) -> M:
    """A typed ``kubernetes.client`` model from a manifest spelled as the API's JSON (camelCase).

    The client's methods are typed to take models; manifests read best as dicts. For example
    ``apps.create_namespaced_deployment(ns, model(V1Deployment, {"metadata": ...}))``.
    """
    built = cls.from_dict(dict(manifest))
    if not isinstance(built, cls):
        raise ValueError(f"not a {cls.__name__} manifest: {manifest!r}")
    return built
