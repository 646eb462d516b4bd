"""The kubernetes backend: one Deployment of TensorFlow Serving per serve, via the official client.

Objects come from `manifests` (pure); this module only talks to the API server. Creates adopt
objects we already own and refuse same-named objects we do not; deletes cascade in the
foreground and count as done only once nothing of the serve is left; `sync` removes labelled
objects that no serve wants. Every call blocks: the service runs them off the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from traitlets import Dict, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import BackendUnavailable, Conflict
from . import cluster_settings, exposure, manifests, naming
from .base import Key, Observation, Observed, ServeSpec
from .kubeapi import KubeApi, reason
from .kubepods import crash_looping
from .kubestatus import observe

CONTAINER = "tensorflow-serving"
KINDS = ("ConfigMap", "Deployment", "Service", "Ingress")


class KubernetesBackend(LoggingConfigurable):
    """Deploys TensorFlow Serving to a Kubernetes namespace."""

    name = "kubernetes"
    restarts_lost_serves = False  # objects deleted behind our back are reported, not recreated

    namespace = Unicode("default", config=True, help="Namespace of every object.")
    image = Unicode("tensorflow/serving:2.14.1", config=True, help="TF Serving image (pinned).")
    replicas = Int(1, config=True, help="Pods per serve.")
    resources = Dict(
        {},
        config=True,
        help="Limits of the container, and its requests too except those `requests` sets, e.g. "
        "{'cpu': '1', 'memory': '2Gi', 'nvidia.com/gpu': '1'}. A CPU limit also sizes TF "
        "Serving's thread pools; nvidia.com/gpu selects the GPU image.",
    )
    requests = Dict(
        {},
        config=True,
        help="Requests that differ from `resources`, e.g. {'cpu': '250m'} to request less CPU "
        "than the limit; a GPU is requested through `resources` only.",
    )
    gpu_image = Unicode(
        "",
        config=True,
        help="Image when resources ask for nvidia.com/gpu; default: `image` with '-gpu' added "
        "to its tag (tensorflow/serving:2.14.1-gpu).",
    )
    run_as_user = Int(
        1000,
        config=True,
        help="Non-root UID (and GID) of the model Pods; it must be able to read the model volume.",
    )
    termination_grace_period_seconds = Int(
        30,
        config=True,
        help="Seconds a stopping Pod gets before SIGKILL (preStop sleep included); keep "
        "c.ModelServeApp.delete_timeout above it.",
    )
    pre_stop_seconds = Int(
        5,
        config=True,
        help="Seconds a stopping Pod keeps serving while endpoints drop it (a preStop "
        "/bin/sleep); 0 for images without /bin/sleep.",
    )
    tolerations = List(
        Dict(), config=True, help="Pod tolerations, e.g. for tainted GPU node pools."
    )
    node_selector = Dict({}, config=True, help="Pod nodeSelector, label: value.")
    affinity = Dict({}, config=True, help="Pod affinity (the Kubernetes Affinity object).")
    priority_class_name = Unicode("", config=True, help="Pod priorityClassName.")
    image_pull_secrets = List(
        Unicode(), config=True, help="Names of Secrets to pull the image from a private registry."
    )
    service_type = Unicode("ClusterIP", config=True, help="Type of each serve's Service.")
    ingress_host = Unicode("", config=True, help="Host of an Ingress per serve (none when empty).")
    ingress_class = Unicode("", config=True, help="ingressClassName of those Ingresses.")
    model_volume = Unicode(
        "",
        config=True,
        help="PersistentVolumeClaim holding the artifact root, mounted read-only; needed for "
        "models registered from this machine.",
    )
    storage_secret = Unicode(
        "",
        config=True,
        help="Secret whose keys become the container's env for s3:// and gs:// sources "
        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_ENDPOINT, ...).",
    )
    kubeconfig = Unicode(
        "",
        config=True,
        help="kubeconfig file; default $KUBECONFIG, then ~/.kube/config, then in-cluster config.",
    )
    instance = Unicode(
        "default",
        config=True,
        help="Value of the modelserve/instance label; give each Jupyter server sharing a "
        "namespace its own, so one never removes the other's serves as orphans.",
    )
    request_timeout = Float(
        15.0,
        config=True,
        help="Seconds one Kubernetes API call may take: a cluster that does not answer is an "
        "error (503), not a hang.",
    )
    progress_deadline_seconds = Int(
        600, config=True, help="Deployment progressDeadlineSeconds: then the serve is FAILED."
    )

    def __init__(self, data_dir: str | Path, artifact_root: str | Path = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.artifact_root = str(artifact_root)
        self._kube: KubeApi | None = None
        self._api_lock = threading.Lock()

    @property
    def settings(self) -> cluster_settings.ClusterSettings:
        return cluster_settings.ClusterSettings(
            namespace=self.namespace,
            image=self.image,
            replicas=self.replicas,
            resources={str(k): str(v) for k, v in self.resources.items()},
            service_type=self.service_type,
            ingress_host=self.ingress_host,
            ingress_class=self.ingress_class,
            model_volume=self.model_volume,
            storage_secret=self.storage_secret,
            artifact_root=self.artifact_root,
            instance=self.instance,
            progress_deadline_seconds=self.progress_deadline_seconds,
            requests={str(k): str(v) for k, v in self.requests.items()},
            gpu_image=self.gpu_image,
            run_as_user=self.run_as_user,
            termination_grace_period_seconds=self.termination_grace_period_seconds,
            pre_stop_seconds=self.pre_stop_seconds,
            tolerations=[dict(t) for t in self.tolerations],
            node_selector={str(k): str(v) for k, v in self.node_selector.items()},
            affinity=dict(self.affinity),
            priority_class_name=self.priority_class_name,
            image_pull_secrets=[str(s) for s in self.image_pull_secrets],
        )

    # -- Backend protocol --------------------------------------------------------------------

    def validate(self, spec: ServeSpec) -> None:
        manifests.manifests(spec, self.settings)  # InvalidInput names what the cluster lacks

    def url_for(self, spec: ServeSpec) -> str:
        return exposure.predict_url(spec, self.settings)

    def endpoint(self, spec: ServeSpec) -> str:
        return exposure.cluster_endpoint(spec, self.settings)

    def apply(self, spec: ServeSpec) -> None:
        objects = manifests.manifests(spec, self.settings)
        # Check every name first, so a foreign object stops the create before anything exists.
        existing = {
            obj["kind"]: self._api.read(obj["kind"], obj["metadata"]["name"]) for obj in objects
        }
        for obj in objects:
            self._refuse_foreign(existing[obj["kind"]], obj, spec)
        for obj in objects:
            if existing[obj["kind"]] is None:
                created = self._api.call(
                    f"create {obj['kind']}", self._api.create, obj, allow=(409,)
                )
                if created is not None:
                    continue
                self._refuse_foreign(
                    self._api.read(obj["kind"], obj["metadata"]["name"]), obj, spec
                )
            self._api.call(
                f"update {obj['kind']}", self._api.patch, obj
            )  # adopt: make it as desired

    def refresh(self, specs: Sequence[ServeSpec]) -> None:
        """Settings changes do not reach running serves yet (issue 11, item 6)."""

    def remove(self, spec: ServeSpec) -> None:
        name = naming.object_name(spec)
        ours = naming.labels(spec, self.settings)
        for kind in KINDS:
            existing = self._api.read(kind, name)
            labels = (existing.metadata.labels or {}) if existing is not None else {}
            # Only what this serve made: a same-named object of somebody else's stays.
            if existing is not None and all(labels.get(k) == ours[k] for k in naming.OWNER_KEYS):
                self._api.call(f"delete {kind}", self._api.delete, kind, name, allow=(404,))

    def statuses(self, specs: Sequence[ServeSpec], timeout: float) -> dict[Key, Observation]:
        """Every serve's state from one list of Deployments and one of Pods (two API calls,
        whatever the number of serves; the other kinds only when a Deployment is missing)."""
        if not specs:
            return {}
        selector = naming.owner_selector(self.settings)
        limit = (min(3.0, timeout), timeout)
        deployments = {
            d.metadata.name: d
            for d in self._api.call(
                "list Deployments", self._api.list, "Deployment", selector, limit
            )
        }
        # The ReplicaSets tell which Pods are current (None: not allowed to list them; then every
        # Pod that is not being deleted counts, as before deploy/rbac.yaml granted it).
        replicasets = self._api.call(
            "list ReplicaSets", self._api.list, "ReplicaSet", selector, limit, allow=(403,)
        )
        pods: dict[tuple[str | None, str | None], list[Any]] = {}
        for pod in self._api.call("list pods", self._api.list, "Pod", selector, limit):
            labels = pod.metadata.labels or {}
            key = (labels.get(naming.LABEL_NAME), labels.get(naming.LABEL_VERSION))
            pods.setdefault(key, []).append(pod)
        leftovers: dict[str, list[str]] | None = None
        found: dict[Key, Observation] = {}
        for spec in specs:
            name = naming.object_name(spec)
            serve_pods = pods.get((naming.label_value(spec.name), str(spec.version)), [])
            deployment = deployments.get(name)
            if deployment is not None:
                found[(spec.name, spec.version)] = observe(deployment, serve_pods, replicasets)
                continue
            if leftovers is None:
                leftovers = self._other_objects(selector, limit)
            left = leftovers.get(name, []) + [f"Pod {pod.metadata.name}" for pod in serve_pods]
            if not left:
                found[(spec.name, spec.version)] = Observation(
                    Observed.ABSENT, f"no objects named {name} in {self.namespace}"
                )
            else:
                found[(spec.name, spec.version)] = Observation(
                    Observed.PARTIAL,
                    f"Deployment {name} is missing from namespace {self.namespace} (deleted "
                    f"outside jupyter_modelserve?); left behind: {', '.join(left)}",
                )
        return found

    def deployed(self) -> list[Key]:
        selector = naming.owner_selector(self.settings)
        keys: set[Key] = set()
        for kind in KINDS:
            for obj in self._api.call(f"list {kind}s", self._api.list, kind, selector):
                if obj.metadata.deletion_timestamp is not None:
                    continue
                labels = obj.metadata.labels or {}
                annotations = obj.metadata.annotations or {}
                model = annotations.get(naming.ANNOTATION_MODEL) or labels.get(naming.LABEL_NAME)
                version = labels.get(naming.LABEL_VERSION, "")
                if model and version.isdigit():
                    keys.add((model, int(version)))
        return sorted(keys)

    def needs_attention(self) -> bool:
        return False  # nothing to see without asking the API server: the schedule decides

    def _other_objects(self, selector: str, limit: tuple[float, float]) -> dict[str, list[str]]:
        """{object name: ["ConfigMap x", ...]} for the kinds besides Deployments."""
        found: dict[str, list[str]] = {}
        for kind in ("ConfigMap", "Service", "Ingress"):
            for obj in self._api.call(f"list {kind}s", self._api.list, kind, selector, limit):
                found.setdefault(obj.metadata.name, []).append(kind)
        return found

    def logs(self, spec: ServeSpec, tail: int) -> list[str]:
        pods = self._pods(spec)
        lines: list[str] = []
        for pod in pods:
            pod_name = pod.metadata.name
            # Between restarts the current container has no log yet: its last run's says why.
            previous = crash_looping(pod, CONTAINER)
            try:
                text = self._api.core().read_namespaced_pod_log(
                    pod_name,
                    self.namespace,
                    container=CONTAINER,
                    tail_lines=tail,
                    previous=previous,
                    _request_timeout=self._api.timeout,
                )
            except Exception as exc:  # a pod still pulling its image has no log yet: say so
                lines.append(f"[{pod_name}] no log: {reason(exc)}")
                continue
            prefix = f"[{pod_name} previous]" if previous else f"[{pod_name}]"
            lines.extend(f"{prefix} {line}" for line in (text or "").splitlines())
        return lines[-tail:] if tail else lines

    def close(self) -> None:
        if self._kube is not None:
            self._kube.close()

    # -- API access --------------------------------------------------------------------------

    @property
    def _api(self) -> KubeApi:
        """The API server, connected on first use with the settings of that moment."""
        with self._api_lock:
            if self._kube is None:
                self._kube = KubeApi(self.namespace, self.kubeconfig, self.request_timeout)
            return self._kube

    def _pods(self, spec: ServeSpec) -> list[Any]:
        listed = self._api.call(
            "list pods",
            lambda: self._api.core().list_namespaced_pod(
                self.namespace,
                label_selector=naming.serve_selector(spec, self.settings),
                _request_timeout=self._api.timeout,
            ),
        )
        return list(listed.items)

    def _refuse_foreign(self, existing: Any, desired: dict[str, Any], spec: ServeSpec) -> None:
        if existing is None:
            return
        if existing.metadata.deletion_timestamp is not None:  # adopting it would fail soon
            raise BackendUnavailable(
                f"the {desired['kind']} {desired['metadata']['name']} of a previous serve is "
                f"still being deleted in namespace {self.namespace}; try again in a moment"
            )
        labels = existing.metadata.labels or {}
        ours = naming.labels(spec, self.settings)
        if any(labels.get(key) != ours[key] for key in naming.OWNER_KEYS):
            raise Conflict(
                f"a {desired['kind']} named {desired['metadata']['name']} already exists in "
                f"namespace {self.namespace} and was not made by jupyter_modelserve for "
                f"{spec.name!r} version {spec.version}; delete or rename it"
            )
