"""The kubernetes backend's settings: every `c.KubernetesBackend.*` trait, and the frozen
`ClusterSettings` value the pure manifest builders read.

Split from `kubernetes.py` so the configuration surface reads in one place; the backend class
inherits it (traitlets loads `c.KubernetesBackend.*` for inherited traits as for its own).
"""

from __future__ import annotations

from traitlets import Bool, Dict, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import ServerFault
from . import cluster_settings, naming


class KubernetesSettings(LoggingConfigurable):
    """What a Jupyter server's admin sets for the kubernetes backend."""

    artifact_root = ""  # the registry's artifact root, given by the backend's constructor
    registry_identity = ""  # the registry's id, the instance when none is configured

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
        help="Secret whose keys become the model download's env for s3:// and gs:// sources "
        "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3_ENDPOINT; "
        "RCLONE_GCS_SERVICE_ACCOUNT_CREDENTIALS for a GCS key); TF Serving never sees it.",
    )
    kubeconfig = Unicode(
        "",
        config=True,
        help="kubeconfig file; default $KUBECONFIG, then ~/.kube/config, then in-cluster config.",
    )
    instance = Unicode(
        "",
        config=True,
        help="Who owns this server's objects: the modelserve/instance label and part of every "
        "object name. Default: the registry's own stored id, so Jupyter servers with their own "
        "registries never touch each other's serves. Any text; made label-safe (hashed when "
        "changed). Set it to keep objects across a recreated registry database.",
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
    # -- where the model comes from, and with which credentials --
    storage_initializer_image = Unicode(
        "rclone/rclone:1.68.2",
        config=True,
        help="Pinned image of the init container that downloads s3:// and gs:// sources before "
        "TF Serving starts (rclone, run with /bin/sh; a mirror of it in a private registry).",
    )
    service_account = Unicode(
        "",
        config=True,
        help="ServiceAccount of the model Pods, carrying bucket access without a Secret "
        "(EKS IRSA, GKE workload identity); empty: the namespace's default.",
    )
    download_size_limit = Unicode(
        "20Gi", config=True, help="sizeLimit of the emptyDir a bucket source is downloaded into."
    )
    # -- how serves are reached --
    ingress_tls_secret = Unicode(
        "",
        config=True,
        help="TLS Secret (tls.crt, tls.key) for ingress_host: the Ingresses terminate TLS and "
        "urls are https.",
    )
    ingress_annotations = Dict(
        {},
        config=True,
        help="Annotations of every Ingress, for the ingress controller (e.g. "
        "{'cert-manager.io/cluster-issuer': 'letsencrypt'}).",
    )
    ingress_path_type = Unicode(
        "Exact",
        config=True,
        help="pathType of the Ingress routes: Exact, or ImplementationSpecific for controllers "
        "that refuse ':' in Exact paths (ingress-nginx with strict path validation).",
    )
    allow_load_balancer = Bool(
        False,
        config=True,
        help="Allow service_type LoadBalancer or NodePort, which expose TF Serving (no "
        "authentication) outside the cluster; refused otherwise.",
    )
    network_policy = Bool(
        False,
        config=True,
        help="A NetworkPolicy per serve: only the Jupyter server's Pods (jupyter_pod_selector) "
        "and the ingress controller's namespace (ingress_namespace_selector) reach the model.",
    )
    jupyter_pod_selector = Dict(
        {}, config=True, help="Labels of the Jupyter server's Pods, for network_policy."
    )
    jupyter_namespace_selector = Dict(
        {},
        config=True,
        help="Labels of the Jupyter server's namespace, when it is not `namespace`.",
    )
    ingress_namespace_selector = Dict(
        {},
        config=True,
        help="Labels of the ingress controller's namespace, e.g. "
        "{'kubernetes.io/metadata.name': 'ingress-nginx'}; empty: no ingress traffic.",
    )

    # -- how the API server is read --
    watch_cache = Bool(
        True,
        config=True,
        help="Read Deployments, ReplicaSets, Pods and Services through watches (needs the "
        "watch verbs of deploy/rbac.yaml) instead of listing them on every status read.",
    )

    def use_registry_identity(self, identity: str) -> None:
        """The registry's stored id: the instance when none is configured (settings.py)."""
        self.registry_identity = identity

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
            instance=self._instance(),
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
            storage_initializer_image=self.storage_initializer_image,
            service_account=self.service_account,
            download_size_limit=self.download_size_limit,
            ingress_tls_secret=self.ingress_tls_secret,
            ingress_annotations={str(k): str(v) for k, v in self.ingress_annotations.items()},
            ingress_path_type=self.ingress_path_type,
            allow_load_balancer=self.allow_load_balancer,
            network_policy=self.network_policy,
            jupyter_pod_selector={str(k): str(v) for k, v in self.jupyter_pod_selector.items()},
            jupyter_namespace_selector={
                str(k): str(v) for k, v in self.jupyter_namespace_selector.items()
            },
            ingress_namespace_selector={
                str(k): str(v) for k, v in self.ingress_namespace_selector.items()
            },
        )

    def _instance(self) -> str:
        """The configured instance, else the registry's id; always a label-safe value."""
        raw = self.instance or self.registry_identity
        if not raw:  # never guess: a shared default is how two servers sweep each other
            raise ServerFault(
                "the kubernetes backend has no instance: set c.KubernetesBackend.instance, or "
                "build it through ModelServeSettings.build_service, which gives it the "
                "registry's id"
            )
        return naming.instance_value(raw)
