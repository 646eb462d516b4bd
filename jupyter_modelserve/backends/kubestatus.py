"""What a serve's Deployment and Pods say, as one Observation with a reason a user can act on.

Only the Pods of the Deployment's current ReplicaSet that are not being deleted speak for the
serve: an old ReplicaSet's Pod (a rollout in progress) or a terminating one says nothing about
the Pods that will serve. The Deployment's conditions are believed only once its controller has
observed the current generation (before that they describe the previous spec).
"""

from __future__ import annotations

import re
from typing import Any

from .base import Observation, Observed
from .kubepods import pod_evicted, pod_failure, pod_waiting

MAIN_CONTAINER = "tensorflow-serving"
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
_RS_NAME = re.compile(r'[Rr]eplica ?[Ss]et "([^"]{1,253})"')


def current_hash(deployment: Any, replicasets: list[Any] | None) -> str | None:
    """The pod-template-hash of the Deployment's current ReplicaSet; None when unknown.

    The Deployment controller gives the Deployment the revision annotation of its newest
    ReplicaSet (as `kubectl rollout status` reads it): that ReplicaSet is the current one.
    """
    if replicasets is None:
        return _hash_from_progressing(deployment)
    revision = (deployment.metadata.annotations or {}).get(REVISION)
    for replicaset in replicasets:
        meta = replicaset.metadata
        owners = {ref.uid for ref in meta.owner_references or []}
        if deployment.metadata.uid in owners and (meta.annotations or {}).get(REVISION) == revision:
            return (meta.labels or {}).get(HASH_LABEL)
    return ""  # no current ReplicaSet yet: no Pod is current


def current_pods(pods: list[Any], template_hash: str | None) -> list[Any]:
    """The Pods that speak for the serve: current ReplicaSet, not terminating, not finished."""
    return [
        pod
        for pod in pods
        if pod.metadata.deletion_timestamp is None
        and (template_hash is None or (pod.metadata.labels or {}).get(HASH_LABEL) == template_hash)
        # Failed (evicted) and Succeeded Pods are replaced by the ReplicaSet controller.
        and (pod.status.phase or "") not in ("Failed", "Succeeded")
    ]


def observe(deployment: Any, pods: list[Any], replicasets: list[Any] | None = None) -> Observation:
    """Fold a V1Deployment, its V1ReplicaSets (None: unknown) and V1Pods into one state."""
    if deployment.metadata.deletion_timestamp is not None:
        return Observation(Observed.STARTING, "the Deployment is being deleted")
    template_hash = current_hash(deployment, replicasets)
    live = current_pods(pods, template_hash)
    failures = [f for f in map(pod_failure, live) if f]
    waiting = [w for w in map(pod_waiting, live) if w]
    status = deployment.status
    generation = deployment.metadata.generation or 0
    if (status.observed_generation or 0) < generation:
        # Conditions and counts still describe the previous spec: believe neither, only Pods.
        if any(_ready(pod) for pod in live):
            return Observation(Observed.AVAILABLE)
        return Observation(
            Observed.STARTING,
            f"the Deployment controller has not yet observed generation {generation} of "
            f"Deployment {deployment.metadata.name}",
        )
    conditions = {c.type: c for c in (status.conditions or [])}
    progressing = conditions.get("Progressing")
    timed_out = (
        f"ProgressDeadlineExceeded: {progressing.message}"
        if progressing is not None and progressing.reason == "ProgressDeadlineExceeded"
        else ""
    )
    if (status.available_replicas or 0) >= 1:
        # Some replicas serve (the Service routes to them) even when fewer than the rollout's
        # minimum are (Available False): what is wrong with the others is news, not a failure.
        notes = [timed_out] if timed_out else []
        wanted = deployment.spec.replicas if deployment.spec.replicas is not None else 1
        short = failures or waiting or (status.ready_replicas or 0) < wanted
        notes += [_of_replicas(status, deployment)] if short else []
        notes += failures + waiting
        return Observation(Observed.AVAILABLE, "; ".join(notes) or None)
    # Final only once every wanted replica exists and fails: the ReplicaSet creates Pods in
    # batches (1, 2, 4...), and the first one failing says nothing of those not created yet.
    if failures and len(failures) == len(live) >= _wanted(deployment):
        return Observation(Observed.FAILED, failures[0])
    # Some replicas fail while others may still start (a bad node, say): say so, and wait.
    waiting = failures + waiting
    if timed_out:
        detail = "".join(f"; {w}" for w in waiting[:1]) + _replica_failure(conditions)
        return Observation(Observed.FAILED, timed_out + detail)
    replica_failure = _replica_failure(conditions)
    if replica_failure:
        # Quota, LimitRange or admission: the ReplicaSet controller keeps retrying (quota may be
        # freed), so the serve waits with the cause until the progress deadline decides.
        return Observation(Observed.STARTING, replica_failure.removeprefix("; "))
    if waiting:
        return Observation(Observed.STARTING, waiting[0])
    if any((pod.status.phase or "") == "Running" for pod in live):
        return Observation(
            Observed.LOADING, "TensorFlow Serving is running; waiting for the model to load"
        )
    # The newest eviction of the current ReplicaSet says why its replacement only starts now.
    evicted = [e for e in map(pod_evicted, _newest_first(pods, template_hash)) if e][:1]
    if live:
        return Observation(Observed.STARTING, "; ".join(["waiting for the Pod to start", *evicted]))
    return Observation(
        Observed.STARTING, "; ".join(["waiting for the Deployment to create a Pod", *evicted])
    )


def _hash_from_progressing(deployment: Any) -> str | None:
    """Without leave to list ReplicaSets: the Progressing condition names the newest one
    ('ReplicaSet "ms-x-v1-5d9c7b8f4" is progressing.', 'Created new replica set "..."')."""
    name = deployment.metadata.name
    for condition in deployment.status.conditions or []:
        if condition.type != "Progressing":
            continue
        found = _RS_NAME.search(condition.message or "")
        if found and found.group(1).startswith(f"{name}-"):
            return found.group(1)[len(name) + 1 :]
    return None


def _newest_first(pods: list[Any], template_hash: str | None) -> list[Any]:
    """The current ReplicaSet's Pods, terminating and finished ones included, newest first."""
    mine = [
        pod
        for pod in pods
        if template_hash is None or (pod.metadata.labels or {}).get(HASH_LABEL) == template_hash
    ]
    return sorted(mine, key=lambda pod: str(pod.metadata.creation_timestamp or ""), reverse=True)


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _wanted(deployment: Any) -> int:
    return int(deployment.spec.replicas) if deployment.spec.replicas is not None else 1


def _of_replicas(status: Any, deployment: Any) -> str:
    return f"{status.ready_replicas or 0} of {_wanted(deployment)} replicas ready"


def _replica_failure(conditions: dict[str, Any]) -> str:
    failure = conditions.get("ReplicaFailure")
    if failure is None or failure.status != "True":
        return ""
    return f"; ReplicaFailure: {failure.reason}: {failure.message}"
