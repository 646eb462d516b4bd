"""The model Pod as TF Serving 2.14.1 and real clusters need it: flags, shutdown, GPUs, placement.

No cluster needed: the manifests are plain dicts. Flags are checked against TF Serving's own
help text (tensorflow_serving/model_servers/main.cc): load retries are one a minute by default
(`--load_retry_interval_micros=60000000`), the file system is polled every second by default.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import kubernetes_validate
import pytest
from traitlets.config import Config

from jupyter_modelserve.backends import manifests
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.cluster_settings import ClusterSettings
from jupyter_modelserve.backends.kubernetes import KubernetesBackend
from jupyter_modelserve.errors import InvalidInput

SPEC = ServeSpec("simple", 1, "gs://bucket/simple/1")
PLAIN = ClusterSettings()
GPU = ClusterSettings(resources={"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "1"})
LOAD_TIMEOUT = 300.0  # c.ModelServe.load_timeout's default
LOAD_RETRY_INTERVAL = 60.0  # TF Serving's default --load_retry_interval_micros, in seconds
GPU_NODES = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
PLACED = replace(
    GPU,
    tolerations=[GPU_NODES],
    node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
    affinity={
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["gpu"]}]}
                ]
            }
        }
    },
    priority_class_name="serving",
    image_pull_secrets=["registry"],
    requests={"cpu": "1"},
)


def pod_spec(settings: ClusterSettings) -> dict[str, Any]:
    spec: dict[str, Any] = manifests.deployment(SPEC, settings)["spec"]["template"]["spec"]
    return spec


def container(settings: ClusterSettings) -> dict[str, Any]:
    [found] = pod_spec(settings)["containers"]
    return dict(found)


def flags(settings: ClusterSettings) -> dict[str, str]:
    args = container(settings)["args"]
    assert all(a.startswith("--") and "=" in a for a in args), args
    return dict(a[2:].split("=", 1) for a in args)


def test_tf_serving_runs_directly_with_its_ports_and_config() -> None:
    # Given a plain serve
    found = container(PLAIN)
    # Then the binary runs itself (the image's bash entrypoint drops SIGTERM), not under bash
    assert found["command"] == ["/usr/bin/tensorflow_model_server"]
    args = flags(PLAIN)
    assert args["port"] == "8500" and args["rest_api_port"] == "8501"
    assert args["model_config_file"] == "/etc/modelserve/models.config"
    # And its PID is not 1, where the kernel drops a SIGTERM that has no handler
    assert pod_spec(PLAIN)["shareProcessNamespace"] is True


def test_the_file_system_is_polled_rarely_but_within_the_load_timeout() -> None:
    # Given TF Serving's default of one poll a second, forever, on every replica
    poll = int(flags(PLAIN)["file_system_poll_wait_seconds"])
    # Then ours is far longer, yet a model that turns up late still loads in time
    assert 30 <= poll <= LOAD_TIMEOUT / 2


def test_a_broken_model_fails_within_the_load_timeout() -> None:
    # Given TF Serving's retries, a minute apart by default
    retries = int(flags(PLAIN)["max_num_load_retries"])
    # Then all of them end well before the serve's load timeout, so the real error is reported
    assert retries >= 0 and retries * LOAD_RETRY_INTERVAL < LOAD_TIMEOUT / 2


@pytest.mark.parametrize(
    ("cpu", "threads"), [("500m", 1), ("1", 1), ("1.5", 2), ("4", 4), ("2500m", 3)]
)
def test_thread_pools_follow_the_cpu_limit(cpu: str, threads: int) -> None:
    # Given a CPU limit
    args = flags(ClusterSettings(resources={"cpu": cpu, "memory": "1Gi"}))
    # Then TF Serving's pools are sized from it, not from the node's CPUs
    assert args["tensorflow_intra_op_parallelism"] == str(threads)
    assert args["tensorflow_inter_op_parallelism"] == str(threads)
    assert args["rest_api_num_threads"] == str(4 * threads)


def test_without_a_cpu_limit_tf_serving_sizes_its_own_pools() -> None:
    args = flags(ClusterSettings(resources={"memory": "1Gi"}, requests={"cpu": "2"}))
    assert not {"tensorflow_intra_op_parallelism", "rest_api_num_threads"} & set(args)


@pytest.mark.parametrize("cpu", ["two", "-1", "1e3", "1Gi"])
def test_a_cpu_limit_that_is_no_quantity_is_refused(cpu: str) -> None:
    with pytest.raises(InvalidInput, match="is not a CPU quantity"):
        manifests.deployment(SPEC, ClusterSettings(resources={"cpu": cpu}))


def test_metrics_are_exported_where_the_annotations_say() -> None:
    # Given a serve's ConfigMap and Pod template
    config = manifests.config_map(SPEC, PLAIN)["data"]
    template = manifests.deployment(SPEC, PLAIN)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    # Then TF Serving reads a monitoring config from the mounted ConfigMap
    assert flags(PLAIN)["monitoring_config_file"] == "/etc/modelserve/monitoring_config.txt"
    text = " ".join(config["monitoring_config.txt"].split())
    assert text == 'prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }'
    # And Prometheus is told to scrape that path on the REST port
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/monitoring/prometheus/metrics"
    assert annotations["prometheus.io/port"] == str(flags(PLAIN)["rest_api_port"])


def test_a_stopping_pod_drains_then_stops_within_its_grace_period() -> None:
    # Given a grace period and a preStop sleep
    settings = ClusterSettings(termination_grace_period_seconds=45, pre_stop_seconds=7)
    # Then the Pod keeps serving for the sleep, and the sleep fits in the grace period
    hook = container(settings)["lifecycle"]["preStop"]["exec"]["command"]
    assert hook == ["/bin/sleep", "7"]
    assert pod_spec(settings)["terminationGracePeriodSeconds"] == 45
    # And an image without /bin/sleep can do without the hook
    assert "lifecycle" not in container(ClusterSettings(pre_stop_seconds=0))


def test_a_gpu_serve_uses_the_gpu_image_and_recreates() -> None:
    # Given resources that ask for a GPU
    deployment = manifests.deployment(SPEC, GPU)
    # Then the image has CUDA, and the old Pod frees the GPU before the new one needs it
    assert container(GPU)["image"] == "tensorflow/serving:2.14.1-gpu"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # And a CPU serve keeps the CPU image and rolling updates
    assert container(PLAIN)["image"] == "tensorflow/serving:2.14.1"
    assert manifests.deployment(SPEC, PLAIN)["spec"]["strategy"]["type"] == "RollingUpdate"
    assert container(replace(GPU, resources={"nvidia.com/gpu": "0"}))["image"].endswith("2.14.1")


@pytest.mark.parametrize(
    ("image", "gpu_image", "expected"),
    [
        ("registry.local:5000/tf/serving:2.14.1", "", "registry.local:5000/tf/serving:2.14.1-gpu"),
        ("tensorflow/serving:2.14.1-gpu", "", "tensorflow/serving:2.14.1-gpu"),
        ("tensorflow/serving@sha256:" + "a" * 64, "mirror/tf-gpu:1", "mirror/tf-gpu:1"),
    ],
)
def test_the_gpu_image_follows_the_cpu_image(image: str, gpu_image: str, expected: str) -> None:
    settings = replace(GPU, image=image, gpu_image=gpu_image)
    assert container(settings)["image"] == expected


@pytest.mark.parametrize(
    "image", ["tensorflow/serving@sha256:" + "a" * 64, "registry.local:5000/tf/serving"]
)
def test_a_gpu_image_that_cannot_be_derived_names_the_setting(image: str) -> None:
    with pytest.raises(InvalidInput, match=r"c\.KubernetesBackend\.gpu_image"):
        manifests.deployment(SPEC, replace(GPU, image=image))


def test_requests_apart_from_limits() -> None:
    # Given limits and a smaller CPU request
    settings = ClusterSettings(resources={"cpu": "2", "memory": "4Gi"}, requests={"cpu": "500m"})
    # Then the request is the smaller one; what requests does not name is requested at its limit
    assert container(settings)["resources"] == {
        "requests": {"cpu": "500m", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "4Gi"},
    }
    # And `resources` alone means what it always meant: requests and limits alike
    alone = container(ClusterSettings(resources={"cpu": "1"}))["resources"]
    assert alone == {"requests": {"cpu": "1"}, "limits": {"cpu": "1"}}
    # And requests alone set no limit
    assert container(ClusterSettings(requests={"memory": "1Gi"}))["resources"] == {
        "requests": {"memory": "1Gi"}
    }
    assert "resources" not in container(PLAIN)


def test_a_gpu_is_requested_through_its_limit_only() -> None:
    with pytest.raises(InvalidInput, match=r"nvidia\.com/gpu is an extended resource"):
        manifests.deployment(SPEC, replace(GPU, requests={"nvidia.com/gpu": "2"}))


def test_placement_settings_reach_the_pod() -> None:
    # Given every placement setting
    found = pod_spec(PLACED)
    # Then each lands in the Pod spec as Kubernetes spells it
    assert found["tolerations"] == [GPU_NODES]
    assert found["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert found["affinity"] == PLACED.affinity
    assert found["priorityClassName"] == "serving"
    assert found["imagePullSecrets"] == [{"name": "registry"}]
    # And none appears when unset
    keys = {"tolerations", "nodeSelector", "affinity", "priorityClassName", "imagePullSecrets"}
    assert not keys & set(pod_spec(PLAIN))


@pytest.mark.parametrize("version", ["1.36.0", "1.37.0"])
def test_every_setting_makes_valid_objects(version: str) -> None:
    for obj in manifests.manifests(SPEC, PLACED):
        kubernetes_validate.validate(obj, version, strict=True)


def test_traits_reach_the_cluster_settings(tmp_path: Any) -> None:
    # Given a backend configured the way a jupyter_server_config.py would
    config = Config()
    config.KubernetesBackend.resources = {"cpu": "2", "nvidia.com/gpu": 1}
    config.KubernetesBackend.requests = {"cpu": "500m"}
    config.KubernetesBackend.gpu_image = "mirror/serving:gpu"
    config.KubernetesBackend.run_as_user = 4242
    config.KubernetesBackend.termination_grace_period_seconds = 50
    config.KubernetesBackend.pre_stop_seconds = 3
    config.KubernetesBackend.tolerations = [GPU_NODES]
    config.KubernetesBackend.node_selector = {"pool": "gpu"}
    config.KubernetesBackend.affinity = PLACED.affinity
    config.KubernetesBackend.priority_class_name = "serving"
    config.KubernetesBackend.image_pull_secrets = ["registry"]
    config.KubernetesBackend.instance = "t"  # no registry here to give its id
    settings = KubernetesBackend(tmp_path, config=config).settings
    # Then each reaches the settings the manifests are made from
    assert settings.resources == {"cpu": "2", "nvidia.com/gpu": "1"}
    assert settings.requests == {"cpu": "500m"}
    assert (settings.gpu_image, settings.run_as_user) == ("mirror/serving:gpu", 4242)
    assert (settings.termination_grace_period_seconds, settings.pre_stop_seconds) == (50, 3)
    assert (settings.tolerations, settings.node_selector) == ([GPU_NODES], {"pool": "gpu"})
    assert (settings.affinity, settings.priority_class_name) == (PLACED.affinity, "serving")
    assert settings.image_pull_secrets == ["registry"]
    assert pod_spec(settings)["securityContext"]["runAsUser"] == 4242


@pytest.mark.parametrize("uid", [0, -1])
def test_a_root_uid_is_refused(uid: int) -> None:
    with pytest.raises(InvalidInput, match="run_as_user"):
        manifests.deployment(SPEC, ClusterSettings(run_as_user=uid))
