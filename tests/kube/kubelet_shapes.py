"""Pod shapes of the stand-in kubelet beyond start/pull/crash: eviction, a failing init
container, a volume that cannot be mounted or attached. What each writes follows what the
v1.20 kubelet and attach/detach controller write (pkg/kubelet/eviction, volumemanager, and
pkg/controller/volume/attachdetach's Multi-Attach event)."""

from __future__ import annotations

from typing import Any

from kubernetes.client import V1Pod

# Behaviours this module shapes (StandInKubelet.BEHAVIOURS includes them).
SHAPES = frozenset(("evicted", "failed_mount", "multi_attach"))


def evicted_status(pod: V1Pod, message: str | None, pod_ip: str, node_ip: str) -> dict[str, Any]:
    """The status of a Pod the kubelet evicted: Failed for good, its containers killed."""
    assert pod.spec is not None
    name = pod.spec.containers[0].name
    said = message or (
        "The node was low on resource: memory. Container "
        f"{name} was using 2Gi, which exceeds its request of 1Gi. "
    )
    return {
        "phase": "Failed",
        "reason": "Evicted",
        "message": said,
        "hostIP": node_ip,
        "podIP": pod_ip,
        "containerStatuses": [
            {
                "name": container.name,
                "image": container.image or "",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 137, "reason": "Error"}},
            }
            for container in pod.spec.containers
        ],
    }


def init_failing(pod: V1Pod, container: str | None) -> bool:
    """Whether the crash-loop the policy asks for is one of the Pod's init containers'."""
    names = {c.name for c in (pod.spec.init_containers or [])} if pod.spec else set()
    return container is not None and container in names


def initializing(pod: V1Pod, failing: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(condition overrides, container statuses) of a Pod stuck behind a failing init
    container: Initialized False, every app container waiting in PodInitializing."""
    assert pod.spec is not None
    message = f"containers with incomplete status: [{failing}]"
    conditions = [
        {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized"}
        | {"message": message}
    ]
    statuses = [
        {
            "name": container.name,
            "image": container.image or "",
            "imageID": "",
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}},
        }
        for container in pod.spec.containers
    ]
    return conditions, statuses


def volume_event(pod: V1Pod, behaviour: str, message: str | None) -> tuple[str, str, str]:
    """(reason, message, component) of the Event a volume that cannot be used brings."""
    assert pod.spec is not None
    volumes = [v.name for v in pod.spec.volumes or []] or ["model"]
    if behaviour == "multi_attach":
        said = message or (
            f'Multi-Attach error for volume "pvc-{volumes[0]}" Volume is already used by '
            "pod(s) other-0"
        )
        return "FailedAttachVolume", said, "attachdetach-controller"
    said = (
        message or f'MountVolume.SetUp failed for volume "{volumes[0]}" : secret "creds" not found'
    )
    return "FailedMount", said, "kubelet"
