"""Kubernetes objects for one serve, as plain dicts: spec in, manifests out, no cluster needed.

Per serve: a ConfigMap holding TF Serving's `model_config_list` (the only way to pin exactly one
version: `--model_name`/`--model_base_path` have no version policy and are ignored next to a
config file), a Deployment running `tensorflow/serving`, a Service, and an Ingress when a host
is configured. Every object carries labels that say who owns it and which serve it belongs to.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ..errors import InvalidInput
from ..schemas import REMOTE_SCHEMES
from ..tfserving.model_config import ModelConfig, VersionPolicy, render_model_config_list
from . import podspec
from .base import ServeSpec

MANAGED_BY = "jupyter-modelserve"
APP_NAME = "tensorflow-serving"
LABEL_NAME = "modelserve/name"
LABEL_VERSION = "modelserve/version"
LABEL_INSTANCE = "modelserve/instance"
# The labels that prove an object belongs to a given serve of this Jupyter server.
OWNER_KEYS = (
    "app.kubernetes.io/managed-by",
    "modelserve/instance",
    "modelserve/name",
    "modelserve/version",
)
ANNOTATION_MODEL = "modelserve/model-name"  # the full name, when the label had to be shortened
REST_PORT = 8501
GRPC_PORT = 8500
CONFIG_DIR = "/etc/modelserve"
MODELS_DIR = "/models"
_DNS_LABEL_MAX = 63


@dataclass(frozen=True)
class ClusterSettings:
    namespace: str = "default"
    image: str = "tensorflow/serving:2.14.1"
    replicas: int = 1
    resources: dict[str, str] = field(default_factory=dict)
    service_type: str = "ClusterIP"
    ingress_host: str = ""
    ingress_class: str = ""
    model_volume: str = ""
    storage_secret: str = ""
    artifact_root: str = ""
    instance: str = "default"
    progress_deadline_seconds: int = 600
    # Limits; also the requests, except those `requests` names (what `resources` always meant).
    requests: dict[str, str] = field(default_factory=dict)
    gpu_image: str = ""  # empty: `image` with "-gpu" added to its tag
    run_as_user: int = 1000
    termination_grace_period_seconds: int = 30
    pre_stop_seconds: int = 5
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    affinity: dict[str, Any] = field(default_factory=dict)
    priority_class_name: str = ""
    image_pull_secrets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModelLocation:
    base_path: str  # as the container sees it
    servable_version: int  # the version folder's number, which TF Serving serves
    on_volume: bool
    remote: bool


def object_name(spec: ServeSpec) -> str:
    """A DNS-1035 label for the serve's objects; hashed when the readable form is unsafe."""
    readable = re.sub(r"[^a-z0-9-]", "-", spec.name.lower()).strip("-")
    name = f"ms-{readable}-v{spec.version}"
    if readable == spec.name and len(name) <= _DNS_LABEL_MAX:
        return name
    # Lower-casing or shortening could make two serves collide: a hash keeps them apart.
    digest = hashlib.sha256(f"{spec.name}/{spec.version}".encode()).hexdigest()[:8]
    keep = _DNS_LABEL_MAX - len(f"ms--v{spec.version}-{digest}")
    return f"ms-{readable[:keep].rstrip('-')}-v{spec.version}-{digest}"


def label_value(value: str) -> str:
    if len(value) <= _DNS_LABEL_MAX:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: _DNS_LABEL_MAX - 9].rstrip('-_.')}-{digest}"


def labels(spec: ServeSpec, settings: ClusterSettings) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": object_name(spec),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_INSTANCE: label_value(settings.instance),
        LABEL_NAME: label_value(spec.name),
        LABEL_VERSION: str(spec.version),
    }


def owner_selector(settings: ClusterSettings) -> str:
    """Selects every object this Jupyter server's backend made in its namespace."""
    instance = label_value(settings.instance)
    return f"app.kubernetes.io/managed-by={MANAGED_BY},{LABEL_INSTANCE}={instance}"


def serve_selector(spec: ServeSpec, settings: ClusterSettings) -> str:
    name = label_value(spec.name)
    return f"{owner_selector(settings)},{LABEL_NAME}={name},{LABEL_VERSION}={spec.version}"


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


def config_map(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    location = model_location(spec, settings)
    config = ModelConfig(
        name=spec.name,
        base_path=location.base_path,
        version_policy=VersionPolicy(kind="specific", versions=(location.servable_version,)),
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, settings),
        "data": {
            "models.config": render_model_config_list([config]),
            podspec.MONITORING_FILE: podspec.monitoring_config(),
        },
    }


def deployment(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    location = model_location(spec, settings)
    name = object_name(spec)
    gpu = podspec.wants_gpu(settings.resources, settings.requests)
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": podspec.TMP_DIR},  # the root filesystem is read-only
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": name}},
        {"name": "tmp", "emptyDir": {"sizeLimit": podspec.TMP_SIZE_LIMIT}},
    ]
    if location.on_volume:
        mounts.append({"name": "models", "mountPath": MODELS_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "models",
                "persistentVolumeClaim": {"claimName": settings.model_volume, "readOnly": True},
            }
        )
    container: dict[str, Any] = {
        "name": "tensorflow-serving",
        **podspec.container_fields(settings, gpu, CONFIG_DIR, REST_PORT, GRPC_PORT),
        "ports": [
            {"name": "http", "containerPort": REST_PORT},
            {"name": "grpc", "containerPort": GRPC_PORT},
        ],
        # Metadata answers only once the version is AVAILABLE (status answers 200 while it is
        # still LOADING), so this probe means "the model can predict".
        "readinessProbe": {
            "httpGet": {
                "path": f"/v1/models/{spec.name}/versions/{location.servable_version}/metadata",
                "port": "http",
            },
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "volumeMounts": mounts,
        # A crash then reports the end of its log as the termination message.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if location.remote and settings.storage_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.storage_secret}}]
    pod_labels = labels(spec, settings)
    pod_spec = {"containers": [container], "volumes": volumes, **podspec.pod_fields(settings)}
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec, settings),
        "spec": {
            "replicas": settings.replicas,
            "progressDeadlineSeconds": settings.progress_deadline_seconds,
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": name,
                    LABEL_INSTANCE: pod_labels[LABEL_INSTANCE],
                }
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        ANNOTATION_MODEL: spec.name,
                        **podspec.metrics_annotations(REST_PORT),
                    },
                },
                "spec": pod_spec,
            },
        },
    }
    if gpu:
        # A rolling update would start the new Pod beside the old one, which holds the GPU:
        # on a node with one GPU it never schedules. Stop the old Pod first.
        body["spec"]["strategy"] = {"type": "Recreate"}
    return body


def service(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, settings),
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
        "metadata": _metadata(spec, settings),
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


def manifests(spec: ServeSpec, settings: ClusterSettings) -> list[dict[str, Any]]:
    """Every object of a serve, in creation order (the Deployment mounts the ConfigMap)."""
    objects = [config_map(spec, settings), deployment(spec, settings), service(spec, settings)]
    extra = ingress(spec, settings)
    return objects + ([extra] if extra else [])


def _metadata(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    return {
        "name": object_name(spec),
        "namespace": settings.namespace,
        "labels": labels(spec, settings),
        "annotations": {ANNOTATION_MODEL: spec.name},
    }
