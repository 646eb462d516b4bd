"""What one Pod says about its containers: init containers, TF Serving and sidecars, by name.

A reason always names the container, so a crashing sidecar (a mesh proxy, a log shipper) or a
failing init container (the model download) is not blamed on TensorFlow Serving.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Waiting reasons after which a container will not get better by itself. ErrImagePull and
# ImagePullBackOff are not among them: the kubelet keeps retrying the pull (a registry outage,
# a secret created late), so they are reported while waiting and the progress deadline decides;
# nor is an Unschedulable Pod (an autoscaler may be adding the node).
IMAGE_FAILURES = ("InvalidImageName", "ErrImageNeverPull")
IMAGE_WAITS = ("ErrImagePull", "ImagePullBackOff")
START_FAILURES = ("CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError")


def pod_failure(pod: Any) -> str | None:
    """Why a Pod will not serve without a change, naming the container; None if it may yet."""
    name = pod.metadata.name
    for kind, container in _containers(pod):
        waiting = container.state.waiting if container.state else None
        if waiting is None:
            continue
        where = f"{kind} {container.name} of Pod {name}"
        if waiting.reason in IMAGE_FAILURES:
            return f"{waiting.reason}: {where} cannot pull image {container.image}" + (
                f": {waiting.message}" if waiting.message else ""
            )
        if waiting.reason in START_FAILURES:
            detail = last_termination(container) or waiting.message or ""
            return f"{waiting.reason}: {where} keeps failing" + (f": {detail}" if detail else "")
    return None


def pod_waiting(pod: Any) -> str | None:
    """Why a Pod is not running yet, when it says (Unschedulable, an image pull retried)."""
    name = pod.metadata.name
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.reason == "Unschedulable":
            return f"Unschedulable: Pod {name}: {condition.message}"
    for kind, container in _containers(pod):
        waiting = container.state.waiting if container.state else None
        if waiting is not None and waiting.reason in IMAGE_WAITS:
            return (
                f"{waiting.reason}: {kind} {container.name} of Pod {name} cannot pull image "
                f"{container.image} yet (the kubelet retries)"
                + (f": {waiting.message}" if waiting.message else "")
            )
    return None


def pod_evicted(pod: Any) -> str | None:
    """Why the kubelet evicted a Pod (node pressure, a preemption); None if it was not.

    An evicted Pod stays Failed until garbage-collected, while its ReplicaSet creates another:
    it never speaks for the serve, but it explains why the replacement is only starting.
    """
    status = pod.status
    if (status.phase or "") != "Failed" or status.reason != "Evicted":
        return None
    detail = (status.message or "").strip()[:300]
    return f"Evicted: Pod {pod.metadata.name} was evicted" + (f": {detail}" if detail else "")


def last_termination(container: Any) -> str:
    """How the container's previous run ended: exit code, OOMKilled, its last message line."""
    last = container.last_state.terminated if container.last_state else None
    if last is None:
        return ""
    if last.reason == "OOMKilled":
        return f"OOMKilled (exit code {last.exit_code}): the container ran out of its memory limit"
    # With FallbackToLogsOnError the message can be many log lines: the last one says most.
    lines = [line.strip() for line in (last.message or last.reason or "").splitlines()]
    message = next((line for line in reversed(lines) if line), "")
    return f"exit code {last.exit_code}" + (f", last message: {message}" if message else "")


def crash_looping(pod: Any, container_name: str) -> bool:
    """Whether this container of the Pod has run before and is between restarts."""
    for _, container in _containers(pod):
        if container.name == container_name:
            return (
                bool(container.restart_count)
                and container.last_state is not None
                and (container.last_state.terminated is not None)
            )
    return False


def log_targets(pod: Any, main: str) -> list[tuple[str, bool]]:
    """(container, previous run?) whose logs say why the Pod does not serve: every init
    container that failed (a model download's error is in its log, not TF Serving's), then the
    main container. Between restarts a container's current run has no log yet: its previous
    run's says why."""
    failed = []
    for container in pod.status.init_container_statuses or []:
        state = container.state
        now = state.terminated if state else None
        if (now is not None and now.exit_code != 0) or crash_looping(pod, container.name):
            failed.append((container.name, now is None))
    return [*failed, (main, crash_looping(pod, main))]


def _containers(pod: Any) -> Iterator[tuple[str, Any]]:
    """(kind, V1ContainerStatus): init containers first (they run first), then the others."""
    status = pod.status
    for container in status.init_container_statuses or []:
        yield "init container", container
    for container in status.container_statuses or []:
        yield "container", container
