"""A stand-in kubelet (and scheduler) for tests against a real API server, in the spirit of KWOK.

The control plane started by ``scripts/test-cluster`` has no scheduler and no kubelet, so Pods
created by the real Deployment and ReplicaSet controllers would stay Pending forever.
:class:`StandInKubelet` registers a Node, binds the Pods of the namespaces it watches to it and
writes the Pod status a kubelet would write, per a policy the test chooses: ready, stuck pulling
the image, crash-looping, unschedulable or still creating. It runs no container.

Pod and node IPs come from 198.51.100.0/24 (TEST-NET-2, RFC 5737: documentation only). Nothing
listens there and nothing must connect there: code under test must not dial pod IPs. The API
server of ``scripts/test-cluster`` refuses to proxy to them, so kubectl-style proxy, logs and
exec calls fail locally instead of sending traffic out.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from kubernetes import utils
from kubernetes.client import (
    ApiClient,
    ApiException,
    CoreV1Api,
    CoreV1Event,
    V1Binding,
    V1DeleteOptions,
    V1Node,
    V1ObjectMeta,
    V1ObjectReference,
    V1Pod,
    V1Preconditions,
)
from kubernetes.watch.watch import iter_resp_lines

from . import kubelet_shapes, model

log = logging.getLogger(__name__)

Behaviour = Literal[
    "ready",
    "pending",
    "err_image_pull",
    "image_pull_backoff",
    "crash_loop",
    "unschedulable",
    "evicted",
    "failed_mount",
    "multi_attach",
]
"""What the stand-in does with a Pod:

- ``ready``: bound, phase Running, every container running and ready.
- ``pending``: bound, containers waiting in ``ContainerCreating`` (a slow image pull).
- ``err_image_pull``: bound, containers waiting in ``ErrImagePull`` (a first pull failed; the
  kubelet backs off, then shows ``ImagePullBackOff``: set the policies in that order).
- ``image_pull_backoff``: bound, containers waiting in ``ImagePullBackOff``.
- ``crash_loop``: bound, phase Running, containers waiting in ``CrashLoopBackOff`` after exiting
  with code 1 (``Outcome(reason="OOMKilled", exit_code=137)`` for the memory limit).
- ``unschedulable``: left unbound, ``PodScheduled`` False with reason ``Unschedulable``. A Pod
  that is already bound stays as it is (a real scheduler cannot unbind either).
- ``evicted``: phase Failed, reason Evicted (node memory pressure); the ReplicaSet replaces it.
- ``failed_mount`` / ``multi_attach``: bound, containers in ``ContainerCreating``, with the
  Warning Event a volume that cannot be mounted (FailedMount) or is attached to another node
  (FailedAttachVolume, "Multi-Attach error") brings.
- ``Outcome("crash_loop", container=<an init container>)``: that init container crash-loops,
  the Pod stays Pending with its app containers in ``PodInitializing``.
"""

BEHAVIOURS: frozenset[str] = (
    frozenset(
        ("ready", "pending", "err_image_pull", "image_pull_backoff", "crash_loop", "unschedulable")
    )
    | kubelet_shapes.SHAPES
)


@dataclass(frozen=True)
class Outcome:
    """A behaviour with details, for a policy that wants more than the defaults."""

    behaviour: Behaviour
    # crash_loop: the last termination message; image_pull_backoff: the waiting message;
    # unschedulable: the scheduler's message. None picks what the real components would say.
    message: str | None = None
    exit_code: int = 1  # crash_loop only
    reason: str = "Error"  # crash_loop only: lastState.terminated.reason ("OOMKilled"...)
    # Only this container (a sidecar, say) behaves so; the Pod's others are ready. None: all.
    container: str | None = None


Policy = Callable[[V1Pod], "Behaviour | Outcome"]


def by_image(
    choices: Mapping[str, Behaviour | Outcome], default: Behaviour | Outcome = "ready"
) -> Policy:
    """A policy choosing by container image: a key matches an image exactly or its repository.

    ``by_image({"tensorflow/serving:2.14.1": "ready", "example/missing": "image_pull_backoff"})``
    """

    def policy(pod: V1Pod) -> Behaviour | Outcome:
        for container in pod.spec.containers if pod.spec else []:
            image = container.image or ""
            repository = image.split("@", 1)[0].rsplit(":", 1)[0] if "/" in image else image
            for key, outcome in choices.items():
                if key in (image, repository):
                    return outcome
        return default

    return policy


def by_label(
    key: str, choices: Mapping[str, Behaviour | Outcome], default: Behaviour | Outcome = "ready"
) -> Policy:
    """A policy choosing by the value of one Pod label."""

    def policy(pod: V1Pod) -> Behaviour | Outcome:
        labels = (pod.metadata.labels if pod.metadata else None) or {}
        value = labels.get(key)
        return choices.get(value, default) if value is not None else default

    return policy


DEFAULT_ALLOCATABLE: Mapping[str, str] = {
    "cpu": "8",
    "memory": "32Gi",
    "pods": "110",
    "ephemeral-storage": "100Gi",
    "nvidia.com/gpu": "1",
}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class StandInKubelet:
    """Plays one Node for the Pods of some namespaces; ``start()``/``stop()`` or a ``with`` block.

    One background thread per namespace watches Pods (a list, then a watch resumed from its
    resourceVersion, re-listed on expiry). Setting :attr:`policy` re-applies it to every Pod at
    once, from the caller's thread. Failures inside the threads land in :attr:`errors` (and the
    log) rather than vanishing, so a fixture can assert there were none.
    """

    def __init__(
        self,
        api_client: ApiClient,
        namespaces: Sequence[str],
        *,
        node_name: str = "standin-node",
        policy: Policy | Behaviour | Outcome = "ready",
        allocatable: Mapping[str, str] | None = None,
        node_labels: Mapping[str, str] | None = None,
        pod_cidr: str = "198.51.100.0/24",
        watch_timeout: int = 30,
        delete_node_on_stop: bool = True,
    ) -> None:
        if not namespaces:
            raise ValueError("StandInKubelet needs at least one namespace to watch")
        self._api = api_client
        self._core = CoreV1Api(api_client)
        self.namespaces = tuple(namespaces)
        self.node_name = node_name
        self.allocatable = dict(allocatable if allocatable is not None else DEFAULT_ALLOCATABLE)
        self.node_labels = {
            "kubernetes.io/hostname": node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            **(node_labels or {}),
        }
        hosts = ipaddress.ip_network(pod_cidr).hosts()
        self.node_ip = str(next(hosts))
        self._pod_ips = [str(ip) for ip in hosts]
        self._watch_timeout = watch_timeout
        self._delete_node_on_stop = delete_node_on_stop
        self._policy: Policy = self._as_policy(policy)

        self.errors: list[BaseException] = []
        self._lock = threading.RLock()  # one Pod handled at a time, whichever thread
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._synced = {ns: threading.Event() for ns in self.namespaces}
        self._responses: set[Any] = set()  # open watch responses, to interrupt them on stop
        self._applied: dict[str, Outcome] = {}  # Pod uid -> the outcome last written
        self._ip_of: dict[str, str] = {}  # Pod uid -> its IP
        self._next_ip = 0
        self._node_created = False
        # False: leave deleted Pods Terminating (a kubelet that has not yet confirmed them).
        self.confirm_deletions = True

    # ------------------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0) -> StandInKubelet:
        """Register the Node, start watching, and return once every namespace is listed."""
        if self._threads:
            raise RuntimeError("StandInKubelet already started")
        self._register_node()
        for namespace in self.namespaces:
            thread = threading.Thread(
                target=self._run, args=(namespace,), name=f"kubelet-{namespace}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        for namespace, synced in self._synced.items():
            if not synced.wait(timeout):
                self.stop()
                raise TimeoutError(
                    f"stand-in kubelet could not list pods in {namespace!r} within {timeout} s"
                    + (f": {self.errors[-1]!r}" if self.errors else "")
                )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the threads (interrupting their watches) and, by default, remove the Node."""
        self._stop.set()
        with self._lock:
            responses = list(self._responses)
        for response in responses:
            _interrupt(response)
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                self.errors.append(RuntimeError(f"{thread.name} did not stop in {timeout} s"))
        if self._delete_node_on_stop and self._node_created:
            try:
                self._core.delete_node(self.node_name, _preload_content=False)
            except ApiException as exc:
                if exc.status != 404:
                    self.errors.append(exc)
            self._node_created = False

    def __enter__(self) -> StandInKubelet:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --------------------------------------------------------------------------------- policy

    @property
    def policy(self) -> Policy:
        return self._policy

    @policy.setter
    def policy(self, policy: Policy | Behaviour | Outcome) -> None:
        self.set_policy(policy)

    def set_policy(self, policy: Policy | Behaviour | Outcome) -> None:
        """Use ``policy`` from now on and re-apply it to the Pods that exist now."""
        with self._lock:
            self._policy = self._as_policy(policy)
        self.resync()

    def resync(self) -> None:
        """Apply the policy to every Pod of the watched namespaces now, in this thread."""
        for namespace in self.namespaces:
            for pod in self._core.list_namespaced_pod(namespace).items:
                self._handle(pod)

    @staticmethod
    def _as_policy(policy: Policy | Behaviour | Outcome) -> Policy:
        if isinstance(policy, str | Outcome):
            fixed = policy
            return lambda _pod: fixed
        return policy

    def _decide(self, pod: V1Pod) -> Outcome | None:
        try:
            chosen = self._policy(pod)
        except Exception as exc:  # a broken policy is the test's bug: report it, skip the Pod
            self._record(exc)
            return None
        outcome = chosen if isinstance(chosen, Outcome) else Outcome(chosen)
        if outcome.behaviour not in BEHAVIOURS:
            self._record(ValueError(f"unknown kubelet behaviour {outcome.behaviour!r}"))
            return None
        return outcome

    # ------------------------------------------------------------------------------- watching

    def _run(self, namespace: str) -> None:
        resource_version: str | None = None
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    pods = self._core.list_namespaced_pod(namespace)
                    for pod in pods.items:
                        self._handle(pod)
                    resource_version = pods.metadata.resource_version if pods.metadata else None
                    self._synced[namespace].set()
                resource_version = self._watch(namespace, resource_version)
            except Exception as exc:
                if self._stop.is_set():
                    break
                self._record(exc)
                resource_version = None  # start over from a fresh list
                # Back off a little before retrying; the event also ends the wait on stop().
                self._stop.wait(0.5)

    def _watch(self, namespace: str, resource_version: str | None) -> str | None:
        """Handle watch events until the server ends the watch; return where to resume."""
        # Raw (unparsed) response: a stream of JSON lines, and a socket stop() can shut down.
        response: Any = self._core.list_namespaced_pod(
            namespace,
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _preload_content=False,
            _request_timeout=(10, self._watch_timeout + 10),
        )
        with self._lock:
            self._responses.add(response)
        try:
            if self._stop.is_set():  # stop() ran before the response was registered
                return resource_version
            for line in iter_resp_lines(response):
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, raw = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if raw.get("code") == 410:  # resourceVersion too old: list again
                        return None
                    raise RuntimeError(f"pod watch in {namespace!r} failed: {raw}")
                resource_version = raw.get("metadata", {}).get("resourceVersion", resource_version)
                if kind == "BOOKMARK":
                    continue
                pod = self._api.deserialize(json.dumps(raw), "V1Pod", "application/json")
                if kind == "DELETED":
                    self._forget(pod)
                else:
                    self._handle(pod)
            return resource_version
        finally:
            with self._lock:
                self._responses.discard(response)
            with contextlib.suppress(Exception):  # shut down by stop(): nothing to give back
                response.release_conn()

    # ---------------------------------------------------------------------------- pod handling

    def _handle(self, pod: V1Pod) -> None:
        with self._lock:
            try:
                self._handle_locked(pod)
            except ApiException as exc:
                # 404: deleted meanwhile; 409: changed meanwhile (the next event brings it back).
                if exc.status not in (404, 409):
                    self._record(exc)

    def _handle_locked(self, pod: V1Pod) -> None:
        meta, spec = pod.metadata, pod.spec
        if meta is None or spec is None or meta.uid is None or meta.name is None:
            return
        if meta.deletion_timestamp is not None:
            # A kubelet confirms a graceful deletion once the containers are gone: here at once.
            if spec.node_name == self.node_name and self.confirm_deletions:
                self._force_delete(pod)
                return
            if spec.node_name != self.node_name:
                return
            # Not confirmed yet: its containers keep running and reporting, by the policy.
        if spec.node_name and spec.node_name != self.node_name:
            return  # another node's Pod
        outcome = self._decide(pod)
        if outcome is None or self._applied.get(meta.uid) == outcome:
            return  # already written: our own status patch comes back as an event
        if not spec.node_name:
            if outcome.behaviour == "unschedulable":
                self._mark_unschedulable(pod, outcome)
                self._applied[meta.uid] = outcome
            else:
                self._bind(pod)  # the binding's own event brings the Pod back, then its status
            return
        if outcome.behaviour == "unschedulable":
            return  # bound already: nothing to take back
        self._write_status(pod, outcome)
        self._applied[meta.uid] = outcome

    def _forget(self, pod: V1Pod) -> None:
        uid = pod.metadata.uid if pod.metadata else None
        with self._lock:
            if uid is not None:
                self._applied.pop(uid, None)
                self._ip_of.pop(uid, None)

    def _bind(self, pod: V1Pod) -> None:
        name, namespace, uid = _identity(pod)
        # Raw response: the client deserialises the server's Status reply as a V1Binding and
        # fails (a ValueError), although the binding succeeded.
        self._core.create_namespaced_pod_binding(
            name,
            namespace,
            V1Binding(
                metadata=V1ObjectMeta(name=name, uid=uid),
                target=V1ObjectReference(api_version="v1", kind="Node", name=self.node_name),
            ),
            _preload_content=False,
        )
        self._event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {self.node_name}",
            component="default-scheduler",
        )

    def _force_delete(self, pod: V1Pod) -> None:
        name, namespace, uid = _identity(pod)
        self._core.delete_namespaced_pod(
            name,
            namespace,
            grace_period_seconds=0,
            # The uid precondition: never delete a newer Pod that reuses the name.
            body=V1DeleteOptions(grace_period_seconds=0, preconditions=V1Preconditions(uid=uid)),
            _preload_content=False,
        )

    def _mark_unschedulable(self, pod: V1Pod, outcome: Outcome) -> None:
        assert pod.metadata is not None
        message = outcome.message or self._scheduler_message(pod)
        condition = _condition(pod, "PodScheduled", "False", "Unschedulable", message)
        self._patch_status(pod, {"phase": "Pending", "conditions": [condition]})
        self._event(pod, "Warning", "FailedScheduling", message, component="default-scheduler")

    def _scheduler_message(self, pod: V1Pod) -> str:
        """What kube-scheduler 1.20 says when this one Node does not fit the Pod."""
        reasons: list[str] = []
        assert pod.spec is not None
        selector = pod.spec.node_selector or {}
        if any(self.node_labels.get(k) != v for k, v in selector.items()):
            reasons.append("1 node(s) didn't match node selector")
        requested: dict[str, Any] = {}
        for container in pod.spec.containers:
            resources = container.resources
            for name, quantity in ((resources.requests or {}) if resources else {}).items():
                requested[name] = requested.get(name, 0) + utils.parse_quantity(quantity)
            for name, quantity in ((resources.limits or {}) if resources else {}).items():
                # Extended resources (GPUs) are requested through limits alone.
                if "/" in name and name not in ((resources.requests or {}) if resources else {}):
                    requested[name] = requested.get(name, 0) + utils.parse_quantity(quantity)
        for name, amount in sorted(requested.items()):
            have = utils.parse_quantity(self.allocatable.get(name, "0"))
            if amount > have:
                reasons.append(f"1 Insufficient {name}")
        if not reasons:
            # Nothing in the spec explains it: say what a cordoned node makes the scheduler say.
            reasons.append(
                "1 node(s) had taint {node.kubernetes.io/unschedulable: }, "
                "that the pod didn't tolerate"
            )
        return f"0/1 nodes are available: {', '.join(reasons)}."

    def _write_status(self, pod: V1Pod, outcome: Outcome) -> None:
        assert pod.metadata is not None and pod.spec is not None and pod.metadata.uid is not None
        now = _now()
        status = pod.status
        previous = (
            {cs.name: cs.restart_count or 0 for cs in (status.container_statuses or [])}
            if status
            else {}
        )
        if outcome.behaviour == "evicted":
            shape = kubelet_shapes.evicted_status(
                pod, outcome.message, self._ip_for(pod.metadata.uid), self.node_ip
            )
            self._patch_status(pod, shape)
            self._event(pod, "Warning", "Evicted", shape["message"])
            return
        containers = list(pod.spec.containers)
        affected = {c.name for c in containers if outcome.container in (None, c.name)}
        pod_ready = outcome.behaviour == "ready" or not affected
        if kubelet_shapes.init_failing(pod, outcome.container):
            affected, pod_ready = set(), False

        statuses: list[dict[str, Any]] = []
        for container in containers:
            behaviour = outcome.behaviour if container.name in affected else "ready"
            statuses.append(
                self._container_status(pod, container, behaviour, outcome, previous, now)
            )
        self._write_pod(pod, outcome, statuses, pod_ready, now)

    def _container_status(
        self,
        pod: V1Pod,
        container: Any,
        behaviour: Behaviour,
        outcome: Outcome,
        previous: Mapping[str, int],
        now: str,
    ) -> dict[str, Any]:
        assert pod.metadata is not None and pod.metadata.uid is not None
        name, uid = pod.metadata.name, pod.metadata.uid
        ready = behaviour == "ready"
        image = container.image or ""
        entry: dict[str, Any] = {
            "name": container.name,
            "image": image,
            "imageID": "",
            "containerID": None,
            "ready": ready,
            "started": ready,
            "restartCount": previous.get(container.name, 0),
            "lastState": {},
        }
        container_id = f"containerd://{_digest(uid, container.name)}"
        image_id = f"docker.io/{image.split('@')[0]}@sha256:{_digest(image)}"
        if behaviour == "ready":
            entry.update(
                state={"running": {"startedAt": now}},
                containerID=container_id,
                imageID=image_id,
            )
        elif behaviour in ("pending", "failed_mount", "multi_attach"):
            entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
        elif behaviour in ("err_image_pull", "image_pull_backoff"):
            waiting = "ErrImagePull" if behaviour == "err_image_pull" else "ImagePullBackOff"
            message = outcome.message or (
                f'Back-off pulling image "{image}"'
                if behaviour == "image_pull_backoff"
                else f'rpc error: code = Unknown desc = failed to pull image "{image}": not found'
            )
            entry["state"] = {"waiting": {"reason": waiting, "message": message}}
        elif behaviour == "crash_loop":
            restarts = entry["restartCount"] + 1
            entry.update(
                restartCount=restarts,
                containerID=container_id,
                imageID=image_id,
                state={
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off 10s restarting failed container="
                        f"{container.name} pod={name}_{pod.metadata.namespace}({uid})",
                    }
                },
                lastState={
                    "terminated": {
                        "exitCode": outcome.exit_code,
                        "reason": outcome.reason,
                        "message": outcome.message
                        or f"container {container.name} exited with code {outcome.exit_code}",
                        "startedAt": now,
                        "finishedAt": now,
                        "containerID": container_id,
                    }
                },
            )
        return entry

    def _write_pod(
        self,
        pod: V1Pod,
        outcome: Outcome,
        statuses: list[dict[str, Any]],
        ready: bool,
        now: str,
    ) -> None:
        assert pod.metadata is not None and pod.spec is not None and pod.metadata.uid is not None
        uid = pod.metadata.uid
        status = pod.status
        behaviour = outcome.behaviour
        containers = list(pod.spec.containers)
        not_ready = ", ".join(c.name for c in containers)
        unready_message = f"containers with unready status: [{not_ready}]"
        conditions = [
            _condition(pod, "Initialized", "True"),
            _condition(pod, "Ready", "True")
            if ready
            else _condition(pod, "Ready", "False", "ContainersNotReady", unready_message),
            _condition(pod, "ContainersReady", "True")
            if ready
            else _condition(pod, "ContainersReady", "False", "ContainersNotReady", unready_message),
            _condition(pod, "PodScheduled", "True"),
        ]
        init_failing = kubelet_shapes.init_failing(pod, outcome.container)
        if init_failing:
            assert outcome.container is not None
            stuck, statuses = kubelet_shapes.initializing(pod, outcome.container)
            conditions = [
                _condition(pod, c["type"], c["status"], c["reason"], c["message"]) for c in stuck
            ] + conditions[1:]
        pod_ip = self._ip_for(uid)
        body: dict[str, Any] = {
            # A crash-looping Pod stays Running: its containers did start once.
            "phase": "Running"
            if behaviour in ("ready", "crash_loop") and not init_failing
            else "Pending",
            "conditions": conditions,
            "hostIP": self.node_ip,
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": (
                status.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
                if status and status.start_time
                else now
            ),
            "containerStatuses": statuses,
        }
        if pod.spec.init_containers:
            body["initContainerStatuses"] = [
                {
                    "name": c.name,
                    "image": c.image or "",
                    "imageID": f"docker.io/{c.image}@sha256:{_digest(c.image or '')}",
                    "containerID": f"containerd://{_digest(uid, c.name)}",
                    "ready": True,
                    "restartCount": 0,
                    "state": {
                        "terminated": {
                            "exitCode": 0,
                            "reason": "Completed",
                            "startedAt": now,
                            "finishedAt": now,
                        }
                    },
                }
                for c in pod.spec.init_containers
            ]
            if init_failing:
                body["initContainerStatuses"] = [
                    self._init_crash(pod, c, outcome, now) if c.name == outcome.container else s
                    for c, s in zip(
                        pod.spec.init_containers, body["initContainerStatuses"], strict=True
                    )
                ]
        self._patch_status(pod, body)

        if behaviour == "image_pull_backoff":
            for container in containers:
                self._event(pod, "Normal", "BackOff", f'Back-off pulling image "{container.image}"')
                self._event(pod, "Warning", "Failed", "Error: ImagePullBackOff")
        elif behaviour == "crash_loop":
            self._event(pod, "Warning", "BackOff", "Back-off restarting failed container")
        elif behaviour in ("failed_mount", "multi_attach"):
            reason, message, component = kubelet_shapes.volume_event(
                pod, behaviour, outcome.message
            )
            self._event(pod, "Warning", reason, message, component=component)
        elif behaviour == "ready":
            for container in containers:
                self._event(pod, "Normal", "Started", f"Started container {container.name}")

    def _init_crash(self, pod: V1Pod, container: Any, outcome: Outcome, now: str) -> dict[str, Any]:
        """A crash-looping init container's status, its restarts counted on from the last."""
        status = pod.status
        previous = (
            {cs.name: cs.restart_count or 0 for cs in (status.init_container_statuses or [])}
            if status
            else {}
        )
        return self._container_status(pod, container, "crash_loop", outcome, previous, now)

    def _patch_status(self, pod: V1Pod, status: dict[str, Any]) -> None:
        name, namespace, _ = _identity(pod)
        self._core.patch_namespaced_pod_status(
            name,
            namespace,
            {"status": status},
            _content_type="application/strategic-merge-patch+json",
            _preload_content=False,
        )

    def _ip_for(self, uid: str) -> str:
        if uid not in self._ip_of:
            self._ip_of[uid] = self._pod_ips[self._next_ip % len(self._pod_ips)]
            self._next_ip += 1
        return self._ip_of[uid]

    def _event(
        self, pod: V1Pod, kind: str, reason: str, message: str, *, component: str = "kubelet"
    ) -> None:
        """Record an Event as the real component would; best effort, as theirs are."""
        pod_name, namespace, uid = _identity(pod)
        now = _now()
        name = f"{pod_name}.{_digest(reason, message, now)[:16]}"
        try:
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": namespace},
                "involvedObject": {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod_name,
                    "namespace": namespace,
                    "uid": uid,
                },
                "type": kind,
                "reason": reason,
                "message": message,
                "source": {"component": component}
                | ({"host": self.node_name} if component == "kubelet" else {}),
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
            self._core.create_namespaced_event(
                namespace, model(CoreV1Event, event), _preload_content=False
            )
        except ApiException as exc:
            log.debug("event %s for %s not recorded: %s", reason, pod_name, exc)

    # ------------------------------------------------------------------------------------ node

    def _node_body(self) -> dict[str, Any]:
        now = _now()

        def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }

        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": dict(self.node_labels)},
            "spec": {},
            "status": {
                "capacity": dict(self.allocatable),
                "allocatable": dict(self.allocatable),
                "addresses": [
                    {"type": "InternalIP", "address": self.node_ip},
                    {"type": "Hostname", "address": self.node_name},
                ],
                "conditions": [
                    condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                    condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                    condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
                    condition("Ready", "True", "KubeletReady", "stand-in kubelet is posting"),
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "osImage": "stand-in",
                    "kernelVersion": "stand-in",
                    "kubeletVersion": "v1.20.2",
                    "kubeProxyVersion": "v1.20.2",
                    "containerRuntimeVersion": "stand-in://0",
                    "machineID": _digest(self.node_name)[:32],
                    "systemUUID": _digest("uuid", self.node_name)[:32],
                    "bootID": _digest("boot", self.node_name)[:32],
                },
            },
        }

    def _register_node(self) -> None:
        body = self._node_body()
        try:
            self._core.create_node(model(V1Node, body), _preload_content=False)
            self._node_created = True
        except ApiException as exc:
            if exc.status != 409:
                raise
            # Left by an earlier run (or shared with another stand-in): take it over.
            self._core.patch_node(
                self.node_name, {"metadata": body["metadata"]}, _preload_content=False
            )
            self._node_created = True
        # The create may drop status (it belongs to the status subresource): set it there too.
        self._core.patch_node_status(
            self.node_name,
            {"status": body["status"]},
            _content_type="application/strategic-merge-patch+json",
            _preload_content=False,
        )

    def _record(self, exc: BaseException) -> None:
        log.warning("stand-in kubelet: %r", exc)
        self.errors.append(exc)


def _condition(
    pod: V1Pod, kind: str, status: str, reason: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """A Pod condition, keeping its lastTransitionTime when the status does not change."""
    since = _now()
    for existing in (pod.status.conditions or []) if pod.status else []:
        if existing.type == kind and existing.status == status and existing.last_transition_time:
            since = existing.last_transition_time.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }


def _identity(pod: V1Pod) -> tuple[str, str, str]:
    """name, namespace, uid: always set on a Pod read from the server."""
    meta = pod.metadata
    if meta is None or not (meta.name and meta.namespace and meta.uid):
        raise ValueError(f"pod without name, namespace or uid: {meta!r}")
    return meta.name, meta.namespace, meta.uid


def _interrupt(response: Any) -> None:
    """Unblock a thread reading a watch response (urllib3 >= 2.3 can shut the socket down)."""
    shutdown = getattr(response, "shutdown", None)
    try:
        if callable(shutdown):
            shutdown()
        else:
            response.close()
    except Exception as exc:  # already closed: nothing left to interrupt
        log.debug("closing a watch: %r", exc)
