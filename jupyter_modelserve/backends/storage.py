"""Where a serve's Pods read the model: the artifact volume, or a remote bucket.

Pure functions of the spec and the settings: `InvalidInput` names the setting a source needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from ..errors import InvalidInput
from ..schemas import REMOTE_SCHEMES
from .base import ServeSpec
from .cluster_settings import ClusterSettings

MODELS_DIR = "/models"


@dataclass(frozen=True)
class ModelLocation:
    base_path: str  # as the container sees it
    servable_version: int  # the version folder's number, which TF Serving serves
    on_volume: bool
    remote: bool


def model_location(spec: ServeSpec, settings: ClusterSettings) -> ModelLocation:
    """Where the cluster reads the model; InvalidInput naming the missing setting otherwise."""
    source = spec.source.rstrip("/")
    folder = PurePosixPath(source.split("://", 1)[-1]).name
    if not folder.isdigit():
        raise InvalidInput(
            f"source: {spec.source!r} must end in a numbered version folder (…/{spec.name}/1), "
            "the layout TensorFlow Serving reads"
        )
    base = source.rsplit("/", 1)[0]
    if source.startswith(REMOTE_SCHEMES):
        if source.startswith("s3://") and not settings.storage_secret:
            raise InvalidInput(
                f"source: {spec.source!r} is on S3, but c.KubernetesBackend.storage_secret is not "
                "set: name a Secret with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and S3_ENDPOINT "
                "for MinIO)"
            )
        return ModelLocation(base, int(folder), on_volume=False, remote=True)
    root = settings.artifact_root.rstrip("/")
    if not root or not (source + "/").startswith(root + "/"):
        raise InvalidInput(
            f"source: {spec.source!r} is a path on the Jupyter server that the cluster cannot "
            f"read; register it again so it is copied under the artifact root ({root or 'unset'}), "
            "or use an s3:// or gs:// source"
        )
    if not settings.model_volume:
        raise InvalidInput(
            f"source: {spec.source!r} lives under the artifact root, but "
            "c.KubernetesBackend.model_volume is not set: name the PersistentVolumeClaim that "
            "holds the artifact root"
        )
    relative = PurePosixPath(base).relative_to(root)
    return ModelLocation(str(PurePosixPath(MODELS_DIR) / relative), int(folder), True, False)
