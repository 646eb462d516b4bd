"""Kubernetes API calls per status read, with and without the watch cache, in the same run.

    eval "$(scripts/test-cluster start /tmp/kube)"
    .venv/bin/python -m benchmarks.kube_api_calls [--serves 1 20] [--reads 50]

Against the real control plane of `scripts/test-cluster` (its kubeconfig from
$MODELSERVE_TEST_KUBECONFIG or $KUBECONFIG) and the tests' stand-in kubelet: N serves are
applied and become AVAILABLE, then the backend's own HTTP requests are counted (a hook on its
urllib3 pool; every request still reaches the API server) over `--reads` status reads, as a GET
list or a `?wait` poll makes them, once with `watch_cache` off (the peer: the backend as it was)
and once on. Counts, not seconds: they do not depend on the machine's load. JSON goes to
benchmarks/results/kube_api_calls.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.kubernetes import KubernetesBackend
from tests.kube.counting import counting
from tests.kube.kubelet import StandInKubelet

RESULTS = Path(__file__).parent / "results"


def _poll(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {seconds:.0f} s")
        time.sleep(0.1)  # polling the cluster with a deadline, not synchronising


def _calls_per_read(
    kubeconfig: str, namespace: str, specs: list[ServeSpec], reads: int, cache: bool
) -> float:
    with tempfile.TemporaryDirectory() as data:
        backend = KubernetesBackend(
            data_dir=data,
            kubeconfig=kubeconfig,
            namespace=namespace,
            instance="bench",
            watch_cache=cache,
        )
        try:

            def all_available() -> bool:
                found = backend.statuses(specs, 10)
                return all(o.state.value == "AVAILABLE" for o in found.values())

            _poll(all_available, 120, "every serve to be AVAILABLE")  # and the cache synced
            with counting(backend._api.api_client()) as calls:
                for _ in range(reads):
                    backend.statuses(specs, 10)
            requests = [c for c in calls.seen if "watch=" not in c[2]]
            return len(requests) / reads
        finally:
            backend.close()


def measure(kubeconfig: str, serves: list[int], reads: int) -> list[dict[str, Any]]:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api)
    rows: list[dict[str, Any]] = []
    for count in serves:
        namespace = f"bench-api-calls-{secrets.token_hex(3)}"
        core.create_namespace({"metadata": {"name": namespace}})
        kubelet = StandInKubelet(api, [namespace]).start()
        try:
            specs = [ServeSpec("simple", v, f"s3://models/simple/{v}") for v in range(1, count + 1)]
            with tempfile.TemporaryDirectory() as data:
                writer = KubernetesBackend(
                    data_dir=data, kubeconfig=kubeconfig, namespace=namespace, instance="bench"
                )
                try:
                    for spec in specs:
                        writer.apply(spec)
                finally:
                    writer.close()
            lists = _calls_per_read(kubeconfig, namespace, specs, reads, cache=False)
            cached = _calls_per_read(kubeconfig, namespace, specs, reads, cache=True)
            rows.append({"serves": count, "lists": lists, "watchCache": cached})
        finally:
            kubelet.stop()
            core.delete_namespace(namespace, _preload_content=False)
    api.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serves", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    kubeconfig = os.environ.get("MODELSERVE_TEST_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if not kubeconfig:
        raise SystemExit('start a cluster first: eval "$(scripts/test-cluster start /tmp/kube)"')
    rows = measure(kubeconfig, args.serves, args.reads)
    print("API calls per status read (GET list, ?wait poll, reconcile), same run")
    print(f"{'serves':>7} {'lists (before)':>15} {'watch cache':>12}")
    for row in rows:
        print(f"{row['serves']:>7} {row['lists']:>15.2f} {row['watchCache']:>12.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kube_api_calls.json").write_text(
        json.dumps({"reads": args.reads, "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
