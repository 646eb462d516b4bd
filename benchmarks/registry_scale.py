"""Registry lists at scale: 1,000 serve rows and 10,000 versions of one model.

    .venv/bin/python -m benchmarks.registry_scale [--requests 50] [--db sqlite|postgres]

Seeds a fresh registry (SQLite in a temporary folder, or PostgreSQL from $MODELSERVE_BENCH_PG,
e.g. after `source /tmp/pg.env`) with bulk inserts, then times, interleaved in one run:
- at the store: `RegistryStore.list_serves()` (the page `GET /api/v1/serve?limit=1000` reads),
  `list_model_versions(name, limit=1000)` and the full 10,000, counting the SQL statements each
  issues; the peer is one raw `SELECT` of the same rows through the same engine, the floor any
  ORM list can reach;
- over HTTP, what a user sees: a real `jupyter modelserve` on that registry answering
  `GET /api/v1/serve?limit=1000` (1,000 rows) and `GET /api/v1/model-version/big?limit=1000`
  (a page of the 10,000 versions; 1,000 is the largest page the API gives), one keep-alive client.
  The target is p99 under 50 ms.
Printed: p50/p99 ms, statements per list, ours/peer ratio of the p50s.
`measure()` returns the dict for benchmarks.run.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, event, insert, text

from benchmarks.load import collector_paused
from benchmarks.stats import percentile
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.local_config import with_version
from jupyter_modelserve.registry import orm
from jupyter_modelserve.registry.store import RegistryStore
from jupyter_modelserve.tfserving.model_config import render_model_config_list
from tests.servers import TOKEN, JupyterProcess

RESULTS = Path(__file__).parent / "results"
SERVES = 1000
VERSIONS = 10_000
FAILED_REASON = "model server: Version folder of the model does not exist"


def seed(store: RegistryStore) -> None:
    """1,000 models with one served version each, and `big` with 10,000 versions.

    The serves are in a steady state a list reads in full without 1,000 TensorFlow loads: their
    folders do not exist, so they are FAILED, and the model server (configured with all 1,000 by
    `write_model_server_config`) answers a failed status for each.
    """
    names = [f"m{i:04d}" for i in range(SERVES)]
    insert_rows(store.engine, names, list(range(1, VERSIONS + 1)), tag_every=10)


def insert_rows(engine: Engine, served: list[str], big_versions: list[int], tag_every: int) -> None:
    """In bulk, in the order given: a model per name in `served` with version 1 and a FAILED
    local serve of it, and the model `big` with `big_versions`, every `tag_every`-th tagged
    (0: none). Shared with tests/test_status_reads_at_scale.py."""
    now = datetime.now(timezone.utc)

    def version(name: str, number: int) -> dict[str, Any]:
        return {
            "name": name, "version": number, "id": f"{name}-{number}", "user_id": "bench",
            "experiment_id": "", "model_type": "tensorflow", "current_stage": "None",
            "creation_time": now, "last_updated_time": now, "source": f"/models/{name}/{number}",
        }  # fmt: skip

    tags = [{"name": "big", "version": v, "tag": "t"} for v in big_versions[:: tag_every or 1]]
    with engine.begin() as db:
        db.execute(insert(orm.RegisteredModel), [{"name": n} for n in [*served, "big"]])
        db.execute(insert(orm.ModelVersion), [version(n, 1) for n in served])
        db.execute(insert(orm.ModelVersion), [version("big", v) for v in big_versions])
        if tag_every:
            db.execute(insert(orm.ModelVersionTag), tags)
        db.execute(
            insert(orm.Serve),
            [
                {"model_name": n, "model_version": 1, "backend": "local", "state": "FAILED",
                 "reason": FAILED_REASON, "url": f"http://127.0.0.1:1/v1/models/{n}",
                 "created_at": now, "updated_at": now, "state_since": now}
                for n in served
            ],
        )  # fmt: skip


def measure(requests: int = 50, db_url: str | None = None) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="modelserve-registry-bench-"))
    store = RegistryStore(db_url or f"sqlite:///{folder / 'registry.db'}")
    seed(store)
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def raw(sql: str) -> Callable[[], int]:
        def read() -> int:
            with store.engine.connect() as db:
                return len(db.execute(text(sql)).all())

        return read

    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any], int]] = {
        "list_serves_1000": (
            lambda: store.list_serves("local", 1000),
            raw(
                "SELECT s.*, v.source FROM serve s LEFT JOIN model_version v ON "
                "v.name = s.model_name AND v.version = s.model_version WHERE s.backend = 'local' "
                "ORDER BY s.model_name, s.model_version LIMIT 1000"
            ),
            SERVES,
        ),
        "list_versions_1000": (
            lambda: store.list_model_versions("big", 1000),
            raw("SELECT * FROM model_version WHERE name = 'big' ORDER BY version LIMIT 1000"),
            1000,
        ),
        "list_versions_10000": (
            lambda: store.list_model_versions("big"),
            raw("SELECT * FROM model_version WHERE name = 'big' ORDER BY version"),
            VERSIONS,
        ),
    }
    samples: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for round_ in range(requests):
        for case, (ours, peer, rows) in cases.items():
            for side, call in (("ours", ours), ("peer", peer)):
                statements.clear()
                started = time.perf_counter()
                got = call()
                samples.setdefault(f"{case}_{side}", []).append(
                    (time.perf_counter() - started) * 1000
                )
                if round_ == 0:
                    assert (len(got) if not isinstance(got, int) else got) == rows, case
                    counts[f"{case}_{side}"] = len(statements)
    store.close()
    samples.update(_over_http(folder, store.engine.url.render_as_string(False), requests))
    result: dict[str, Any] = {
        key: {
            "p50_ms": percentile(v, 0.5),
            "p99_ms": percentile(v, 0.99),
            "statements": counts.get(key),
        }
        for key, v in samples.items()
    }
    result["ratios_p50_ours_over_peer"] = {
        case: result[f"{case}_ours"]["p50_ms"] / result[f"{case}_peer"]["p50_ms"] for case in cases
    }
    return result


def write_model_server_config(jupyter_data: Path) -> None:
    """The local model server's config as the backend leaves it with the seeded serves applied."""
    configs: list[Any] = []
    for i in range(SERVES):
        name = f"m{i:04d}"
        configs = with_version(configs, ServeSpec(name, 1, f"/models/{name}/1"))
    folder = jupyter_data / "modelserve" / "server"
    folder.mkdir(parents=True)
    (folder / "models.config").write_text(render_model_config_list(configs))


HTTP_LISTS = {
    "http_serves_1000": ("/api/v1/serve", SERVES),
    "http_versions_page_1000": ("/api/v1/model-version/big", 1000),
}


def _over_http(folder: Path, db_url: str, requests_: int) -> dict[str, list[float]]:
    """p50/p99 samples of the list routes, from a real Jupyter server on the seeded registry."""
    config = {"ModelServeApp": {"db_url": db_url}, "LocalBackend": {"rest_api_port": 0}}
    jupyter = JupyterProcess(folder / "jupyter", config)
    write_model_server_config(jupyter.root / "data")
    jupyter.start()
    samples: dict[str, list[float]] = {}
    try:
        with requests.Session() as session:
            session.headers["Authorization"] = f"token {TOKEN}"

            def get(path: str) -> list[Any]:
                answer = session.get(f"{jupyter.url}{path}", params={"limit": 1000}, timeout=60)
                assert answer.status_code == 200, answer.text[:500]
                return list(answer.json()["result"])

            for path, rows in HTTP_LISTS.values():  # warm-up, and a check that the rows are all
                assert len(get(path)) == rows, path
            with collector_paused():  # as the load generator: no client-side pauses timed
                for _ in range(requests_):
                    for case, (path, _rows) in HTTP_LISTS.items():
                        started = time.perf_counter()
                        get(path)
                        samples.setdefault(case, []).append((time.perf_counter() - started) * 1000)
    finally:
        jupyter.stop()
        jupyter.stop_model_server()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="timed lists per figure")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    db_url = os.environ["MODELSERVE_BENCH_PG"] if args.db == "postgres" else None
    result = measure(args.requests, db_url)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"registry_scale_{args.db}.json").write_text(json.dumps(result, indent=2))
    for case in HTTP_LISTS:
        print(f"{case:24s} p50 {result[case]['p50_ms']:7.2f} p99 {result[case]['p99_ms']:7.2f} ms")
    for case, ratio in result["ratios_p50_ours_over_peer"].items():
        ours, peer = result[f"{case}_ours"], result[f"{case}_peer"]
        print(
            f"{case:20s} ours p50 {ours['p50_ms']:7.2f} p99 {ours['p99_ms']:7.2f} ms "
            f"({ours['statements']} statements) | raw SELECT p50 {peer['p50_ms']:7.2f} p99 "
            f"{peer['p99_ms']:7.2f} ms | ratio {ratio:5.2f}"
        )


if __name__ == "__main__":
    main()
