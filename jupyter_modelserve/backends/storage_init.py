"""The init container that downloads a bucket source before TF Serving starts (KServe's way).

Official `tensorflow/serving` images from 2.7 on have no S3 filesystem, so TF Serving never reads
a bucket itself: a small pinned downloader image (rclone) copies the version folder into an
`emptyDir` that TF Serving then mounts read-only. s3:// and gs:// take the same path.

Credentials, the cluster's way: the Secret `storage_secret` (envFrom on this container only, TF
Serving never sees it), the Pod's `service_account` (IRSA, GKE workload identity: the SDK finds
them), or neither (a public bucket, the node's role). A failed download ends with one line naming
the credential that was used or is missing; with `FallbackToLogsOnError` that line becomes the
termination message, which the status reads into the FAILED reason.
"""

from __future__ import annotations

from typing import Any

from .cluster_settings import ClusterSettings
from .podspec import TMP_DIR, container_security
from .storage import ModelLocation

INIT_CONTAINER = "model-download"
VOLUME = "models"
# Bounds of one download attempt: the kubelet's restart back-off is the outer retry.
RCLONE_FLAGS = (
    "--contimeout=10s",
    "--timeout=60s",
    "--retries=2",
    "--low-level-retries=3",
    "--stats=0",
)
# $1 source (rclone remote), $2 destination, $3 the URI as registered, $4 what credential was
# used, $5 "yes" to retry anonymously (no credential configured), then rclone's flags.
# S3_ENDPOINT/S3_USE_HTTPS are TF Serving's names for MinIO and friends: Secrets written for it
# keep working. Provider AWS without an endpoint, Other with one. The region is never guessed:
# set AWS_REGION (or AWS_DEFAULT_REGION, RCLONE_S3_REGION) in the Secret for a bucket outside
# us-east-1: rclone does not discover a bucket's region here, it signs for us-east-1 and AWS
# then refuses the request. The file check turns "copied nothing" (a wrong path) into an error.
SCRIPT = r"""set -u
if [ -n "${S3_ENDPOINT:-}" ] && [ -z "${RCLONE_S3_ENDPOINT:-}" ]; then
  case "$S3_ENDPOINT" in
    *://*) RCLONE_S3_ENDPOINT="$S3_ENDPOINT" ;;
    *) if [ "${S3_USE_HTTPS:-1}" = 0 ]; then RCLONE_S3_ENDPOINT="http://$S3_ENDPOINT";
       else RCLONE_S3_ENDPOINT="https://$S3_ENDPOINT"; fi ;;
  esac
  export RCLONE_S3_ENDPOINT
fi
if [ -z "${RCLONE_S3_PROVIDER:-}" ]; then
  # No endpoint: the bucket is on AWS itself, whose signing and addressing rclone then uses.
  RCLONE_S3_PROVIDER=AWS
  if [ -n "${RCLONE_S3_ENDPOINT:-}" ]; then RCLONE_S3_PROVIDER=Other; fi
  export RCLONE_S3_PROVIDER
fi
if [ -z "${RCLONE_S3_REGION:-}" ] && [ -n "${AWS_REGION:-${AWS_DEFAULT_REGION:-}}" ]; then
  export RCLONE_S3_REGION="${AWS_REGION:-$AWS_DEFAULT_REGION}"
fi
src="$1"; dest="$2"; uri="$3"; credential="$4"; anonymous="$5"; shift 5
if ! rclone copy "$src" "$dest" "$@"; then
  # No credential configured and none found (no node role): a public bucket, read anonymously.
  if [ "$anonymous" != yes ] || ! RCLONE_S3_ENV_AUTH=false RCLONE_GCS_ENV_AUTH=false \
      RCLONE_GCS_ANONYMOUS=true rclone copy "$src" "$dest" "$@"; then
    echo "model download failed: could not read $uri $credential" >&2
    exit 1
  fi
fi
if [ ! -e "$dest/saved_model.pb" ] && [ ! -e "$dest/saved_model.pbtxt" ]; then
  echo "model download failed: no saved_model.pb under $uri (is it the version folder?)" >&2
  exit 1
fi
"""


def rclone_remote(uri: str) -> str:
    """rclone's on-the-fly remote for a bucket URI: s3://b/p -> :s3:b/p, gs://b/p -> :gcs:b/p."""
    scheme, rest = uri.split("://", 1)
    return f":{'gcs' if scheme == 'gs' else scheme}:{rest}"


def credential_hint(uri: str, settings: ClusterSettings) -> str:
    """What the failure line says about credentials: the one used, or the settings to set."""
    if settings.storage_secret:
        return (
            f"with the credentials of Secret {settings.storage_secret!r} "
            "(c.KubernetesBackend.storage_secret): check its keys and their access"
        )
    if settings.service_account:
        role = "IRSA role" if uri.startswith("s3://") else "workload identity"
        return (
            f"as ServiceAccount {settings.service_account!r} (c.KubernetesBackend."
            f"service_account): check its {role} can read the bucket"
        )
    return (
        "with no credential: set c.KubernetesBackend.storage_secret or "
        "c.KubernetesBackend.service_account, unless the bucket is public"
    )


def environment(uri: str) -> list[dict[str, str]]:
    """rclone's settings as env: the SDK's own credential chain (keys, web identity, node)."""
    env = {
        "HOME": TMP_DIR,  # the root filesystem is read-only
        "RCLONE_CONFIG": f"{TMP_DIR}/rclone.conf",  # no config file: everything comes from env
        "RCLONE_CACHE_DIR": f"{TMP_DIR}/rclone-cache",
    }
    if uri.startswith("s3://"):
        # The provider is chosen by SCRIPT: the endpoint is only known from the Secret.
        env |= {"RCLONE_S3_ENV_AUTH": "true"}
    else:
        env |= {"RCLONE_GCS_ENV_AUTH": "true"}
    return [{"name": k, "value": v} for k, v in env.items()]


def init_container(location: ModelLocation, settings: ClusterSettings) -> dict[str, Any]:
    """The download of `location` (remote) into the `models` emptyDir."""
    uri = location.source
    container: dict[str, Any] = {
        "name": INIT_CONTAINER,
        "image": settings.storage_initializer_image,
        "command": ["/bin/sh", "-c", SCRIPT, INIT_CONTAINER],
        "args": [
            rclone_remote(uri),
            location.version_path,
            uri,
            credential_hint(uri, settings),
            "no" if settings.storage_secret or settings.service_account else "yes",
            *RCLONE_FLAGS,
        ],
        "env": environment(uri),
        "volumeMounts": [
            {"name": VOLUME, "mountPath": location.base_path.rsplit("/", 1)[0]},
            {"name": "tmp", "mountPath": TMP_DIR},
        ],
        "securityContext": container_security(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if settings.storage_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.storage_secret}}]
    return container


def model_volume(location: ModelLocation, settings: ClusterSettings) -> dict[str, Any]:
    """The Pod volume holding the model: the claim, or the emptyDir the download fills."""
    if location.on_volume:
        claim = {"claimName": settings.model_volume, "readOnly": True}
        return {"name": VOLUME, "persistentVolumeClaim": claim}
    return {"name": VOLUME, "emptyDir": {"sizeLimit": settings.download_size_limit}}


def model_mount(location: ModelLocation) -> dict[str, Any]:
    """TF Serving's read-only mount: just the version folder, at the registry version."""
    if location.on_volume:
        return {
            "name": VOLUME,
            "mountPath": location.version_path,
            "subPath": location.sub_path,
            "readOnly": True,
        }
    return {"name": VOLUME, "mountPath": location.base_path.rsplit("/", 1)[0], "readOnly": True}
