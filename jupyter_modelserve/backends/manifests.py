"""Kubernetes objects for one serve, as plain dicts: spec in, manifests out, no cluster needed.

Per serve: a ConfigMap holding TF Serving's `model_config_list` (the only way to pin exactly one
version: `--model_name`/`--model_base_path` have no version policy and are ignored next to a
config file), a Deployment running `tensorflow/serving`, a Service, and an Ingress when a host
is configured. Every object carries labels that say who owns it and which serve it belongs to
(`naming`); where the model is read from is `storage`'s, how it is reached `exposure`'s.
"""

from __future__ import annotations

from typing import Any

from ..tfserving.model_config import ModelConfig, VersionPolicy, render_model_config_list
from . import podspec, storage_init
from .base import ServeSpec
from .cluster_settings import ClusterSettings
from .exposure import GRPC_PORT, REST_PORT, ingress, service
from .naming import ANNOTATION_MODEL, LABEL_INSTANCE, labels, metadata, object_name
from .netpolicy import network_policy
from .storage import model_location

CONFIG_DIR = "/etc/modelserve"


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
        "metadata": metadata(spec, settings),
        "data": {
            "models.config": render_model_config_list([config]),
            podspec.MONITORING_FILE: podspec.monitoring_config(),
        },
    }


def deployment(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    location = model_location(spec, settings)
    name = object_name(spec, settings)
    gpu = podspec.wants_gpu(settings.resources, settings.requests)
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": podspec.TMP_DIR},  # the root filesystem is read-only
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": name}},
        {"name": "tmp", "emptyDir": {"sizeLimit": podspec.TMP_SIZE_LIMIT}},
    ]
    # The model: its version folder at /models/<name>/<registry version> (storage_init).
    mounts.append(storage_init.model_mount(location))
    volumes.append(storage_init.model_volume(location, settings))
    container: dict[str, Any] = {
        "name": "tensorflow-serving",
        **podspec.container_fields(settings, gpu, CONFIG_DIR, REST_PORT, GRPC_PORT),
        "ports": [
            # protocol spelled out: server-side apply keys this list on containerPort+protocol.
            {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
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
    pod_labels = labels(spec, settings)
    pod_spec = {"containers": [container], "volumes": volumes, **podspec.pod_fields(settings)}
    if location.remote:  # downloaded before TF Serving starts; credentials stay in there
        pod_spec["initContainers"] = [storage_init.init_container(location, settings)]
    if settings.service_account:
        # IRSA and workload identity need no API token (automountServiceAccountToken stays
        # false): the webhook projects its own token, GKE's metadata server answers.
        pod_spec["serviceAccountName"] = settings.service_account
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(spec, settings),
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
    if gpu or (location.on_volume and settings.model_volume_single_node):
        # A rolling update would start the new Pod beside the old one, which holds the GPU
        # (on a node with one GPU it never schedules) or the ReadWriteOnce volume (Multi-Attach
        # on another node). Stop the old Pod first.
        body["spec"]["strategy"] = {"type": "Recreate"}
    else:
        # Spelled out, so server-side apply owns rollingUpdate and drops it when a later apply
        # switches to Recreate (a defaulted rollingUpdate would make that apply invalid).
        body["spec"]["strategy"] = {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
        }
    return body


def manifests(spec: ServeSpec, settings: ClusterSettings) -> list[dict[str, Any]]:
    """Every object of a serve, in creation order (the Deployment mounts the ConfigMap; the
    NetworkPolicy comes first, so no Pod of the serve is ever reachable without it)."""
    fence = network_policy(spec, settings)
    objects = [config_map(spec, settings), deployment(spec, settings), service(spec, settings)]
    extra = ingress(spec, settings)
    return ([fence] if fence else []) + objects + ([extra] if extra else [])
