"""How responsive the Jupyter server stays while serves deploy and delete.

    .venv/bin/python -m benchmarks.event_loop_lag [--cycles 5]

A real `jupyter modelserve` serves half_plus_two. One client pings `GET /api/v1/serve/ping`
back to back while another creates (with ?wait) and deletes serves, a cold model server
included. The peer, in the same run, is the same ping loop against the idle server. If any
database, subprocess or model-server work ran on the event loop, the pings during deploys
would stall for hundreds of milliseconds; the ratio of the p99s shows it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from benchmarks.stats import percentile
from tests.servers import TOKEN, JupyterProcess

RESULTS = Path(__file__).parent / "results"
SIMPLE = {"modelName": "simple", "modelVersion": 1}


def pings_during(url: str, work: Callable[[], None]) -> list[float]:
    """Ping latencies (seconds) measured while `work` runs in another thread."""
    latencies: list[float] = []
    session = requests.Session()
    session.headers["Authorization"] = f"token {TOKEN}"
    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive():
        start = time.perf_counter()
        session.get(f"{url}/api/v1/serve/ping", timeout=30).raise_for_status()
        latencies.append(time.perf_counter() - start)
    worker.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="modelserve-lag-"))
    model = root / "models" / "half_plus_two" / "1"
    subprocess.run(
        [sys.executable, "-m", "jupyter_modelserve.demo", str(model)],
        check=True,
        capture_output=True,
    )
    jupyter = JupyterProcess(root / "jupyter", {"LocalBackend": {"rest_api_port": 0}})
    jupyter.start()
    try:
        code, body = jupyter.call(
            "POST", "/api/v1/model-version", {"name": "simple", "source": str(model)}
        )
        assert code == 200, body

        def deploy_cycles() -> None:
            for cycle in range(args.cycles):
                if cycle == 0:
                    jupyter.stop_model_server()  # the first deploy starts it cold
                code, body = jupyter.call("POST", "/api/v1/serve", SIMPLE, wait=60)
                assert code == 200 and body["result"]["state"] == "AVAILABLE", body
                code, body = jupyter.call("DELETE", "/api/v1/serve", SIMPLE)
                assert code == 200, body

        started = time.perf_counter()
        busy = pings_during(jupyter.url, deploy_cycles)
        busy_seconds = time.perf_counter() - started
        idle = pings_during(jupyter.url, lambda: time.sleep(busy_seconds))  # the same span, idle
    finally:
        jupyter.stop()
        jupyter.stop_model_server()

    report = {
        "cycles": args.cycles,
        "pings": {"deploying": len(busy), "idle": len(idle)},
        "p50_seconds": {"deploying": statistics.median(busy), "idle": statistics.median(idle)},
        "p99_seconds": {"deploying": percentile(busy, 0.99), "idle": percentile(idle, 0.99)},
        "max_seconds": {"deploying": max(busy), "idle": max(idle)},
    }
    report["ratio_p99_deploying_to_idle"] = (
        report["p99_seconds"]["deploying"] / report["p99_seconds"]["idle"]
    )
    print(f"{'':<12}{'pings':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for case in ("idle", "deploying"):
        print(
            f"{case:<12}{report['pings'][case]:>8}"
            f"{report['p50_seconds'][case] * 1000:>10.1f}"
            f"{report['p99_seconds'][case] * 1000:>10.1f}"
            f"{report['max_seconds'][case] * 1000:>10.1f}"
        )
    print(f"p99 ratio deploying/idle: {report['ratio_p99_deploying_to_idle']:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "event_loop_lag.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
