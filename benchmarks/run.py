"""Every serving figure, ours and the peers' (mlflow, KServe) interleaved in one run.

    .venv/bin/python -m benchmarks.run            # full: 5 repetitions, both peers
    .venv/bin/python -m benchmarks.run --quick    # smoke: 1 repetition, small counts, no peers

Each repetition: time to first prediction (ours cold and warm, each peer's process start to
its first right answer, the floor's fresh TensorFlow process), then, per model and load case,
every server in turn (the order rotates each repetition) driven by benchmarks.load. After the
repetitions: control plane (event-loop lag while 20 serves deploy at once, RSS with 20 models,
POST/GET/DELETE latencies), registry scale (benchmarks.registry_scale: at the store and over
HTTP) and the in-process floor. Medians over the repetitions go to the table,
benchmarks/results/run.json (every sample too) and run.png. Peers are installed on first use
into their own venvs (benchmarks.peers.install).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import control_plane, registry_scale, report
from benchmarks.floor import EchoServer, load_and_predict_s, peer_cold, signature_call_ms
from benchmarks.load import grpc_load, http_load
from benchmarks.models import build_all, payload
from benchmarks.ours import Ours
from benchmarks.peers.install import PEERS
from benchmarks.peers.servers import PeerServer

CASES = [(1, 1), (32, 1), (1, 8), (1, 32)]  # (batch, concurrent clients)
OURS_BATCHING = "ours --enable_batching"
# TF Serving's batching guide starts from these: batches up to 32 rows, formed while the batch
# threads are busy (no added wait), one thread per core of this 2-CPU class of machine.
BATCHING_PARAMETERS = """max_batch_size { value: 32 }
batch_timeout_micros { value: 0 }
num_batch_threads { value: 2 }
max_enqueued_batches { value: 100 }
"""


def _grpc_request(model: str, batch: int) -> tuple[Any, Any]:
    """TF Serving PredictRequest for `payload(model, batch)` and a check of its answer."""
    import json

    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    rows = json.loads(payload(model, batch).body)["instances"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(rows, dtype=tf.float32))

    def check(answer: Any) -> bool:
        output = next(iter(answer.outputs.values()))
        return bool(output.tensor_shape.dim) and output.tensor_shape.dim[0].size == batch

    return request, check


def _rotate(items: list[Any], by: int) -> list[Any]:
    return items[by % len(items) :] + items[: by % len(items)] if items else items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 rep, small counts, no peers")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None, help="requests per load case")
    parser.add_argument("--peers", default=None, help="comma list of mlflow,kserve ('' none)")
    parser.add_argument("--control-cycles", type=int, default=None)
    parser.add_argument("--name", default="run", help="results file name (without suffix)")
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    requests = args.requests or (60 if args.quick else 1000)
    peer_names = args.peers if args.peers is not None else ("" if args.quick else "mlflow,kserve")
    peer_names_list = [name for name in peer_names.split(",") if name]
    cycles = args.control_cycles or (1 if args.quick else 5)
    started_at = datetime.now(timezone.utc)

    root = Path(tempfile.mkdtemp(prefix="modelserve-run-"))
    models = build_all(root / "models")
    ours = Ours(root, models)
    # The same server with TF Serving's --enable_batching (off by default, as in TF Serving):
    # measured where it can matter, with concurrent clients.
    batching_file = root / "batching.config"
    batching_file.write_text(BATCHING_PARAMETERS)
    ours_batching = Ours(
        root / "batching",
        models,
        {"grpc_port": 0, "enable_batching": True, "batching_parameters_file": str(batching_file)},
    )
    peers = [PeerServer(p, m, path, root) for p in peer_names_list for m, path in models.items()]
    echo = EchoServer()
    ttfp: dict[str, list[float]] = defaultdict(list)
    load: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    memory: dict[str, list[int]] = defaultdict(list)
    ours.start()
    ours_batching.start()
    try:
        for rep in range(reps):
            print(f"repetition {rep + 1}/{reps}", flush=True)
            ttfp["ours cold (POST to first predict)"].append(ours.first_prediction_cold())
            memory["ours model server, 1 model"].append(ours.rss_bytes()["model_server"])
            ttfp["ours warm (POST to first predict)"].append(ours.first_prediction_warm())
            ttfp["floor: fresh TF process"].append(peer_cold(models["simple"]))
            ttfp["floor: load+predict, TF imported"].append(load_and_predict_s(models["simple"]))
            for peer in _rotate(peers, rep):
                peer.stop()
                ready = peer.start(payload(peer.model, 1))
                ttfp[f"{peer.peer} {peer.model} (start to first predict)"].append(ready)
            for peer in peers:
                memory[f"{peer.peer} {peer.model} process"].append(peer.rss_bytes())
            served = {name: ours.serve(name) for name in models}
            batched = {name: ours_batching.serve(name) for name in models}
            for model in models:
                for batch, clients in CASES:
                    body = payload(model, batch)
                    count = requests * (2 if clients > 1 else 1)
                    targets: list[tuple[str, str]] = [("ours", served[model]["url"])]
                    targets += [(p.peer, p.predict_url) for p in peers if p.model == model]
                    if clients > 1:
                        targets.append((OURS_BATCHING, batched[model]["url"]))
                    if model == "simple":
                        targets.append(("echo (floor)", echo.url))
                    case = f"{model} b{batch} c{clients} rest"
                    for server, url in _rotate(targets, rep):
                        result = http_load(url, body.body, count, clients, body.check)
                        load[case][server].append(result.to_json())
                    grpc_address = served[model].get("grpcUrl")
                    if grpc_address:
                        request, check = _grpc_request(model, batch)
                        result = grpc_load(grpc_address, request, count, clients, check)
                        load[f"{model} b{batch} c{clients} grpc"]["ours"].append(result.to_json())
            for model in models:
                if model != "simple":
                    ours.delete(model)
        for peer in peers:
            peer.stop()
        print("control plane", flush=True)
        control_plane.register(ours, models["simple"])
        lag = control_plane.lag_and_memory(ours)
        operations = control_plane.operation_latencies(ours, cycles)
    finally:
        for peer in peers:
            peer.stop()
        echo.stop()
        ours.stop()
        ours_batching.stop()
    registry = registry_scale.measure(requests=5 if args.quick else 100)
    floor_ms = {
        "signature call simple b1": signature_call_ms(models["simple"], [1.0]),
        "signature call mlp b1": signature_call_ms(
            models["mlp"], [[((i * 7) % 256) / 255.0 for i in range(784)]]
        ),
    }
    _finish(args, started_at, reps, requests, ttfp, load, memory, lag, operations, registry,
            floor_ms)  # fmt: skip


def _ratios(ttfp: dict[str, list[float]], load: dict[str, Any]) -> dict[str, float]:
    medians = {key: statistics.median(values) for key, values in ttfp.items() if values}
    ratios: dict[str, float] = {}
    warm = medians["ours warm (POST to first predict)"]
    cold = medians["ours cold (POST to first predict)"]
    ratios["ttfp warm / floor (TF imported)"] = warm / medians["floor: load+predict, TF imported"]
    ratios["ttfp cold / floor (fresh TF process)"] = cold / medians["floor: fresh TF process"]
    for peer in PEERS:
        start = medians.get(f"{peer} simple (start to first predict)")
        if start:
            ratios[f"ttfp warm / {peer} start"] = warm / start
            ratios[f"ttfp cold / {peer} start"] = cold / start
    for case, servers in load.items():
        if not case.endswith("rest"):
            continue
        for ours in ("ours", OURS_BATCHING):
            if ours not in servers:
                continue
            ours_p50 = report.median_of(servers[ours], "p50_ms")
            ours_rps = report.median_of(servers[ours], "throughput_rps")
            for peer in PEERS:
                if peer in servers:
                    peer_p50 = report.median_of(servers[peer], "p50_ms")
                    peer_rps = report.median_of(servers[peer], "throughput_rps")
                    ratios[f"{case}: p50 {ours} / {peer}"] = ours_p50 / peer_p50
                    ratios[f"{case}: req/s {ours} / {peer}"] = ours_rps / peer_rps
    return ratios


def _finish(args: argparse.Namespace, started_at: datetime, reps: int, requests: int,
            ttfp: dict[str, list[float]], load: dict[str, Any], memory: dict[str, list[int]],
            lag: dict[str, Any], operations: dict[str, Any], registry: dict[str, Any] | None,
            floor_ms: dict[str, float]) -> None:  # fmt: skip
    ratios = _ratios(ttfp, load)
    lines = report.seconds_table("time to first prediction", ttfp)
    lines += ["", *report.load_table(load), ""]
    lines.append(f"{'memory (RSS, median)':<40}{'MB':>8}")
    lines += [f"  {k:<38}{statistics.median(v) / 2**20:>8.0f}" for k, v in memory.items()]
    loaded = lag["rss_bytes_with_loaded"]
    lines.append(f"  {'ours model server, 20+ models':<38}{loaded['model_server'] / 2**20:>8.0f}")
    lines.append(f"  {'ours Jupyter server':<38}{loaded['jupyter'] / 2**20:>8.0f}")
    lag_ms = lag["lag_ms"]
    lines.append("")
    lines.append(
        f"event-loop lag, {lag['deploys']} deploys at once: max {lag_ms['deploying']['max']:.1f} "
        f"ms, p99 {lag_ms['deploying']['p99']:.1f} ms (idle max {lag_ms['idle']['max']:.1f} ms)"
    )
    lines += [f"  {k:<10} p50 {v['p50_ms']:7.2f} ms  p99 {v['p99_ms']:7.2f} ms  (n={v['count']})"
              for k, v in operations.items()]  # fmt: skip
    lines += ["", "floor, in process:"] + [f"  {k:<28}{v:>8.3f} ms" for k, v in floor_ms.items()]
    lines += ["", "ratios (ours / peer, same run):"]
    lines += [f"  {k:<48}{v:>8.3f}" for k, v in ratios.items()]
    print("\n".join(lines))
    result = {
        "date": started_at.isoformat(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor(),
            "cpus": _cpus(),
        },
        "command": vars(args),
        "repetitions": reps,
        "requests_per_case": requests,
        "peers": {name: version for name, (version, _) in PEERS.items()},
        "time_to_first_prediction_s": dict(ttfp),
        "load": load,
        "memory_rss_bytes": dict(memory),
        "control_plane": {"lag_and_memory": lag, "operations": operations},
        "registry_scale": registry,
        "floor_ms": floor_ms,
        "ratios": ratios,
        "table": lines,
    }
    print(f"wrote {report.write_json(result, args.name)}")
    png = report.plot(load, args.name)
    print(f"wrote {png}" if png else "no plot: matplotlib is not installed (the bench extra)")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"took {time.perf_counter() - started:.0f} s")
