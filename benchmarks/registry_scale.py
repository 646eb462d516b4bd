"""Registry lists at scale: 1,000 serve rows and 10,000 versions of one model.

    .venv/bin/python -m benchmarks.registry_scale [--requests 50] [--db sqlite|postgres]

Seeds a fresh registry (SQLite in a temporary folder, or PostgreSQL from $MODELSERVE_BENCH_PG,
e.g. after `source /tmp/pg.env`) with bulk inserts, then times `RegistryStore.list_serves()`
(the page `GET /api/v1/serve?limit=1000` reads) and `list_model_versions(name, limit=1000)` and
the full 10,000, counting the SQL statements each issues. The peer, in the same run and
interleaved, is one raw `SELECT` of the same rows through the same engine: the floor any ORM
list can reach. Printed: p50/p99 ms, statements per list, ours/peer ratio of the p50s.
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

from sqlalchemy import event, insert, text

from jupyter_modelserve.registry import orm
from jupyter_modelserve.registry.store import RegistryStore

RESULTS = Path(__file__).parent / "results"
SERVES = 1000
VERSIONS = 10_000


def seed(store: RegistryStore) -> None:
    """1,000 models with one served version each, and `big` with 10,000 versions."""
    now = datetime.now(timezone.utc)

    def version(name: str, number: int) -> dict[str, Any]:
        return {
            "name": name, "version": number, "id": f"{name}-{number}", "user_id": "bench",
            "experiment_id": "", "model_type": "tensorflow", "current_stage": "None",
            "creation_time": now, "last_updated_time": now, "source": f"/models/{name}/{number}",
        }  # fmt: skip

    names = [f"m{i:04d}" for i in range(SERVES)]
    with store.engine.begin() as db:
        db.execute(insert(orm.RegisteredModel), [{"name": n} for n in [*names, "big"]])
        db.execute(insert(orm.ModelVersion), [version(n, 1) for n in names])
        db.execute(insert(orm.ModelVersion), [version("big", v) for v in range(1, VERSIONS + 1)])
        db.execute(
            insert(orm.ModelVersionTag),
            [{"name": "big", "version": v, "tag": "t"} for v in range(1, VERSIONS + 1, 10)],
        )
        db.execute(
            insert(orm.Serve),
            [
                {"model_name": n, "model_version": 1, "backend": "local", "state": "AVAILABLE",
                 "url": f"http://127.0.0.1:1/v1/models/{n}", "created_at": now,
                 "updated_at": now, "state_since": now}
                for n in names
            ],
        )  # fmt: skip


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


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
    result: dict[str, Any] = {
        key: {
            "p50_ms": percentile(v, 0.5),
            "p99_ms": percentile(v, 0.99),
            "statements": counts[key],
        }
        for key, v in samples.items()
    }
    result["ratios_p50_ours_over_peer"] = {
        case: result[f"{case}_ours"]["p50_ms"] / result[f"{case}_peer"]["p50_ms"] for case in cases
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50, help="timed lists per figure")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    db_url = os.environ["MODELSERVE_BENCH_PG"] if args.db == "postgres" else None
    result = measure(args.requests, db_url)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"registry_scale_{args.db}.json").write_text(json.dumps(result, indent=2))
    for case, ratio in result["ratios_p50_ours_over_peer"].items():
        ours, peer = result[f"{case}_ours"], result[f"{case}_peer"]
        print(
            f"{case:20s} ours p50 {ours['p50_ms']:7.2f} p99 {ours['p99_ms']:7.2f} ms "
            f"({ours['statements']} statements) | raw SELECT p50 {peer['p50_ms']:7.2f} p99 "
            f"{peer['p99_ms']:7.2f} ms | ratio {ratio:5.2f}"
        )


if __name__ == "__main__":
    main()
