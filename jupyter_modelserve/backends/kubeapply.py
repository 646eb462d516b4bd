"""What server-side apply sends for a serve, and whether a running serve needs it again.

Pure: the backend reads the live Deployment, these functions decide. The Deployment carries a
hash of every object the serve is made of (`ANNOTATION_APPLIED`): a reconcile re-applies a serve
only when the hash of what it wants now differs, so refreshing unchanged serves costs no write.
`spec.replicas` is never taken from somebody else: left out when another field manager owns it
(an HPA, `kubectl scale` on 1.22+), and kept at the live value when it was changed without a
trace in managedFields (the /scale subresource on API servers before 1.22).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from typing import Any

from .cluster_settings import ClusterSettings
from .kubeapi import FIELD_MANAGER, KubeApi

ANNOTATION_APPLIED = "modelserve/applied-hash"  # hash of the objects last applied
ANNOTATION_REPLICAS = "modelserve/applied-replicas"  # the replicas we last chose ourselves


def objects_hash(objects: list[dict[str, Any]]) -> str:
    """A stable digest of the desired objects (what the settings make of a serve)."""
    text = json.dumps(objects, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def annotation(live: Any, key: str) -> str | None:
    annotations = (live.metadata.annotations or {}) if live is not None else {}
    value = annotations.get(key)
    return str(value) if value is not None else None


def needs_apply(desired: list[dict[str, Any]], live_deployment: Any) -> bool:
    """True when the live Deployment was applied from other settings (or before hashes)."""
    return annotation(live_deployment, ANNOTATION_APPLIED) != objects_hash(desired)


def replicas_owner(live: Any) -> str | None:
    """The field manager other than us that owns the live Deployment's spec.replicas."""
    for entry in live.metadata.managed_fields or []:
        fields = entry.fields_v1 or {}
        if "f:replicas" not in (fields.get("f:spec") or {}):
            continue
        if entry.manager != FIELD_MANAGER or entry.operation != "Apply":
            return str(entry.manager)
    return None


def for_apply(desired: list[dict[str, Any]], live_deployment: Any) -> list[dict[str, Any]]:
    """The objects to apply: the desired ones, the Deployment stamped with their hash and its
    replicas settled against whoever else scales it."""
    stamp = objects_hash(desired)
    objects = copy.deepcopy(desired)
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        annotations = obj["metadata"].setdefault("annotations", {})
        annotations[ANNOTATION_APPLIED] = stamp
        wanted = obj["spec"].get("replicas")
        annotations[ANNOTATION_REPLICAS] = str(wanted)
        if live_deployment is None:
            continue
        previous = annotation(live_deployment, ANNOTATION_REPLICAS)
        if replicas_owner(live_deployment) is not None:
            # Theirs: leaving it out keeps their value and their ownership.
            del obj["spec"]["replicas"]
            annotations[ANNOTATION_REPLICAS] = previous or str(wanted)
        elif previous is not None and str(live_deployment.spec.replicas) != previous:
            # Scaled behind our back without a managedFields trace: keep their number (leaving
            # it out would make SSA remove the field we own, and the default is 1).
            obj["spec"]["replicas"] = live_deployment.spec.replicas
            annotations[ANNOTATION_REPLICAS] = previous
    return objects


SHARED_MODES = frozenset({"ReadOnlyMany", "ReadWriteMany"})


def single_node(claim: Any) -> bool:
    """Whether a PersistentVolumeClaim attaches to one node at a time (ReadWriteOnce or
    ReadWriteOncePod only). A claim we may not read counts as single-node (the caller passes
    None): Recreate costs a moment of downtime, a stuck Multi-Attach costs the update."""
    modes = set((claim.spec.access_modes or []) if claim is not None else [])
    return not modes & SHARED_MODES


MISSING = object()  # no such claim: nothing to attach yet (the Pod waits for it), no Recreate


def read_claim(api: KubeApi, claim: str) -> Any:
    """The PersistentVolumeClaim `claim`, or MISSING (wrap it in `api.call`)."""
    from kubernetes.client.exceptions import ApiException

    try:
        return api.core().read_namespaced_persistent_volume_claim(
            claim, api.namespace, _request_timeout=api.timeout
        )
    except ApiException as exc:
        if exc.status == 404:
            return MISSING
        raise


def with_cluster_facts(
    api: KubeApi, settings: ClusterSettings, known: dict[str, bool]
) -> ClusterSettings:
    """`settings` with `model_volume_single_node` read from the claim. `known` remembers it per
    claim (a claim's accessModes never change); a missing claim is read again next time."""
    claim = settings.model_volume
    if not claim:
        return settings
    if claim not in known:
        found = api.call(
            f"read PersistentVolumeClaim {claim}", read_claim, api, claim,
            allow=(403,),  # not allowed to read it (None): single-node, the safe side
        )  # fmt: skip
        if found is None or found is MISSING:
            return replace(settings, model_volume_single_node=found is None)
        known[claim] = single_node(found)
    return replace(settings, model_volume_single_node=known[claim])
