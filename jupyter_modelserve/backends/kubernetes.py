"""The kubernetes backend: one Deployment of TensorFlow Serving per serve, via the official client.

Objects come from `manifests` (pure) and are written by `kubewrites` (server-side apply that
never takes over somebody else's object); status comes from `kubestatus`, `kubeevents`,
`kubeparts` and `kubeurls` over lists or the watch cache (`kubecache`); settings are
`kubesettings`'. Deletes cascade in the foreground and count as done only once nothing of the
serve is left. Every call blocks: the service runs them off the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, Conflict, ModelServeError
from . import (
    cluster_settings,
    exposure,
    kubeapply,
    kubeevents,
    kubeparts,
    kubeurls,
    kubewrites,
    manifests,
    naming,
)
from .base import Key, Observation, Observed, ServeSpec
from .kubeapi import KubeApi, reason
from .kubecache import KubeCache
from .kubelogs import MAX_LOG_TAIL, bounded_lines
from .kubepods import log_targets
from .kubesettings import KubernetesSettings
from .kubestatus import observe

CONTAINER = "tensorflow-serving"
KINDS = ("ConfigMap", "Deployment", "Service", "Ingress", "NetworkPolicy")
# Logs: the API server stops a read at `limit_bytes` (from the start of the tailed lines), and
# the answer keeps its newest lines within `MAX_LOG_BYTES`; `tail` itself is capped by the
# handler (schemas.MAX_LOG_TAIL, a 400 above it) and clamped here for other callers.
MAX_LOG_BYTES_PER_READ = 1024 * 1024
MAX_LOG_BYTES = 4 * 1024 * 1024


class KubernetesBackend(KubernetesSettings):
    """Deploys TensorFlow Serving to a Kubernetes namespace."""

    name = "kubernetes"
    restarts_lost_serves = False  # objects deleted behind our back are reported, not recreated
    # Objects live on in the cluster when the registry database is lost: a registry created by
    # this process never sweeps them (service.py).
    outlives_registry = True

    def __init__(self, data_dir: str | Path, artifact_root: str | Path = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.artifact_root = str(artifact_root)
        self._kube: KubeApi | None = None
        self._api_lock = threading.Lock()
        self._cache: KubeCache | None = None
        self._cache_lock = threading.Lock()
        self._single_node: dict[str, bool] = {}  # model PVC name -> one node at a time
        self.deployed_since: dict[Key, datetime] = {}  # set by deployed() (the sweep brake)

    # -- Backend protocol --------------------------------------------------------------------

    def validate(self, spec: ServeSpec) -> None:
        manifests.manifests(spec, self.settings)  # InvalidInput names what the cluster lacks

    def url_for(self, spec: ServeSpec) -> str:
        return exposure.predict_url(spec, self.settings)

    def served_version(self, spec: ServeSpec) -> int:
        return spec.version  # the Pod serves the model under its registry version (`storage`)

    def endpoint(self, spec: ServeSpec) -> str:
        return exposure.cluster_endpoint(spec, self.settings)

    def grpc_address(self, spec: ServeSpec) -> str | None:
        return exposure.grpc_address(spec, self.settings)

    def apply(self, spec: ServeSpec) -> None:
        self._apply(spec, self._apply_settings())

    def refresh(self, specs: Sequence[ServeSpec]) -> None:
        """Re-apply the serves whose objects the current settings make differently (the hash
        on their Deployment says so): one list, and no write when nothing changed."""
        if not specs:
            return
        settings = self._apply_settings()
        selector = naming.owner_selector(settings)
        live = {d.metadata.name: d for d in self._listed("Deployment", selector, self._api.timeout)}
        for spec in specs:
            deployment = live.get(naming.object_name(spec, settings))
            if deployment is None or deployment.metadata.deletion_timestamp is not None:
                continue  # gone or going: statuses() reports it, re-creating it is not ours
            # One serve the cluster or the new settings refuse (Conflict, a setting that no
            # longer allows it) must not keep the others on old settings. A refused serve keeps
            # its running objects (tearing down a working serve on a settings change is worse)
            # and is logged once per message, naming what to change.
            try:
                if kubeapply.needs_apply(manifests.manifests(spec, settings), deployment):
                    self._apply(spec, settings)
            except ModelServeError as exc:
                self._refresh_failed(spec, exc)

    def remove(self, spec: ServeSpec) -> None:
        settings = self.settings
        name = naming.object_name(spec, settings)
        for kind in KINDS:
            # Only what this serve made, and only the object read as ours (uid precondition):
            # a same-named object of somebody else's stays, even one made a moment ago.
            kubewrites.delete_owned(self._api, kind, name, spec, settings)

    def statuses(self, specs: Sequence[ServeSpec], timeout: float) -> dict[Key, Observation]:
        """Every serve's state, whatever the number of serves: Deployments, ReplicaSets, Pods
        and Services from the watch cache (else one list each; Services, and Ingresses when
        the settings make them, for serves whose Deployment runs), the other kinds only when a
        Deployment is missing, a few small Event lists for serves that wait or failed, and the
        Ingress/Service status lists when a url is learnt from them."""
        if not specs:
            return {}
        with self._api.within(timeout):  # the whole read, retries included, not each call
            return self._statuses(specs, timeout)

    def _statuses(self, specs: Sequence[ServeSpec], timeout: float) -> dict[Key, Observation]:
        settings = self.settings  # built once: it copies every trait
        selector = naming.owner_selector(settings)
        limit = (min(3.0, timeout), timeout)
        names = {naming.object_name(spec, settings) for spec in specs}
        listed = self._listed("Deployment", selector, limit, names)
        deployments = {d.metadata.name: d for d in listed}
        # The ReplicaSets tell which Pods are current (None: not allowed to list them; then every
        # Pod that is not being deleted counts, as before deploy/rbac.yaml granted it).
        replicasets = self._listed("ReplicaSet", selector, limit)
        pods: dict[tuple[str | None, str | None], list[Any]] = {}
        for pod in self._listed("Pod", selector, limit):
            labels = pod.metadata.labels or {}
            key = (labels.get(naming.LABEL_NAME), labels.get(naming.LABEL_VERSION))
            pods.setdefault(key, []).append(pod)
        leftovers: dict[str, list[str]] | None = None
        found: dict[Key, Observation] = {}
        seen: dict[Key, tuple[Any, list[Any]]] = {}  # serves with a Deployment: for Events
        running: set[Key] = set()  # ... not being deleted: their Service should be there
        for spec in specs:
            key = (spec.name, spec.version)
            name = naming.object_name(spec, settings)
            serve_pods = pods.get((naming.label_value(spec.name), str(spec.version)), [])
            deployment = deployments.get(name)
            if deployment is not None:
                found[key] = observe(deployment, serve_pods, replicasets)
                seen[key] = (deployment, serve_pods)
                if deployment.metadata.deletion_timestamp is None:
                    running.add(key)
                continue
            if leftovers is None:
                leftovers = self._other_objects(selector, limit)
            left = leftovers.get(name, []) + [f"Pod {pod.metadata.name}" for pod in serve_pods]
            if not left:
                found[key] = Observation(
                    Observed.ABSENT, f"no objects named {name} in {settings.namespace}"
                )
            else:
                found[key] = Observation(
                    Observed.PARTIAL,
                    f"Deployment {name} is missing from namespace {settings.namespace} (deleted "
                    f"outside jupyter_modelserve?); left behind: {', '.join(left)}",
                )
        # A running Deployment without its Service (or wanted Ingress): said in the reason.
        found = kubeparts.with_missing_parts(
            lambda kind, names: self._listed(kind, selector, limit, names),
            settings,
            specs,
            found,
            running,
        )
        # Serves that wait or failed: Events name what their Pods' status does not.
        found = kubeevents.explain_all(self._api, found, seen, replicasets, limit)
        return kubeurls.with_urls(self._api, settings, specs, found, limit)  # Ingress/LB

    def deployed(self) -> list[Key]:
        """Serves of this instance only: the owner labels select, and the object's name must
        be the one this instance gives that serve (a copied label set proves nothing)."""
        settings = self.settings
        selector = naming.owner_selector(settings)
        keys: set[Key] = set()
        since: dict[Key, datetime] = {}  # oldest creationTimestamp per serve: the sweep's brake
        for kind in KINDS:
            for obj in self._api.call(f"list {kind}s", self._api.list, kind, selector):
                if obj.metadata.deletion_timestamp is not None:
                    continue
                labels = obj.metadata.labels or {}
                annotations = obj.metadata.annotations or {}
                model = annotations.get(naming.ANNOTATION_MODEL) or labels.get(naming.LABEL_NAME)
                version = labels.get(naming.LABEL_VERSION, "")
                if not (model and version.isdigit()):
                    continue
                spec = ServeSpec(model, int(version), "")
                if obj.metadata.name == naming.object_name(spec, settings) and naming.owned(
                    labels, spec, settings
                ):
                    keys.add((model, int(version)))
                    created = obj.metadata.creation_timestamp
                    key = (model, int(version))
                    if created is not None and (key not in since or created < since[key]):
                        since[key] = created
        self.deployed_since = since  # read by service's sweep brake (sweepbrake.py)
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
        """The last `tail` lines (at most `MAX_LOG_TAIL`) of the serve's Pods' containers,
        each read cut at `MAX_LOG_BYTES_PER_READ`, the whole answer at `MAX_LOG_BYTES`."""
        tail = min(tail, MAX_LOG_TAIL) if tail > 0 else MAX_LOG_TAIL
        lines: list[str] = []
        for pod in self._pods(spec):
            for container, previous in log_targets(pod, CONTAINER):
                lines.extend(self._log(pod.metadata.name, container, previous, tail))
        return bounded_lines(lines[-tail:], MAX_LOG_BYTES)

    def _log(self, pod_name: str, container: str, previous: bool, tail: int) -> list[str]:
        # A failed init container (the model download) is named; TF Serving's are not.
        who = pod_name if container == CONTAINER else f"{pod_name} {container}"
        prefix = f"[{who} previous]" if previous else f"[{who}]"
        try:
            text = self._api.core().read_namespaced_pod_log(
                pod_name,
                self.namespace,
                container=container,
                tail_lines=tail,
                limit_bytes=MAX_LOG_BYTES_PER_READ,
                previous=previous,
                _request_timeout=self._api.timeout,
            )
        except Exception as exc:  # a pod still pulling its image has no log yet: say so
            return [f"{prefix} no log: {reason(exc)}"]
        return [f"{prefix} {line}" for line in (text or "").splitlines()]

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
        if self._kube is not None:
            self._kube.close()

    # -- server-side apply and the watch cache ------------------------------------------------

    def _apply(self, spec: ServeSpec, settings: cluster_settings.ClusterSettings) -> None:
        """Server-side apply of every object, after checking no name is somebody else's."""
        desired = manifests.manifests(spec, settings)
        kubewrites.apply_serve(
            self._api, spec, settings, desired, KINDS,
            lambda live, obj: self._refuse_foreign(live, obj, spec),
        )  # fmt: skip

    def _refresh_failed(self, spec: ServeSpec, exc: ModelServeError) -> None:
        """Log a serve refresh() could not bring to the current settings, once per message."""
        seen = self.__dict__.setdefault("_refresh_logged", set())
        key = (spec.name, spec.version, str(exc))
        if key not in seen:
            if len(seen) >= 1000:  # bounded: forget old messages rather than grow
                seen.clear()
            seen.add(key)
            self.log.warning(
                "modelserve: %s version %s keeps its previous Kubernetes objects: %s",
                spec.name, spec.version, exc,
            )  # fmt: skip

    def _apply_settings(self) -> cluster_settings.ClusterSettings:
        """`settings`, plus what only the cluster knows (is the model PVC single-node?)."""
        return kubeapply.with_cluster_facts(self._api, self.settings, self._single_node)

    def _listed(
        self, kind: str, selector: str, limit: tuple[float, float], want: Collection[str] = ()
    ) -> Any:
        """Objects of `kind` that `selector` selects: from the watch cache when it has them
        synced for that selector and holds every name in `want` (a serve created a moment ago
        may not have reached it yet), else one list call (None when the Role may not list a
        kind the serve can do without: ReplicaSets, Services, Ingresses)."""
        cache = self._watched(selector)
        cached = cache.items(kind) if cache is not None else None
        if cached is not None and set(want) <= {obj.metadata.name for obj in cached}:
            return cached
        allow = () if kind in ("Deployment", "Pod") else (403,)
        return self._api.call(f"list {kind}s", self._api.list, kind, selector, limit, allow=allow)

    def _watched(self, selector: str) -> KubeCache | None:
        if not self.watch_cache:
            return None
        api = self._api
        with self._cache_lock:
            if self._cache is None:
                self._cache = KubeCache(api, selector).start()
            return self._cache if self._cache.selector == selector else None

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
        if not naming.owned(existing.metadata.labels, spec, self.settings):
            raise Conflict(
                f"a {desired['kind']} named {desired['metadata']['name']} already exists in "
                f"namespace {self.namespace} and was not made by jupyter_modelserve for "
                f"{spec.name!r} version {spec.version}; delete or rename it"
            )
