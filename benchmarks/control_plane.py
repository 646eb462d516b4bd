"""Control-plane figures of the Jupyter server, in the same run as the rest.

- the largest event-loop lag (and p99) of the Jupyter server while 20 serves deploy at once,
  measured as benchmarks.event_loop_lag does (pings on /api/v1/serve/ping), against the same
  pings while idle;
- RSS of the Jupyter server and of the model server with those 20 models loaded;
- p50/p99 of POST (no wait), GET one, GET list and DELETE on /api/v1/serve over those serves.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from benchmarks.event_loop_lag import pings_during
from benchmarks.ours import Ours
from benchmarks.stats import percentile
from tests.servers import TOKEN

DEPLOYS = 20


def _names(count: int) -> list[str]:
    return [f"cp{index:02d}" for index in range(count)]


def register(ours: Ours, model: Path, count: int = DEPLOYS) -> None:
    for name in _names(count):
        ours.register(name, model)


def _deploy_all(ours: Ours, names: list[str]) -> Callable[[], None]:
    def work() -> None:
        with ThreadPoolExecutor(len(names)) as pool:
            results = list(pool.map(ours.serve, names))
        assert all(result["state"] == "AVAILABLE" for result in results)

    return work


def lag_and_memory(ours: Ours, count: int = DEPLOYS) -> dict[str, Any]:
    """Event-loop lag while `count` serves deploy at once; RSS with them loaded."""
    names = _names(count)
    started = time.perf_counter()
    busy = pings_during(ours.jupyter.url, _deploy_all(ours, names))
    span = time.perf_counter() - started
    idle = pings_during(ours.jupyter.url, lambda: time.sleep(span))  # the same span, idle
    busy.sort()
    idle.sort()
    return {
        "deploys": count,
        "deploy_seconds": span,
        "lag_ms": {
            "deploying": {"max": busy[-1] * 1000, "p99": percentile(busy, 0.99) * 1000},
            "idle": {"max": idle[-1] * 1000, "p99": percentile(idle, 0.99) * 1000},
        },
        "rss_bytes_with_loaded": ours.rss_bytes(),
    }


def operation_latencies(ours: Ours, cycles: int, count: int = DEPLOYS) -> dict[str, Any]:
    """p50/p99 (ms) of each control-plane call over `cycles` rounds of `count` serves."""
    url = ours.jupyter.url + "/api/v1/serve"
    session = requests.Session()
    session.headers["Authorization"] = f"token {TOKEN}"
    taken: dict[str, list[float]] = {"POST": [], "GET one": [], "GET list": [], "DELETE": []}

    def timed(kind: str, method: str, address: str, body: Any = None) -> None:
        started = time.perf_counter()
        response = session.request(method, address, json=body, timeout=60)
        taken[kind].append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {address}: {response.status_code} {response.text}")

    names = _names(count)
    for _ in range(cycles):
        for name in names:
            timed("GET one", "GET", f"{url}/{name}/1")
            timed("GET list", "GET", url)
        for name in names:
            timed("DELETE", "DELETE", url, {"modelName": name, "modelVersion": 1})
        for name in names:
            timed("POST", "POST", url, {"modelName": name, "modelVersion": 1})
        _wait_available(session, url, names)
    result: dict[str, Any] = {}
    for kind, values in taken.items():
        values.sort()
        result[kind] = {
            "count": len(values),
            "p50_ms": statistics.median(values) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
        }
    return result


def _wait_available(session: requests.Session, url: str, names: list[str]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        rows = session.get(url, timeout=60).json()["result"]
        rows = rows if isinstance(rows, list) else rows.get("items", [])
        states = {row.get("modelName"): row.get("state") for row in rows}
        if all(states.get(name) == "AVAILABLE" for name in names):
            return
        time.sleep(0.1)  # polling with a deadline
    raise RuntimeError("serves not AVAILABLE again within 300 s")
