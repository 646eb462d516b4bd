"""Where a serve's Pods read the model: the artifact volume, or a bucket downloaded first.

Pure functions of the spec and the settings: `InvalidInput` names the setting a source needs.
TF Serving always serves the model under its REGISTRY version: a volume source mounts its
version folder (`subPath`) at `/models/<name>/<registry version>`, a bucket source is copied
there by the init container (`storage_init`). Two sources that both end in `/1` therefore never
collide, and predict URLs, probes and Ingress paths all use `spec.version`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from ..errors import InvalidInput
from .base import ServeSpec
from .cluster_settings import ClusterSettings

MODELS_DIR = "/models"
# What the downloader reads. Other schemes (hdfs://, https://...) are refused, never passed on.
DOWNLOAD_SCHEMES = ("s3://", "gs://")


@dataclass(frozen=True)
class ModelLocation:
    base_path: str  # TF Serving's base_path, as the container sees it: /models/<name>
    servable_version: int  # the version TF Serving serves: always the registry version
    on_volume: bool  # the model volume (PVC), mounted at `version_path` with `sub_path`
    remote: bool  # downloaded by the init container into an emptyDir
    sub_path: str = ""  # on_volume: the version folder, relative to the artifact root
    source: str = ""  # remote: the bucket URI of the version folder

    @property
    def version_path(self) -> str:
        return f"{self.base_path}/{self.servable_version}"


def model_location(spec: ServeSpec, settings: ClusterSettings) -> ModelLocation:
    """Where the cluster reads the model; InvalidInput naming the missing setting otherwise."""
    source = spec.source.rstrip("/")
    folder = PurePosixPath(source.split("://", 1)[-1]).name
    if not folder.isdigit():
        raise InvalidInput(
            f"source: {spec.source!r} must end in a numbered version folder (…/{spec.name}/1), "
            "the layout TensorFlow Serving reads"
        )
    base = str(PurePosixPath(MODELS_DIR) / spec.name)
    if "://" in source:
        if not source.startswith(DOWNLOAD_SCHEMES):
            raise InvalidInput(
                f"source: {spec.source!r}: the kubernetes backend downloads only "
                f"{' and '.join(DOWNLOAD_SCHEMES)} sources"
            )
        bucket = source.split("://", 1)[1].split("/", 1)[0]
        if not bucket:
            raise InvalidInput(f"source: {spec.source!r} names no bucket")
        return ModelLocation(base, spec.version, on_volume=False, remote=True, source=source)
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
    relative = str(PurePosixPath(source).relative_to(root))
    if ".." in PurePosixPath(relative).parts:
        raise InvalidInput(f"source: {spec.source!r} leaves the artifact root")
    return ModelLocation(base, spec.version, on_volume=True, remote=False, sub_path=relative)
