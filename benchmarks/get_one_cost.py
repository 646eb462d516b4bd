"""What GET one's details (signature, example request, metrics) cost, against a list read.

    .venv/bin/python -m benchmarks.get_one_cost [--requests 300]

A real `jupyter modelserve` serves half_plus_two as `simple` 1. One client reads
`GET /api/v1/serve/simple/1`, which reads saved_model.pb and scrapes the model server's
Prometheus page besides the status, and, interleaved in the same run as the peer,
`GET /api/v1/serve`, which reads the status only. The ratio of the medians is what the details
cost; lists never pay it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.stats import percentile
from jupyter_modelserve.demo import build_half_plus_two
from tests.servers import TOKEN, JupyterProcess

RESULTS = Path(__file__).parent / "results"


def latencies(session: requests.Session, url: str, count: int) -> list[float]:
    """Milliseconds of `count` sequential authenticated GETs, sorted."""
    taken = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(url, headers={"Authorization": f"token {TOKEN}"}, timeout=30)
        taken.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return sorted(taken)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per round")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="modelserve-bench-"))
    model = build_half_plus_two(folder / "model" / "1")
    jupyter = JupyterProcess(folder / "jupyter", {"LocalBackend": {"rest_api_port": 0}})
    jupyter.start()
    try:
        jupyter.call("POST", "/api/v1/model-version", {"name": "simple", "source": str(model)})
        body = {"modelName": "simple", "modelVersion": 1}
        _, envelope = jupyter.call("POST", "/api/v1/serve", body, wait=120)
        assert envelope["result"]["state"] == "AVAILABLE", envelope
        session = requests.Session()
        one: list[float] = []
        listed: list[float] = []
        for _ in range(3):  # interleaved rounds: machine noise hits both alike
            one += latencies(session, f"{jupyter.url}/api/v1/serve/simple/1", args.requests)
            listed += latencies(session, f"{jupyter.url}/api/v1/serve", args.requests)
        one.sort()
        listed.sort()
        result = {
            "get_one_ms": {"p50": percentile(one, 0.5), "p99": percentile(one, 0.99)},
            "get_list_ms": {"p50": percentile(listed, 0.5), "p99": percentile(listed, 0.99)},
        }
        result["p50_ratio"] = result["get_one_ms"]["p50"] / result["get_list_ms"]["p50"]
    finally:
        jupyter.stop_model_server()
        jupyter.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "get_one_cost.json").write_text(json.dumps(result, indent=2))
    print(
        f"GET one (with details) p50 {result['get_one_ms']['p50']:.2f} ms, "
        f"p99 {result['get_one_ms']['p99']:.2f} ms; GET list p50 "
        f"{result['get_list_ms']['p50']:.2f} ms, p99 {result['get_list_ms']['p99']:.2f} ms; "
        f"p50 ratio {result['p50_ratio']:.2f}"
    )


if __name__ == "__main__":
    main()
