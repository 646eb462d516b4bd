"""Ingress routes of two servers never silently share a host+path (real control plane).

As cluster admin and as the identity bound only to deploy/rbac.yaml.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_modelserve.backends import exposure, ingressroutes
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings
from jupyter_modelserve.backends.kubernetes import KubernetesBackend
from jupyter_modelserve.errors import Conflict

from .kube.fixtures import KubeCluster
from .test_kubernetes_backend import kubeconfig  # noqa: F401  (admin and deploy/rbac.yaml)

SPEC = ServeSpec("simple", 1, "/models/simple/1")
SHARED_HOST = "models.example.com"


def _backend(tmp_path: Path, kube_config: Path, namespace: str, host: str) -> KubernetesBackend:
    return KubernetesBackend(
        data_dir=tmp_path,
        kubeconfig=str(kube_config),
        namespace=namespace,
        instance="a",
        ingress_host=host,
    )


def _create_other_servers_ingress(kube_cluster: KubeCluster, namespace: str) -> str:
    """Instance b's Ingress for the same model on the shared host, created as admin."""
    from kubernetes import client

    settings = ClusterSettings(namespace=namespace, instance="b", ingress_host=SHARED_HOST)
    body = exposure.ingress(SPEC, settings)
    assert body is not None
    admin = kube_cluster.api_client()
    try:
        client.NetworkingV1Api(admin).create_namespaced_ingress(namespace, body)
    finally:
        admin.close()
    return str(body["metadata"]["name"])


def _check(backend: KubernetesBackend) -> None:
    settings = backend.settings
    ingressroutes.refuse_claimed(backend._api, exposure.ingress(SPEC, settings), SPEC, settings)


def test_a_route_another_servers_ingress_claims_on_the_same_host_is_refused(
    tmp_path: Path,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kubeconfig: Path,  # noqa: F811
) -> None:
    # Given instance b's Ingress routing simple v1 on the shared host
    other = _create_other_servers_ingress(kube_cluster, kube_namespace)
    # When instance a wants the same routes on the same host
    backend = _backend(tmp_path, kubeconfig, kube_namespace, SHARED_HOST)
    try:
        with pytest.raises(Conflict) as refused:
            _check(backend)
        # Then it is a Conflict naming the other Ingress and the setting that avoids it
        assert f"Ingress {other} in namespace {kube_namespace} already routes" in str(refused.value)
        assert "{instance}.models.example.com" in str(refused.value)
    finally:
        backend.close()


def test_a_per_instance_host_template_keeps_two_servers_apart(
    tmp_path: Path,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kubeconfig: Path,  # noqa: F811
) -> None:
    # Given instance b's Ingress on the shared host
    _create_other_servers_ingress(kube_cluster, kube_namespace)
    # When instance a uses a host made of its instance
    backend = _backend(tmp_path, kubeconfig, kube_namespace, "{instance}.models.example.com")
    try:
        # Then its routes are on its own host, its url says so, and nothing clashes
        ingress = exposure.ingress(SPEC, backend.settings)
        assert ingress is not None
        assert ingress["spec"]["rules"][0]["host"] == "a.models.example.com"
        assert backend.url_for(SPEC).startswith("http://a.models.example.com/v1/models/simple/")
        _check(backend)
    finally:
        backend.close()


def test_a_serve_whose_route_is_claimed_is_refused_before_anything_is_written(
    tmp_path: Path,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kubeconfig: Path,  # noqa: F811
) -> None:
    # Given instance b's Ingress routing simple v1 on the shared host
    other = _create_other_servers_ingress(kube_cluster, kube_namespace)
    backend = _backend(tmp_path, kubeconfig, kube_namespace, SHARED_HOST)
    remote = ServeSpec("simple", 1, "s3://models/simple/1")
    try:
        # When instance a applies its serve of the same model
        with pytest.raises(Conflict) as refused:
            backend.apply(remote)
        # Then the apply is a Conflict naming the other Ingress, and none of a's objects exist
        assert f"Ingress {other}" in str(refused.value)
        assert backend.deployed() == []
    finally:
        backend.close()
