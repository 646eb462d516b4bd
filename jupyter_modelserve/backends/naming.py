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
# Longest instance in names: leaves 40+ characters of a 63-character name to the model.
_INSTANCE_MAX = 20


def instance_value(raw: str) -> str:
    """`raw` as a short DNS label that fits in object names and label values.

    Kept as is when already safe and short; otherwise sanitized and suffixed with a hash of the
    raw value, so "Team@A" and "team-a" stay two instances instead of one.
    """
    readable = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", raw.lower())).strip("-")
    if readable == raw and 0 < len(raw) <= _INSTANCE_MAX:
        return raw
    digest = _digest(raw)
    keep = readable[: _INSTANCE_MAX - len(digest) - 1].rstrip("-")
    return f"{keep}-{digest}" if keep else digest


def object_name(spec: ServeSpec, settings: ClusterSettings) -> str:
    """A DNS-1035 label for the serve's objects: `ms-<instance>-<name>-v<version>`.

    The instance keeps two Jupyter servers' serves of the same model apart in one namespace.
    The readable form is used only when it reads back one way: the instance holds no hyphen
    (else instance `a` with model `b-c` and instance `a-b` with model `c` would both give
    `ms-a-b-c-v1`), the name is already safe, and it fits. Any other serve gets a hash of the
    whole (instance, name, version) appended, so a hashed name never equals a readable one (it
    ends in the hash, a readable one in `v<version>`) nor another hashed one.
    """
    instance = instance_label(settings)
    readable = re.sub(r"[^a-z0-9-]", "-", spec.name.lower()).strip("-")
    name = f"ms-{instance}-{readable}-v{spec.version}"
    if "-" not in instance and readable == spec.name and len(name) <= _DNS_LABEL_MAX:
        return name
    digest = _digest(f"{instance}/{spec.name}/{spec.version}")
    keep = max(0, _DNS_LABEL_MAX - len(f"ms-{instance}--v{spec.version}-{digest}"))
    parts = ["ms", instance, readable[:keep].rstrip("-"), f"v{spec.version}", digest]
    return "-".join(part for part in parts if part)


def instance_label(settings: ClusterSettings) -> str:
    """The instance as it appears in names and the `modelserve/instance` label."""
    return instance_value(settings.instance)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def label_value(value: str) -> str:
    if len(value) <= _DNS_LABEL_MAX:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[: _DNS_LABEL_MAX - 9].rstrip('-_.')}-{digest}"


def labels(spec: ServeSpec, settings: ClusterSettings) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": APP_NAME,
        "app.kubernetes.io/instance": object_name(spec, settings),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        LABEL_INSTANCE: instance_label(settings),
        LABEL_NAME: label_value(spec.name),
        LABEL_VERSION: str(spec.version),
    }


def owner_selector(settings: ClusterSettings) -> str:
    """Selects every object this Jupyter server's backend made in its namespace."""
    return f"app.kubernetes.io/managed-by={MANAGED_BY},{LABEL_INSTANCE}={instance_label(settings)}"


def serve_selector(spec: ServeSpec, settings: ClusterSettings) -> str:
    name = label_value(spec.name)
    return f"{owner_selector(settings)},{LABEL_NAME}={name},{LABEL_VERSION}={spec.version}"


def metadata(spec: ServeSpec, settings: ClusterSettings) -> dict[str, Any]:
    return {
        "name": object_name(spec, settings),
        "namespace": settings.namespace,
        "labels": labels(spec, settings),
        "annotations": {ANNOTATION_MODEL: spec.name},
    }


def owned(found: dict[str, str] | None, spec: ServeSpec, settings: ClusterSettings) -> bool:
    """Whether labels `found` prove an object belongs to `spec` of this instance."""
    ours = labels(spec, settings)
    return all((found or {}).get(key) == ours[key] for key in OWNER_KEYS)
