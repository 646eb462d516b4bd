"""The Pod side of a serve's Deployment: TF Serving's command line, security and scheduling.

Pure functions of the settings (no cluster needed), split from `manifests` so each reads in one
sitting. Every Pod passes the Pod Security Standards' `restricted` profile; TF Serving's flags
are those of the pinned 2.14.1 (tensorflow_serving/model_servers/main.cc).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .cluster_settings import ClusterSettings

GPU_RESOURCE = "nvidia.com/gpu"
TF_SERVING_BINARY = "/usr/bin/tensorflow_model_server"
MONITORING_FILE = "monitoring_config.txt"
METRICS_PATH = "/monitoring/prometheus/metrics"
TMP_DIR = "/tmp"
TMP_SIZE_LIMIT = "1Gi"  # TF Serving writes little but temporary files; bound what it may
# The model's version folder is pinned, so a poll can only find what the first one found; one
# list a minute instead of TF Serving's default of one a second still picks up a volume that
# became readable late, well within the load timeout.
FILE_SYSTEM_POLL_SECONDS = 60
# A model that fails to load fails at once with its real error: TF Serving then exits, the
# container's termination message carries the cause, and the kubelet's restart back-off is the
# retry (TF Serving's default, 5 retries a minute apart, outlasts the 300 s load timeout).
MAX_NUM_LOAD_RETRIES = 0
MAX_THREADS = 256  # bound what a typo in a CPU limit ("6400" for "6400m") can ask for
_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")


def container_fields(
    settings: ClusterSettings, gpu: bool, config_dir: str, rest_port: int, grpc_port: int
) -> dict[str, Any]:
    """The TF Serving container's image, command line, resources, hook and security."""
    fields: dict[str, Any] = {
        "image": image_for(settings.image, settings.gpu_image, gpu),
        # The binary itself, not the image's bash entrypoint (which never forwards SIGTERM).
        "command": [TF_SERVING_BINARY],
        "args": server_args(config_dir, rest_port, grpc_port, cpu_threads(settings.resources)),
        "securityContext": container_security(),
    }
    wanted = resources(settings.resources, settings.requests)
    if wanted:
        fields["resources"] = wanted
    hook = lifecycle(settings.pre_stop_seconds)
    if hook:
        fields["lifecycle"] = hook
    return fields


def pod_fields(settings: ClusterSettings) -> dict[str, Any]:
    """The Pod spec besides its containers and volumes: security, shutdown, placement."""
    return {
        "securityContext": pod_security(settings.run_as_user),
        # TF Serving never talks to the API server: no token for it to leak.
        "automountServiceAccountToken": False,
        # The pause container is PID 1, so TF Serving gets the default SIGTERM action (exit)
        # instead of the signal being dropped, as the kernel does for a PID 1 without handler.
        "shareProcessNamespace": True,
        "terminationGracePeriodSeconds": settings.termination_grace_period_seconds,
        **scheduling(
            tolerations=settings.tolerations,
            node_selector=settings.node_selector,
            affinity=settings.affinity,
            priority_class_name=settings.priority_class_name,
            image_pull_secrets=settings.image_pull_secrets,
        ),
    }


def monitoring_config() -> str:
    """TF Serving's MonitoringConfig (text proto): Prometheus metrics on the REST port."""
    return f'prometheus_config {{\n  enable: true\n  path: "{METRICS_PATH}"\n}}\n'


def wants_gpu(resources: Mapping[str, str], requests: Mapping[str, str]) -> bool:
    return any(
        str(r.get(GPU_RESOURCE, "0")).strip() not in ("", "0") for r in (resources, requests)
    )


def image_for(image: str, gpu_image: str, gpu: bool) -> str:
    """The CPU image, or its `-gpu` variant when the serve asks for a GPU (the CPU image has no
    CUDA: it would run on the CPU while holding the GPU)."""
    if not gpu:
        return image
    if gpu_image:
        return gpu_image
    name, _, tag = image.rpartition(":")
    if "@" in image or not name or "/" in tag:
        raise InvalidInput(
            f"resources ask for {GPU_RESOURCE}, but the image {image!r} has no tag to add "
            "'-gpu' to: set c.KubernetesBackend.gpu_image"
        )
    return image if tag.endswith("-gpu") else f"{name}:{tag}-gpu"


def cpu_threads(resources: Mapping[str, str]) -> int | None:
    """Whole CPUs of the CPU limit (at least 1), None when there is no CPU limit."""
    quantity = resources.get("cpu")
    if quantity is None:
        return None
    match = _CPU.match(str(quantity).strip())
    if not match:
        raise InvalidInput(
            f"resources: cpu {quantity!r} is not a CPU quantity such as '2', '1.5' or '500m'"
        )
    cores = float(match.group(1)) / (1000 if match.group(2) else 1)
    return min(MAX_THREADS, max(1, math.ceil(cores)))


def server_args(config_dir: str, rest_port: int, grpc_port: int, threads: int | None) -> list[str]:
    args = [
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_config_file={config_dir}/models.config",
        f"--monitoring_config_file={config_dir}/{MONITORING_FILE}",
        f"--file_system_poll_wait_seconds={FILE_SYSTEM_POLL_SECONDS}",
        f"--max_num_load_retries={MAX_NUM_LOAD_RETRIES}",
    ]
    if threads is not None:
        # TF Serving sizes these from the node's CPUs (4 REST threads per CPU), not from the
        # container's limit: on a 64-core node a 1-CPU serve would start hundreds of threads
        # and be throttled.
        args += [
            f"--tensorflow_intra_op_parallelism={threads}",
            f"--tensorflow_inter_op_parallelism={threads}",
            f"--rest_api_num_threads={min(MAX_THREADS, 4 * threads)}",
        ]
    return args


def container_security() -> dict[str, Any]:
    """What `restricted` asks of every container, plus a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(run_as_user: int) -> dict[str, Any]:
    if run_as_user <= 0:
        raise InvalidInput(
            f"c.KubernetesBackend.run_as_user is {run_as_user}: Pods run as a non-root UID (> 0)"
        )
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(limits: Mapping[str, str], requests: Mapping[str, str]) -> dict[str, Any] | None:
    """`resources` are the limits and, unless `requests` says otherwise, the requests too
    (what they always meant); an extended resource such as a GPU must request its limit."""
    if not limits and not requests:
        return None
    wanted = {**limits, **requests}
    for name in wanted:
        if "/" in name and "." in name.split("/", 1)[0] and wanted[name] != limits.get(name):
            raise InvalidInput(
                f"requests: {name} is an extended resource: set it in "
                "c.KubernetesBackend.resources (limits), which requests it too"
            )
    body: dict[str, Any] = {"requests": dict(wanted)}
    if limits:
        body["limits"] = dict(limits)
    return body


def lifecycle(pre_stop_seconds: int) -> dict[str, Any] | None:
    """Keep serving a few seconds after the Pod is marked terminating, while Services and
    ingress controllers stop sending it requests; then TF Serving gets its SIGTERM."""
    if pre_stop_seconds <= 0:
        return None
    return {"preStop": {"exec": {"command": ["/bin/sleep", str(pre_stop_seconds)]}}}


def scheduling(
    *,
    tolerations: list[dict[str, Any]],
    node_selector: Mapping[str, str],
    affinity: Mapping[str, Any],
    priority_class_name: str,
    image_pull_secrets: list[str],
) -> dict[str, Any]:
    """Pod spec fields that place the Pod, only those that are set."""
    found: dict[str, Any] = {}
    if tolerations:
        found["tolerations"] = [dict(t) for t in tolerations]
    if node_selector:
        found["nodeSelector"] = dict(node_selector)
    if affinity:
        found["affinity"] = dict(affinity)
    if priority_class_name:
        found["priorityClassName"] = priority_class_name
    if image_pull_secrets:
        found["imagePullSecrets"] = [{"name": name} for name in image_pull_secrets]
    return found


def metrics_annotations(rest_port: int) -> dict[str, str]:
    """The prometheus.io annotations most Prometheus scrape configs select Pods by."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(rest_port),
        "prometheus.io/path": METRICS_PATH,
    }
