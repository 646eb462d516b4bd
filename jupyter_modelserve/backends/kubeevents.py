"""Events that say why a serve's Pods do not start when their status does not.

A volume that cannot be mounted (FailedMount: a missing PVC or Secret), attached elsewhere
(FailedAttachVolume: "Multi-Attach error" for a ReadWriteOnce volume in use on another node), a
scheduler that found no node (FailedScheduling) or a ReplicaSet whose Pod creation is refused
(FailedCreate) leave a Pod Pending with no reason in its status: only the Events name them. They
are read only for serves that wait or failed, and only those of the serve's own current Pods,
current ReplicaSet and Deployment: one small list per object, by field selector
(`involvedObject.name=...,type=Warning`), at most `MAX_OBJECTS` objects per status read, so
neither a namespace flooded with other Events nor many waiting serves make a read unbounded.
Events are detail: a read that fails (not allowed, 5xx, timeout) leaves the observations as
they were, it never fails the status read.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ..errors import ModelServeError
from .base import Key, Observation, Observed
from .kubeapi import KubeApi
from .kubestatus import current_hash, current_pods

log = logging.getLogger(__name__)

# The reasons that explain a Pod that does not start (kubelet, scheduler, controllers).
REASONS = frozenset(("FailedMount", "FailedAttachVolume", "FailedScheduling", "FailedCreate"))
MAX_OBJECTS = 8  # objects whose Events one status read asks for (over every waiting serve)
MAX_PER_OBJECT = 20  # Events of one object (the recorder folds repeats into one with a count)
MAX_NAMED = 2  # events added to one reason
MAX_MESSAGE = 300
_WAITING = (Observed.STARTING, Observed.FAILED)


def involved(
    deployment: Any, pods: list[Any], replicasets: list[Any] | None
) -> list[tuple[str, str]]:
    """(kind, name) of the objects whose Events explain the serve, most telling first: its
    current Pods (mount, attach, scheduling), its current ReplicaSet (FailedCreate); its
    Deployment only while no current ReplicaSet is known (it says little otherwise)."""
    template_hash = current_hash(deployment, replicasets)
    name = deployment.metadata.name
    objects = [("Pod", pod.metadata.name) for pod in current_pods(pods, template_hash)]
    last = ("ReplicaSet", f"{name}-{template_hash}") if template_hash else ("Deployment", name)
    return [*objects, last]


def warnings_of(api: KubeApi, name: str, limit: tuple[float, float]) -> list[Any] | None:
    """The Warning Events of the objects named `name`; None when this identity may not list
    Events (a Role without them)."""
    listed = api.call(
        "list Events",
        lambda: api.core().list_namespaced_event(
            api.namespace,
            field_selector=f"involvedObject.name={name},type=Warning",
            limit=MAX_PER_OBJECT,
            _request_timeout=limit,
        ),
        allow=(403,),
    )
    return None if listed is None else list(listed.items)


def explain(
    observation: Observation,
    events: list[Any],
    deployment: Any,
    pods: list[Any],
    replicasets: list[Any] | None,
) -> Observation:
    """The observation with the newest telling Events of the objects `names` in its reason.

    Only a serve whose Pods have not started (STARTING) or that failed: once TF Serving runs,
    its volumes were mounted and it was scheduled, so older Events would be stale news.
    """
    if observation.state not in _WAITING:
        return observation
    wanted = set(involved(deployment, pods, replicasets))
    said = observation.reason or ""
    seen: set[tuple[str, str, str]] = set()
    notes: list[str] = []
    for event in sorted(events, key=_when, reverse=True):
        kind = event.involved_object.kind or ""
        object_name = event.involved_object.name or ""
        if event.reason not in REASONS or (kind, object_name) not in wanted:
            continue
        message = " ".join((event.message or "").split())[:MAX_MESSAGE]
        key = (kind, object_name, event.reason)
        if key in seen or message in said:  # already said by a condition (FailedCreate...)
            continue
        seen.add(key)
        notes.append(f"{event.reason}: {kind} {object_name}: {message}")
        if len(notes) == MAX_NAMED:
            break
    if not notes:
        return observation
    reason = "; ".join([*([said] if said else []), *notes])
    return dataclasses.replace(observation, reason=reason)


def _when(event: Any) -> str:
    stamp = event.last_timestamp or event.event_time or event.first_timestamp
    return stamp.isoformat() if stamp is not None else ""


def explain_all(
    api: KubeApi,
    found: dict[Key, Observation],
    seen: dict[Key, tuple[Any, list[Any]]],
    replicasets: list[Any] | None,
    limit: tuple[float, float],
) -> dict[Key, Observation]:
    """`found` with Events added to the serves (in `seen`: key -> (Deployment, its Pods)) that
    wait or failed; nothing asked when every serve is fine, never more than `MAX_OBJECTS`
    lists, and `found` unchanged when Events cannot be read."""
    asking = [key for key in sorted(seen) if found[key].state in _WAITING]
    budget = MAX_OBJECTS
    explained = dict(found)
    try:
        for key in asking:
            deployment, pods = seen[key]
            events: list[Any] = []
            for _kind, name in involved(deployment, pods, replicasets)[:budget]:
                budget -= 1
                listed = warnings_of(api, name, limit)
                if listed is None:  # not allowed to list Events: as before the Role had them
                    return explained
                events.extend(listed)
            explained[key] = explain(found[key], events, deployment, pods, replicasets)
            if budget <= 0:
                break
    except ModelServeError as error:
        log.info("Events not read this time (the states stand without them): %s", error.message)
    return explained
