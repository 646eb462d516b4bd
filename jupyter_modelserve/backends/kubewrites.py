"""Writing a serve's objects safely against a cluster other people write to at the same time.

- A kind read as absent is created by a server-side apply that is NOT forced: if somebody made
  an object of that name in between, the API server answers 409 (their manager owns fields we
  set differently) instead of letting us take it over; we read it again and refuse it when it
  is not ours. (Not a POST: a POST records us as an "Update" manager, and fields we later stop
  applying would then never be removed; measured on the control plane.)
- An existing object is applied forced, but with the `resourceVersion` we read: a change in
  between is a 409, read again (and checked again) and applied once more, else Conflict.
- Kinds the serve no longer wants (ingress_host unset, network_policy off) are deleted when
  they are ours, with the uid we read as a precondition.
- A 400/422 on one of OUR objects is the server's configuration at fault (the user's input was
  validated before anything was written): ServerFault naming the kind and its settings.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import Conflict, InvalidInput, ServerFault
from . import ingressroutes, kubeapply, naming
from .base import ServeSpec
from .cluster_settings import ClusterSettings
from .kubeapi import FIELD_MANAGER, KubeApi

# Which settings shape each kind: named in a ServerFault when the API server rejects one.
SHAPED_BY = {
    "ConfigMap": "the model's name and version (a bug if rejected: please report it)",
    "Deployment": (
        "image, gpu_image, resources, requests, tolerations, affinity, node_selector, "
        "priority_class_name, image_pull_secrets, storage_initializer_image, "
        "download_size_limit, storage_secret, service_account, model_volume, run_as_user, "
        "termination_grace_period_seconds, pre_stop_seconds"
    ),
    "Service": "service_type",
    "Ingress": (
        "ingress_host, ingress_class, ingress_annotations, ingress_tls_secret, ingress_path_type"
    ),
    "NetworkPolicy": (
        "jupyter_pod_selector, jupyter_namespace_selector, ingress_namespace_selector"
    ),
}

Refuse = Callable[[Any, dict[str, Any]], None]  # raises when the live object is not ours


def apply_serve(
    api: KubeApi,
    spec: ServeSpec,
    settings: ClusterSettings,
    desired: list[dict[str, Any]],
    kinds: Sequence[str],
    refuse: Refuse,
) -> None:
    """Make the cluster hold exactly `desired` of this serve (no other kind of `kinds`)."""
    existing = {o["kind"]: api.read(o["kind"], o["metadata"]["name"]) for o in desired}
    for obj in desired:
        refuse(existing[obj["kind"]], obj)
    # Another Ingress routing the same host and path would let the controller pick either.
    ingressroutes.refuse_claimed(
        api, next((o for o in desired if o["kind"] == "Ingress"), None), spec, settings
    )
    for obj in kubeapply.for_apply(desired, existing.get("Deployment")):
        _write(api, obj, existing[obj["kind"]], desired, refuse)
    wanted = {o["kind"] for o in desired}
    for kind in kinds:
        if kind not in wanted:
            delete_owned(api, kind, naming.object_name(spec, settings), spec, settings)


def _write(
    api: KubeApi,
    obj: dict[str, Any],
    live: Any,
    desired: list[dict[str, Any]],
    refuse: Refuse,
) -> None:
    kind, name = obj["kind"], obj["metadata"]["name"]
    for attempt in (1, 2):
        body = copy.deepcopy(obj)
        if live is not None:
            body["metadata"]["resourceVersion"] = live.metadata.resource_version
        try:
            answer = api.call(f"apply {kind} {name}", api.apply, body, force=live is not None)
            if live is None and _had_other_writers(answer):
                # Made by somebody else in between, with values equal to ours where we both
                # set a field (else it was a 409): take back what only we set, then refuse.
                bare = {k: obj[k] for k in ("apiVersion", "kind")}
                bare["metadata"] = {"name": name}
                api.call(f"apply {kind} {name}", api.apply, bare, force=False)
                refuse(api.read(kind, name), obj)
            return
        except Conflict:
            if attempt == 2:
                raise
            # Somebody wrote it since we read it: read again, check it is still ours, retry.
            live = api.read(kind, name)
            refuse(live, obj)
            if kind == "Deployment":  # replicas are settled against the live object
                obj = next(o for o in kubeapply.for_apply(desired, live) if o["kind"] == kind)
        except InvalidInput as exc:
            raise ServerFault(
                f"the Kubernetes API server rejected the {kind} {name} this server's settings "
                f"make ({SHAPED_BY.get(kind, 'the kubernetes backend settings')} of "
                f"c.KubernetesBackend): {exc}"
            ) from None


def _had_other_writers(answer: Any) -> bool:
    """Whether the object an apply answered with was written by another field manager too."""
    try:
        managed = json.loads(answer.data)["metadata"].get("managedFields") or []
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return any(entry.get("manager") != FIELD_MANAGER for entry in managed)


def delete_owned(
    api: KubeApi, kind: str, name: str, spec: ServeSpec, settings: ClusterSettings
) -> None:
    """Delete `kind` `name` if it is this serve's, and only the very object we read: a 409
    (the uid changed: somebody else's now) or 404 (gone) leaves it be."""
    existing = api.read(kind, name)
    if existing is None or not naming.owned(existing.metadata.labels, spec, settings):
        return
    uid = existing.metadata.uid
    api.call(f"delete {kind} {name}", api.delete, kind, name, uid=uid, allow=(404, 409))
