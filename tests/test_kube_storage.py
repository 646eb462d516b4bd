"""Bucket sources on the real control plane: the download init container really runs.

The stand-in kubelet runs each Pod's init container for real (tests/kube/init_runner.py: the
host's rclone stands in for the image's) against stand-in object stores on loopback: moto's S3
server with keys enforced, and a GCS JSON API behind a token endpoint. Then the folder TF
Serving would mount is checked, file by file; a download that cannot authenticate ends FAILED
naming the credential to set. Every scenario also runs as the identity bound only to
deploy/rbac.yaml.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jupyter_modelserve.service import ServeService

from .conftest import Api, eventually, server_config
from .kube import model
from .kube.fixtures import KubeCluster
from .kube.init_runner import InitRunner, running_init_containers
from .kube.kubelet import StandInKubelet
from .kube.object_stores import FakeGcs, MotoS3, files_of

RBAC = Path(__file__).parent.parent / "deploy" / "rbac.yaml"
BUCKET = "models"
PREFIX = "team/simple/7"  # the bucket's folder number (7) is not the registry version

pytestmark = pytest.mark.skipif(
    shutil.which("rclone") is None, reason="rclone is not installed (apt-get install rclone)"
)


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
        },
    )


@pytest.fixture
def runner(kube_cluster: KubeCluster, tmp_path: Path) -> Iterator[InitRunner]:
    from kubernetes.client import CoreV1Api

    api = kube_cluster.api_client()
    try:
        yield InitRunner(CoreV1Api(api), tmp_path / "node")
    finally:
        api.close()


def _secret(kube_cluster: KubeCluster, namespace: str, name: str, data: dict[str, str]) -> None:
    from kubernetes.client import CoreV1Api, V1Secret

    api = kube_cluster.api_client()
    try:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        body = {"metadata": {"name": name}, "data": encoded}
        CoreV1Api(api).create_namespaced_secret(namespace, model(V1Secret, body))
    finally:
        api.close()


async def _serve_remote(api: Api, source: str) -> tuple[int, dict[str, Any]]:
    """Register `source` as the next version of simple (2: version 1 is local) and serve it."""
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "simple", "source": source}
    )
    assert code == 200, envelope
    version = envelope["result"]["version"]
    assert version == 2
    body = {"modelName": "simple", "modelVersion": version}
    code, envelope = await api("POST", "/api/v1/serve", body, params={"wait": 60})
    return code, envelope


def _downloaded(runner: InitRunner, kube_cluster: KubeCluster, namespace: str) -> Path:
    """The models volume of the serve's (only) Pod, as the init container left it."""
    from kubernetes.client import CoreV1Api

    api = kube_cluster.api_client()
    try:
        [pod] = CoreV1Api(api).list_namespaced_pod(namespace).items
    finally:
        api.close()
    return runner.folder(pod, "models")


def _same_files(left: Path, right: Path) -> bool:
    ours = {key: path.read_bytes() for key, path in files_of(left)}
    theirs = {key: path.read_bytes() for key, path in files_of(right)}
    return bool(ours) and ours == theirs


async def test_s3_source_is_downloaded_with_the_secret_and_served_as_the_registry_version(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    runner: InitRunner,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    half_plus_two: Path,
    tmp_path: Path,
) -> None:
    with MotoS3(BUCKET, PREFIX, half_plus_two, tmp_path) as s3:
        # Given a bucket that wants keys, and a Secret with them in TF Serving's names
        _secret(kube_cluster, kube_namespace, "bucket-keys", {
            "AWS_ACCESS_KEY_ID": s3.key_id, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "S3_ENDPOINT": f"127.0.0.1:{s3.port}", "S3_USE_HTTPS": "0",
        })  # fmt: skip
        service.backend.storage_secret = "bucket-keys"  # type: ignore[attr-defined]
        kubelet.policy = running_init_containers(runner)

        # When s3://models/team/simple/7 is served as simple version 2
        code, envelope = await _serve_remote(api, f"s3://{BUCKET}/{PREFIX}")

        # Then it becomes AVAILABLE, once its init container downloaded the SavedModel
        assert code == 200, envelope
        assert envelope["result"]["state"] == "AVAILABLE"
        assert envelope["result"]["url"].endswith("/v1/models/simple/versions/2:predict")
        assert [run[1:] for run in runner.runs] == [("model-download", 0)]
        # And TF Serving's folder /models/simple/2 holds exactly the SavedModel's files
        volume = _downloaded(runner, kube_cluster, kube_namespace)
        assert _same_files(volume / "simple" / "2", half_plus_two)
        assert sorted(p.name for p in (volume / "simple").iterdir()) == ["2"]


async def test_s3_source_without_a_credential_fails_naming_the_settings(
    api: Api,
    simple_registered: dict[str, Any],
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    half_plus_two: Path,
    tmp_path: Path,
) -> None:
    from kubernetes.client import CoreV1Api

    with MotoS3(BUCKET, PREFIX, half_plus_two, tmp_path) as s3:
        # Given a bucket that wants keys, and neither a Secret nor a ServiceAccount configured
        api_client = kube_cluster.api_client()
        runner = InitRunner(
            CoreV1Api(api_client), tmp_path / "node", {"RCLONE_S3_ENDPOINT": s3.endpoint}
        )
        kubelet.policy = running_init_containers(runner)
        try:
            # When it is served, Then the serve is accepted and ends FAILED
            code, envelope = await _serve_remote(api, f"s3://{BUCKET}/{PREFIX}")
        finally:
            api_client.close()
        assert code == 422, envelope
        reason = envelope["message"]
        # And the reason names the download and the two settings that give it a credential
        assert "model-download" in reason
        assert "could not read s3://models/team/simple/7 with no credential" in reason
        assert "c.KubernetesBackend.storage_secret" in reason
        assert "c.KubernetesBackend.service_account" in reason
        code, envelope = await api("GET", "/api/v1/serve/simple/2")
        assert envelope["result"]["state"] == "FAILED"
        assert "c.KubernetesBackend.storage_secret" in envelope["result"]["reason"]


@pytest.mark.parametrize("credential", ["key-secret", "public-bucket", "none"])
async def test_gs_source_through_the_init_container(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
    half_plus_two: Path,
    tmp_path: Path,
    credential: str,
) -> None:
    from kubernetes.client import CoreV1Api

    with FakeGcs(BUCKET, PREFIX, half_plus_two, public=credential == "public-bucket") as gcs:
        # Given a GCS bucket: private with a key file in a Secret, public, or private with none
        if credential == "key-secret":
            key = {"RCLONE_GCS_SERVICE_ACCOUNT_CREDENTIALS": gcs.service_account_key()}
            _secret(kube_cluster, kube_namespace, "gcs-key", key)
            service.backend.storage_secret = "gcs-key"  # type: ignore[attr-defined]
        api_client = kube_cluster.api_client()
        runner = InitRunner(
            CoreV1Api(api_client),
            tmp_path / "node",
            {"RCLONE_GCS_ENDPOINT": f"{gcs.endpoint}/storage/v1/"},
        )
        kubelet.policy = running_init_containers(runner)
        try:
            # When gs://models/team/simple/7 is served as simple 2
            code, envelope = await _serve_remote(api, f"gs://{BUCKET}/{PREFIX}")
            if credential == "none":
                # Then without a credential it is FAILED, naming what to set
                assert code == 422, envelope
                assert "with no credential" in envelope["message"]
                assert "c.KubernetesBackend.service_account" in envelope["message"]
                return
            # Then it is AVAILABLE with the SavedModel in /models/simple/2
            assert code == 200, envelope
            volume = _downloaded(runner, kube_cluster, kube_namespace)
            assert _same_files(volume / "simple" / "2", half_plus_two)
            # And only the key file's token was used when the bucket is private
            tokens = [status for path, status in gcs.requests if path == "/token"]
            assert tokens == ([200] if credential == "key-secret" else [])
        finally:
            api_client.close()


async def test_the_serves_pods_run_as_the_service_account_without_a_token(
    api: Api,
    simple_registered: dict[str, Any],
    service: ServeService,
    kubelet: StandInKubelet,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    from kubernetes.client import CoreV1Api, V1ServiceAccount

    # Given a ServiceAccount that carries bucket access (IRSA / workload identity)
    api_client = kube_cluster.api_client()
    try:
        annotations = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/reader"}
        body = {"metadata": {"name": "model-reader", "annotations": annotations}}
        account = model(V1ServiceAccount, body)
        CoreV1Api(api_client).create_namespaced_service_account(kube_namespace, account)
        service.backend.service_account = "model-reader"  # type: ignore[attr-defined]
        code, envelope = await api(
            "POST", "/api/v1/model-version", {"name": "simple", "source": "s3://b/simple/1"}
        )
        assert code == 200, envelope

        # When it is served
        code, envelope = await api(
            "POST", "/api/v1/serve", {"modelName": "simple", "modelVersion": 2}
        )
        assert code == 200, envelope

        # Then its Pods run as that ServiceAccount, with no API token mounted
        core = CoreV1Api(api_client)
        pods = await eventually(
            lambda: _pods(core, kube_namespace), timeout=30, what="the serve's Pod"
        )
        [pod] = pods
        assert pod.spec.service_account_name == "model-reader"
        assert pod.spec.automount_service_account_token is False
        assert all(v.projected is None for v in pod.spec.volumes)
    finally:
        api_client.close()


async def _pods(core: Any, namespace: str) -> list[Any]:
    return list(core.list_namespaced_pod(namespace).items)
