"""Where the model comes from, checked with no cluster: the download init container, the model
volume, credentials, and TF Serving serving the REGISTRY version whatever the folder's number.

The download script itself runs here too, with the real rclone on a local folder (no bucket
needed): what it does with a good folder, a folder without a SavedModel, and one it cannot read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.backends import exposure, manifests, storage_init
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings
from jupyter_modelserve.backends.storage import model_location
from jupyter_modelserve.errors import InvalidInput

ROOT = "/srv/jupyter/artifacts"
VOLUME = ClusterSettings(model_volume="models", artifact_root=ROOT, instance="t")
SECRET = ClusterSettings(storage_secret="bucket-keys", instance="t")
ACCOUNT = ClusterSettings(service_account="model-reader", instance="t")
NEITHER = ClusterSettings(instance="t")


def pod_of(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    spec_body: dict[str, Any] = manifests.deployment(spec, settings)["spec"]["template"]["spec"]
    return spec_body


def model_mount(pod: dict[str, Any]) -> dict[str, Any]:
    [container] = pod["containers"]
    mount: dict[str, Any] = next(m for m in container["volumeMounts"] if m["name"] == "models")
    return mount


@pytest.mark.parametrize("source", ["s3://bucket/models/simple/7", "gs://bucket/simple/7"])
def test_a_bucket_source_is_downloaded_under_the_registry_version(source: str) -> None:
    # Given registry version 2 of a model whose bucket folder is numbered 7
    spec = ServeSpec("simple", 2, source)

    # When its Deployment and ConfigMap are built
    pod = pod_of(spec, SECRET)
    config = manifests.config_map(spec, SECRET)["data"]["models.config"]

    # Then the init container copies folder 7 to /models/simple/2 in the emptyDir
    [download] = pod["initContainers"]
    assert download["name"] == "model-download"
    assert download["image"] == "rclone/rclone:1.68.2"
    scheme = "s3" if source.startswith("s3") else "gcs"
    assert download["args"][:3] == [
        f":{scheme}:{source.split('://')[1]}",
        "/models/simple/2",
        source,
    ]
    assert {"name": "models", "mountPath": "/models"} in download["volumeMounts"]
    assert {"name": "models", "emptyDir": {"sizeLimit": "20Gi"}} in pod["volumes"]
    # And TF Serving reads that emptyDir read-only and serves version 2, not 7
    assert model_mount(pod) == {"name": "models", "mountPath": "/models", "readOnly": True}
    assert "base_path: '/models/simple'" in config
    assert "versions: 2" in config and "versions: 7" not in config
    [container] = pod["containers"]
    probe = container["readinessProbe"]["httpGet"]["path"]
    assert probe == "/v1/models/simple/versions/2/metadata"
    assert exposure.predict_url(spec, SECRET).endswith("/v1/models/simple/versions/2:predict")
    assert model_location(spec, SECRET).servable_version == spec.version


def test_a_volume_source_mounts_its_version_folder_at_the_registry_version() -> None:
    # Given registry version 5 whose artifact folder is numbered 3
    spec = ServeSpec("simple", 5, f"{ROOT}/team/simple/3")

    # When its Pod is built
    pod = pod_of(spec, VOLUME)

    # Then only that folder is mounted (subPath), where TF Serving looks for version 5
    assert model_mount(pod) == {
        "name": "models",
        "mountPath": "/models/simple/5",
        "subPath": "team/simple/3",
        "readOnly": True,
    }
    claim = {"claimName": "models", "readOnly": True}
    assert {"name": "models", "persistentVolumeClaim": claim} in pod["volumes"]
    # And nothing is downloaded
    assert "initContainers" not in pod


def test_two_sources_ending_in_1_do_not_collide() -> None:
    # Given two registry versions whose sources both end in /1
    first = model_location(ServeSpec("simple", 1, "s3://b/a/simple/1"), SECRET)
    second = model_location(ServeSpec("simple", 2, "s3://b/b/simple/1"), SECRET)
    # Then each is served under its own version
    assert (first.version_path, second.version_path) == ("/models/simple/1", "/models/simple/2")


def test_the_secret_reaches_the_download_only() -> None:
    # Given a Secret for bucket credentials
    pod = pod_of(ServeSpec("simple", 1, "s3://bucket/simple/1"), SECRET)
    [download] = pod["initContainers"]
    [container] = pod["containers"]
    # Then only the init container gets its keys, and no ServiceAccount or token is involved
    assert download["envFrom"] == [{"secretRef": {"name": "bucket-keys"}}]
    assert "envFrom" not in container and "env" not in container
    assert "serviceAccountName" not in pod
    assert pod["automountServiceAccountToken"] is False
    assert "Secret 'bucket-keys'" in download["args"][3]


def test_a_service_account_carries_the_credentials_without_a_token_mount() -> None:
    # Given a ServiceAccount (IRSA / workload identity) and no Secret
    pod = pod_of(ServeSpec("simple", 1, "gs://bucket/simple/1"), ACCOUNT)
    [download] = pod["initContainers"]
    # Then the Pods run as it; its API token is still not mounted (neither IRSA nor GKE needs it)
    assert pod["serviceAccountName"] == "model-reader"
    assert pod["automountServiceAccountToken"] is False
    assert "envFrom" not in download
    assert "ServiceAccount 'model-reader'" in download["args"][3]
    assert "workload identity" in download["args"][3]


def test_neither_credential_is_accepted_and_a_failure_names_both_settings() -> None:
    # Given no Secret and no ServiceAccount (a public bucket, a node role)
    pod = pod_of(ServeSpec("simple", 1, "s3://public/simple/1"), NEITHER)
    [download] = pod["initContainers"]
    # Then the serve is accepted, and a failed download would name what to set
    assert "envFrom" not in download and "serviceAccountName" not in pod
    hint = download["args"][3]
    assert "c.KubernetesBackend.storage_secret" in hint
    assert "c.KubernetesBackend.service_account" in hint


def test_the_download_image_is_a_setting_and_runs_hardened() -> None:
    settings = ClusterSettings(storage_initializer_image="mirror.example/rclone:1.68.2")
    [download] = pod_of(ServeSpec("m", 1, "gs://b/m/1"), settings)["initContainers"]
    assert download["image"] == "mirror.example/rclone:1.68.2"
    context = download["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    # A read-only root: rclone's home and config live in the tmp emptyDir
    assert {"name": "tmp", "mountPath": "/tmp"} in download["volumeMounts"]
    assert {"name": "HOME", "value": "/tmp"} in download["env"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("hdfs://namenode/simple/1", "downloads only s3:// and gs:// sources"),
        ("https://example.com/simple/1", "downloads only s3:// and gs:// sources"),
        ("s3:///simple/1", "names no bucket"),
        (f"{ROOT}/../etc/simple/1", "leaves the artifact root"),
        ("s3://bucket/simple", "must end in a numbered version folder"),
    ],
)
def test_sources_the_downloader_cannot_read_are_refused(source: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        manifests.manifests(ServeSpec("simple", 1, source), VOLUME)


# -- the download script, run for real with rclone on local folders ------------------------------

needs_rclone = pytest.mark.skipif(
    shutil.which("rclone") is None and os.environ.get("MODELSERVE_REQUIRE_KUBERNETES") != "1",
    reason="rclone is not installed (apt-get install rclone)",
)


def run_script(source: Path, dest: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "RCLONE_CONFIG": ""}
    hint = storage_init.credential_hint("s3://b/m/1", NEITHER)
    return subprocess.run(
        ["/bin/sh", "-c", storage_init.SCRIPT, "model-download", str(source), str(dest),
         "s3://b/m/1", hint, "yes", *storage_init.RCLONE_FLAGS],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@needs_rclone
def test_the_script_copies_a_saved_model_folder(tmp_path: Path) -> None:
    # Given a version folder with a SavedModel
    source = tmp_path / "src"
    (source / "variables").mkdir(parents=True)
    (source / "saved_model.pb").write_bytes(b"pb")
    (source / "variables" / "variables.index").write_bytes(b"ix")
    # When the script copies it
    done = run_script(source, tmp_path / "models" / "m" / "1", tmp_path)
    # Then it succeeds and the whole folder is there
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models/m/1/variables/variables.index").read_bytes() == b"ix"


@needs_rclone
def test_the_script_fails_on_a_folder_without_a_saved_model(tmp_path: Path) -> None:
    # Given a folder that exists but holds no SavedModel (not the version folder)
    source = tmp_path / "src"
    source.mkdir()
    (source / "README").write_text("not a model")
    # When the script copies it, Then it fails saying so, in its last line
    done = run_script(source, tmp_path / "dest", tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "model download failed: no saved_model.pb under s3://b/m/1 (is it the version folder?)"
    )


@needs_rclone
def test_the_script_names_the_credential_when_it_cannot_read(tmp_path: Path) -> None:
    # Given a source rclone cannot read
    done = run_script(tmp_path / "missing", tmp_path / "dest", tmp_path)
    # Then the last line (the termination message's) names the settings to set
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("model download failed: could not read s3://b/m/1 with no credential")
    assert "c.KubernetesBackend.storage_secret" in last


@needs_rclone
@pytest.mark.parametrize(
    ("extra", "provider"),
    [({}, "AWS"), ({"S3_ENDPOINT": "127.0.0.1:9000", "S3_USE_HTTPS": "0"}, "Other")],
    ids=["no-endpoint-is-aws", "endpoint-is-other"],
)
def test_the_s3_provider_is_aws_unless_an_endpoint_is_given(
    tmp_path: Path, extra: dict[str, str], provider: str
) -> None:
    # Given the real rclone behind a wrapper that records the provider it is run with
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    seen = tmp_path / "provider"
    real = shutil.which("rclone")
    wrapper = wrappers / "rclone"
    wrapper.write_text(f'#!/bin/sh\necho "$RCLONE_S3_PROVIDER" > {seen}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    source = tmp_path / "src"
    source.mkdir()
    (source / "saved_model.pb").write_bytes(b"pb")
    env = {"PATH": f"{wrappers}:{os.environ['PATH']}", "HOME": str(tmp_path), "RCLONE_CONFIG": ""}
    # When the script runs with the container's env and the Secret's (`extra`)
    for item in storage_init.environment("s3://b/m/1"):
        env[item["name"]] = item["value"].replace(storage_init.TMP_DIR, str(tmp_path))
    done = subprocess.run(
        ["/bin/sh", "-c", storage_init.SCRIPT, "model-download", str(source), str(tmp_path / "d"),
         "s3://b/m/1", "hint", "no", *storage_init.RCLONE_FLAGS],
        env=env | extra, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # Then rclone ran with the provider that fits
    assert done.returncode == 0, done.stderr
    assert seen.read_text().strip() == provider
