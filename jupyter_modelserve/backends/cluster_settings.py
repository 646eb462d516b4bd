"""Every setting of the kubernetes backend, as one frozen value the pure manifest builders read.

`KubernetesBackend`'s traits fill it (`KubernetesBackend.settings`); tests build it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ClusterSettings:
    namespace: str = "default"
    image: str = "tensorflow/serving:2.14.1"
    replicas: int = 1
    resources: dict[str, str] = field(default_factory=dict)
    service_type: str = "ClusterIP"
    ingress_host: str = ""
    ingress_class: str = ""
    model_volume: str = ""
    storage_secret: str = ""
    artifact_root: str = ""
    instance: str = "default"
    progress_deadline_seconds: int = 600
    # Limits; also the requests, except those `requests` names (what `resources` always meant).
    requests: dict[str, str] = field(default_factory=dict)
    gpu_image: str = ""  # empty: `image` with "-gpu" added to its tag
    run_as_user: int = 1000
    termination_grace_period_seconds: int = 30
    pre_stop_seconds: int = 5
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    affinity: dict[str, Any] = field(default_factory=dict)
    priority_class_name: str = ""
    image_pull_secrets: list[str] = field(default_factory=list)
    # Exposure (exposure.py, netpolicy.py).
    ingress_tls_secret: str = ""  # a TLS Secret for ingress_host: the Ingress gets a tls block
    ingress_annotations: dict[str, str] = field(default_factory=dict)
    ingress_path_type: str = "Exact"
    allow_load_balancer: bool = False  # LoadBalancer/NodePort expose TF Serving without auth
    network_policy: bool = False
    jupyter_pod_selector: dict[str, str] = field(default_factory=dict)
    jupyter_namespace_selector: dict[str, str] = field(default_factory=dict)
    ingress_namespace_selector: dict[str, str] = field(default_factory=dict)
    # Storage and credentials: the init container that downloads bucket sources.
    storage_initializer_image: str = "rclone/rclone:1.68.2"
    service_account: str = ""
    download_size_limit: str = "20Gi"
    # The model PVC attaches to one node at a time (ReadWriteOnce, or unknown):
    # a rolling update would start the new Pod beside the old one, stuck on Multi-Attach.
    model_volume_single_node: bool = False
