"""Names and labels of a serve's Kubernetes objects: who owns each object, and which serve it is.

Every object a serve is made of carries the same name and the labels that prove ownership
(`OWNER_KEYS`); selectors built here find exactly one Jupyter server's objects.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .base import ServeSpec
from .cluster_settings import ClusterSettings

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
_DNS_LABEL_MAX = 63


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


def metadata(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    return {
        "name": object_name(spec),
        "namespace": settings.namespace,
        "labels": labels(spec, settings),
        "annotations": {ANNOTATION_MODEL: spec.name},
    }
