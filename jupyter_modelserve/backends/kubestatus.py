"""What a serve's Deployment and Pods say, as one Observation with a reason a user can act on."""

from __future__ import annotations

from typing import Any

from .base import Observation, Observed

# Waiting reasons after which a Pod will not get better by itself. A first ErrImagePull is
# not one (the kubelet retries; ImagePullBackOff follows if it keeps failing), nor is an
# Unschedulable Pod (an autoscaler may be adding the node): both are reported while waiting,
# and the progress deadline or the load deadline decides.
IMAGE_FAILURES = ("ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
START_FAILURES = ("CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError")


def observe(deployment: Any, pods: list[Any]) -> Observation:
    """Fold a V1Deployment and its V1Pods into one state, failures first."""
    for pod in pods:
        failure = _pod_failure(pod)
        if failure:
            return Observation(Observed.FAILED, failure)
    waiting = next((w for w in map(_pod_waiting, pods) if w), None)
    conditions = {c.type: c for c in (deployment.status.conditions or [])}
    progressing = conditions.get("Progressing")
    if progressing is not None and progressing.reason == "ProgressDeadlineExceeded":
        return Observation(Observed.FAILED, f"ProgressDeadlineExceeded: {progressing.message}")
    available = conditions.get("Available")
    if (
        available is not None
        and available.status == "True"
        and (deployment.status.available_replicas or 0) >= 1
    ):
        return Observation(Observed.AVAILABLE)
    if deployment.metadata.deletion_timestamp is not None:
        return Observation(Observed.STARTING, "the Deployment is being deleted")
    if any((pod.status.phase or "") == "Running" for pod in pods):
        return Observation(
            Observed.LOADING, "TensorFlow Serving is running; waiting for the model to load"
        )
    if waiting:
        return Observation(Observed.STARTING, waiting)
    if pods:
        return Observation(Observed.STARTING, "waiting for the Pod to start")
    return Observation(Observed.STARTING, "waiting for the Deployment to create a Pod")


def _pod_waiting(pod: Any) -> str | None:
    """Why a Pod is not running yet, when it says (Unschedulable, a first ErrImagePull)."""
    name = pod.metadata.name
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.reason == "Unschedulable":
            return f"Unschedulable: Pod {name}: {condition.message}"
    for container in pod.status.container_statuses or []:
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason == "ErrImagePull":
            return f"ErrImagePull: Pod {name} cannot pull image {container.image} yet"
    return None


def _pod_failure(pod: Any) -> str | None:
    name = pod.metadata.name
    for container in pod.status.container_statuses or []:
        waiting = container.state.waiting if container.state else None
        if waiting is None:
            continue
        if waiting.reason in IMAGE_FAILURES:
            return f"{waiting.reason}: Pod {name} cannot pull image {container.image}" + (
                f": {waiting.message}" if waiting.message else ""
            )
        if waiting.reason in START_FAILURES:
            detail = _last_termination(container) or waiting.message or ""
            return f"{waiting.reason}: Pod {name} keeps failing" + (f": {detail}" if detail else "")
    return None


def _last_termination(container: Any) -> str:
    last = container.last_state.terminated if container.last_state else None
    if last is None:
        return ""
    # With FallbackToLogsOnError the message can be many log lines: the last one says most.
    lines = [line.strip() for line in (last.message or last.reason or "").splitlines()]
    message = next((line for line in reversed(lines) if line), "")
    return f"exit code {last.exit_code}" + (f", last message: {message}" if message else "")
