"""The Kubernetes manifests, checked with no cluster: names, labels, sources, and schemas."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from jupyter_modelserve.backends import exposure, manifests, naming
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings
from jupyter_modelserve.errors import InvalidInput

ROOT = "/srv/jupyter/artifacts"
LOCAL = ServeSpec("simple", 3, f"{ROOT}/simple/3")
S3 = ServeSpec("simple", 1, "s3://bucket/models/simple/7")
FULL = ClusterSettings(
    namespace="serving",
    model_volume="models",
    storage_secret="minio",
    artifact_root=ROOT,
    ingress_host="models.example.com",
    ingress_class="nginx",
    resources={"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"},
)
# Two current minor versions besides the one the tests' API server runs (1.20).
KUBERNETES_VERSIONS = ["1.36.0", "1.37.0"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("spec", [LOCAL, S3], ids=["volume", "s3"])
def test_every_manifest_is_valid_for_current_kubernetes(spec: ServeSpec, version: str) -> None:
    for obj in manifests.manifests(spec, FULL):
        kubernetes_validate.validate(obj, version, strict=True)


def test_a_local_artifact_is_mounted_read_only_and_pinned_to_its_version() -> None:
    objects = {obj["kind"]: obj for obj in manifests.manifests(LOCAL, FULL)}
    assert set(objects) == {"ConfigMap", "Deployment", "Service", "Ingress"}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "tensorflow/serving:2.14.1-gpu"  # FULL asks for a GPU
    assert "--model_config_file=/etc/modelserve/models.config" in container["args"]
    mount = {"name": "models", "mountPath": "/models/simple/3", "subPath": "simple/3"}
    assert {**mount, "readOnly": True} in container["volumeMounts"]
    assert {
        "name": "models",
        "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
    } in (pod["volumes"])
    config = objects["ConfigMap"]["data"]["models.config"]
    assert "name: 'simple'" in config and "base_path: '/models/simple'" in config
    assert "specific { versions: 3 }" in config.replace("\n", " ").replace("  ", " ")
    probe = container["readinessProbe"]["httpGet"]
    assert probe == {"path": "/v1/models/simple/versions/3/metadata", "port": "http"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "envFrom" not in container  # the storage secret is for remote sources only


def test_an_s3_source_is_downloaded_with_the_secret_and_tf_serving_never_sees_it() -> None:
    deployment = manifests.deployment(S3, FULL)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [download] = pod["initContainers"]
    assert download["envFrom"] == [{"secretRef": {"name": "minio"}}]
    assert "envFrom" not in container
    config = manifests.config_map(S3, FULL)["data"]["models.config"]
    assert "base_path: '/models/simple'" in config
    # The url names the version TF Serving serves: the registry version, not the folder's.
    assert exposure.predict_url(S3, FULL) == (
        "http://models.example.com/v1/models/simple/versions/1:predict"
    )


def test_labels_say_who_owns_every_object() -> None:
    for obj in manifests.manifests(LOCAL, FULL):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "jupyter-modelserve"
        assert labels["app.kubernetes.io/name"] == "tensorflow-serving"
        assert (labels["modelserve/name"], labels["modelserve/version"]) == ("simple", "3")
    pod_labels = manifests.deployment(LOCAL, FULL)["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["modelserve/name"] == "simple"


@pytest.mark.parametrize(
    ("name", "version"),
    [("simple", 1), ("Simple_Model", 2), ("x" * 200, 12345), ("a-b_c", 1), ("9lives", 4)],
)
def test_names_are_dns_safe_and_distinct(name: str, version: int) -> None:
    spec = ServeSpec(name, version, f"{ROOT}/{name}/{version}")
    object_name = naming.object_name(spec, FULL)
    assert len(object_name) <= 63
    assert object_name[0].isalpha() and object_name[-1].isalnum()
    assert set(object_name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")
    labels = naming.labels(spec, FULL)
    assert all(len(value) <= 63 for value in labels.values())
    twin = ServeSpec(name.swapcase(), version, spec.source)
    if twin.name != name:
        assert naming.object_name(twin, FULL) != object_name


def test_the_in_cluster_url_without_an_ingress() -> None:
    settings = ClusterSettings(namespace="serving", model_volume="models", artifact_root=ROOT)
    assert exposure.predict_url(LOCAL, settings) == (
        "http://ms-default-simple-v3.serving.svc:8501/v1/models/simple/versions/3:predict"
    )
    assert exposure.ingress(LOCAL, settings) is None


@pytest.mark.parametrize(
    ("spec", "settings", "message"),
    [
        (LOCAL, ClusterSettings(artifact_root=ROOT), "c.KubernetesBackend.model_volume is not set"),
        (
            ServeSpec("simple", 1, "/home/me/model/1"),
            FULL,
            "a path on the Jupyter server that the cluster cannot read",
        ),
        (ServeSpec("simple", 1, "hdfs://nn/simple/1"), FULL, "downloads only s3:// and gs://"),
        (ServeSpec("simple", 1, "s3://b/simple"), FULL, "must end in a numbered version folder"),
    ],
)
def test_sources_the_cluster_cannot_read_name_the_missing_setting(
    spec: ServeSpec, settings: ClusterSettings, message: Any
) -> None:
    with pytest.raises(InvalidInput, match=message):
        manifests.manifests(spec, settings)


def test_gs_sources_need_no_secret() -> None:
    spec = ServeSpec("simple", 1, "gs://bucket/simple/1")
    [container] = manifests.deployment(spec, ClusterSettings())["spec"]["template"]["spec"][
        "containers"
    ]
    assert "envFrom" not in container
