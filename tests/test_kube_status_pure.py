"""Status rules the real control plane cannot be made to show on demand, on the client's own
models: a Deployment whose controller has not observed its generation yet (the controller
catches up within milliseconds here), and which Events speak for which serve (names that
share a prefix)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import CoreV1Event, V1Deployment, V1Pod

from jupyter_modelserve.backends.base import Observation, Observed
from jupyter_modelserve.backends.kubeevents import explain
from jupyter_modelserve.backends.kubestatus import observe

from .kube import model

NAME = "ms-a-simple-v1"
STAMP = "2026-01-01T00:00:0{}Z"


def _deployment(
    generation: int, observed: int, progressing: str = "NewReplicaSetAvailable", replicas: int = 1
) -> Any:
    return model(
        V1Deployment,
        {
            "metadata": {"name": NAME, "uid": "d1", "generation": generation},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
            "status": {
                "observedGeneration": observed,
                "availableReplicas": 0,
                "conditions": [
                    {"type": "Progressing", "status": "False", "reason": progressing}
                    | {"message": f'ReplicaSet "{NAME}-abc12" has timed out progressing.'}
                ],
            },
        },
    )


def _pod(name: str, ready: bool, phase: str = "Running", **status: Any) -> Any:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return model(
        V1Pod,
        {
            "metadata": {"name": name, "labels": {"pod-template-hash": "abc12"}},
            "spec": {"containers": [{"name": "tensorflow-serving"}]},
            "status": {"phase": phase, "conditions": [condition], **status},
        },
    )


def _event(kind: str, name: str, reason: str, message: str, second: int) -> Any:
    return model(
        CoreV1Event,
        {
            "metadata": {"name": f"{name}.{second}"},
            "involvedObject": {"kind": kind, "name": name},
            "reason": reason,
            "message": message,
            "type": "Warning",
            "lastTimestamp": STAMP.format(second),
        },
    )


def test_an_unobserved_generation_is_not_judged_by_the_previous_specs_conditions() -> None:
    # Given a Deployment changed to generation 3 whose controller last saw generation 2, when
    # the old spec's rollout had timed out, and its new Pod not ready yet
    deployment = _deployment(3, 2, "ProgressDeadlineExceeded")

    # When it is observed
    seen = observe(deployment, [_pod(f"{NAME}-abc12-x", ready=False)])

    # Then it waits for the controller, naming the generation, instead of failing on old news
    assert seen.state is Observed.STARTING
    assert f"has not yet observed generation 3 of Deployment {NAME}" in (seen.reason or "")


def test_an_unobserved_generation_with_a_ready_pod_still_serves() -> None:
    # Given the same unobserved generation, but a ready Pod
    deployment = _deployment(3, 2, "ProgressDeadlineExceeded")

    # When it is observed, Then it is AVAILABLE (the Pod answers, whatever the old conditions)
    assert observe(deployment, [_pod(f"{NAME}-abc12-x", ready=True)]).state is Observed.AVAILABLE


def test_an_observed_generation_past_its_deadline_fails() -> None:
    # Given the controller observed the current generation and it timed out (the control case:
    # the same conditions count once they describe the current spec)
    deployment = _deployment(3, 3, "ProgressDeadlineExceeded")

    # Then the serve is FAILED with the deadline's message
    seen = observe(deployment, [_pod(f"{NAME}-abc12-x", ready=False)])
    assert seen.state is Observed.FAILED and "ProgressDeadlineExceeded" in (seen.reason or "")


def test_only_the_serves_own_events_explain_it_newest_first() -> None:
    # Given a waiting serve and Warning Events of its Pod, its ReplicaSet, an old Pod, and the
    # ReplicaSet of another serve whose name starts with this one's (model "simple-v1-b")
    pod = _pod(f"{NAME}-abc12-x", ready=False, phase="Pending")
    events = [
        _event("Pod", f"{NAME}-abc12-x", "FailedMount", "old: secret not found", 1),
        _event("Pod", f"{NAME}-abc12-x", "FailedMount", 'secret "creds" not found', 5),
        _event("ReplicaSet", f"{NAME}-b-v1-zz9", "FailedCreate", "another serve's quota", 6),
        _event("Pod", f"{NAME}-abc12-gone", "FailedScheduling", "a deleted Pod's", 7),
        _event("ReplicaSet", f"{NAME}-abc12", "FailedCreate", "exceeded quota: q", 0),
        _event("Pod", f"{NAME}-abc12-x", "BackOff", "not a reason that explains a start", 8),
    ]
    waiting = Observation(Observed.STARTING, "waiting for the Pod to start")

    # When the events explain the observation
    seen = explain(waiting, events, _deployment(1, 1), [pod], None)

    # Then its own two newest telling Events are named, once each, and nobody else's
    assert seen.reason == (
        "waiting for the Pod to start; "
        f'FailedMount: Pod {NAME}-abc12-x: secret "creds" not found; '
        f"FailedCreate: ReplicaSet {NAME}-abc12: exceeded quota: q"
    )


def test_events_do_not_explain_a_serve_whose_model_server_runs() -> None:
    # Given a LOADING serve (TF Serving runs: it was scheduled and mounted) and an old FailedMount
    pod = _pod(f"{NAME}-abc12-x", ready=False)
    events = [_event("Pod", f"{NAME}-abc12-x", "FailedMount", "since resolved", 1)]
    loading = Observation(Observed.LOADING, "waiting for the model to load")

    # Then the reason stays as it was
    assert explain(loading, events, _deployment(1, 1), [pod], None) == loading


def test_an_evicted_pod_explains_why_its_replacement_only_starts() -> None:
    # Given the serve's Pod evicted for memory pressure, and its replacement not started yet
    evicted = _pod(
        f"{NAME}-abc12-old",
        ready=False,
        phase="Failed",
        reason="Evicted",
        message="The node was low on resource: memory.",
    )
    replacement = _pod(f"{NAME}-abc12-new", ready=False, phase="Pending")

    # When observed, Then it waits (the evicted Pod never speaks for the serve) and says why
    seen = observe(_deployment(1, 1, "ReplicaSetUpdated"), [evicted, replacement])
    assert seen.state is Observed.STARTING
    assert seen.reason == (
        f"waiting for the Pod to start; Evicted: Pod {NAME}-abc12-old was evicted: "
        "The node was low on resource: memory."
    )


def _crash_looping(name: str) -> Any:
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off"}
    last = {"terminated": {"exitCode": 1, "reason": "Error", "message": "bad flag"}}
    crashing = {"name": "tensorflow-serving", "image": "tfs", "imageID": "", "ready": False}
    crashing |= {"restartCount": 2, "state": {"waiting": waiting}, "lastState": last}
    return _pod(name, ready=False, containerStatuses=[crashing])


@pytest.mark.parametrize(("replicas", "state"), [(3, Observed.STARTING), (1, Observed.FAILED)])
def test_the_first_pod_failing_fails_the_serve_only_when_it_is_every_wanted_replica(
    replicas: int, state: Observed
) -> None:
    # Given a Deployment whose ReplicaSet created the first Pod of its first batch, and that Pod
    # crash-loops
    deployment = _deployment(1, 1, "ReplicaSetUpdated", replicas=replicas)

    # When observed
    seen = observe(deployment, [_crash_looping(f"{NAME}-abc12-x")])

    # Then three wanted replicas wait for the others (saying why this one fails); one fails
    assert seen.state is state
    assert "CrashLoopBackOff: container tensorflow-serving of Pod" in (seen.reason or "")
    assert "exit code 1, last message: bad flag" in (seen.reason or "")
