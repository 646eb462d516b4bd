"""The built-in model server's predict path, against a bare call of the same signature.

    .venv/bin/python -m benchmarks.predict_path [--requests 2000] [--rounds 5]

Two models (half_plus_two as `simple`; a 784 -> 128 relu -> 10 softmax MLP as `mlp`), at batch
1 and 32, each measured in the same run as its peer, interleaved round by round:

- in process: `Api.handle` for a `:predict` body, against the peer "bare": `json.loads`, the
  loaded signature called on a `tf.constant`, `.numpy().tolist()` and `json.dumps`;
- over HTTP (keep-alive, one client, sequential): our Tornado server (`make_server`) against a
  bare Tornado handler doing the bare work inline, both in this process on 127.0.0.1.

Printed: p50/p99 in ms and ours/peer ratios of the p50s (lower is better). JSON goes to
benchmarks/results/predict_path.json. `measure()` returns the same dict for benchmarks.run.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.stats import percentile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

RESULTS = Path(__file__).parent / "results"
BATCHES = (1, 32)


def build_mlp(export_dir: Path) -> Path:
    """A 784 -> 128 relu -> 10 softmax MLP (input `x` float32 [-1, 784], output `probs`)."""
    import tensorflow as tf

    class Mlp(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            generator = tf.random.Generator.from_seed(0)
            self.w1 = tf.Variable(generator.normal([784, 128]) * 0.05)
            self.b1 = tf.Variable(tf.zeros([128]))
            self.w2 = tf.Variable(generator.normal([128, 10]) * 0.05)
            self.b2 = tf.Variable(tf.zeros([10]))

        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float32, name="x")])
        def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            hidden = tf.nn.relu(x @ self.w1 + self.b1)
            return {"probs": tf.nn.softmax(hidden @ self.w2 + self.b2)}

    module = Mlp()
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.__call__})
    return export_dir


def body(model: str, batch: int) -> bytes:
    row: Any = 1.5 if model == "simple" else [((i * 7) % 255) / 255.0 for i in range(784)]
    return json.dumps({"instances": [row] * batch}).encode()


def timed(call: Callable[[], Any], count: int) -> list[float]:
    """Milliseconds of `count` sequential calls."""
    taken = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        taken.append((time.perf_counter() - started) * 1000)
    return taken


class Bare:
    """The least a JSON predict server must do: the peer of every figure here."""

    def __init__(self, function: Any) -> None:
        import tensorflow as tf

        self.tf = tf
        self.function = function
        (self.input,) = function.structured_input_signature[1]

    def answer(self, payload: bytes) -> bytes:
        request = json.loads(payload)
        outputs = self.function(**{self.input: self.tf.constant(request["instances"])})
        (value,) = outputs.values()
        return json.dumps({"predictions": value.numpy().tolist()}).encode()


def _start_servers(api: Any, bares: dict[str, Bare]) -> tuple[int, int, Callable[[], None]]:
    """Our server and the bare one on a background IOLoop; (our port, bare port, stop)."""
    import tornado.httpserver
    import tornado.netutil
    import tornado.web

    from jupyter_modelserve.modelserver.http import make_server

    class BareHandler(tornado.web.RequestHandler):
        def post(self, name: str) -> None:
            self.set_header("Content-Type", "application/json")
            self.finish(bares[name].answer(self.request.body))

    ports: list[int] = []
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            ours = make_server(api.manager)
            our_sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
            ours.add_sockets(our_sockets)
            bare_app = tornado.web.Application([(r"/v1/models/([^/:]+):predict", BareHandler)])
            bare_sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
            bare = tornado.httpserver.HTTPServer(bare_app)
            bare.add_sockets(bare_sockets)
            ports.extend([our_sockets[0].getsockname()[1], bare_sockets[0].getsockname()[1]])
            holder["stop"] = asyncio.Event()
            holder["loop"] = asyncio.get_running_loop()
            ready.set()
            await holder["stop"].wait()

        asyncio.run(main())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the benchmark servers did not start within 30 s")

    def stop() -> None:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)

    return ports[0], ports[1], stop


def _poster(port: int, path: str, payload: bytes) -> Callable[[], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}

    def post() -> bytes:
        connection.request("POST", path, payload, headers)
        response = connection.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{port}{path}: {response.status} {data[:200]!r}")
        return data

    return post


def measure(requests: int = 2000, rounds: int = 5) -> dict[str, Any]:
    from jupyter_modelserve.demo import build_half_plus_two
    from jupyter_modelserve.modelserver.manager import ModelManager
    from jupyter_modelserve.modelserver.routes import Api
    from jupyter_modelserve.tfserving.model_config import ModelConfig

    folder = Path(tempfile.mkdtemp(prefix="modelserve-predict-bench-"))
    build_half_plus_two(folder / "simple" / "1")
    build_mlp(folder / "mlp" / "1")
    manager = ModelManager()
    manager.apply_config([ModelConfig(n, str(folder / n)) for n in ("simple", "mlp")])
    deadline = time.monotonic() + 120
    servables: dict[str, Any] = {}
    while len(servables) < 2 and time.monotonic() < deadline:
        for name in ("simple", "mlp"):
            try:
                servables[name] = manager.servable(name)
            except Exception:
                time.sleep(0.05)  # a benchmark polling a load, never a test
    api = Api(manager)
    bares = {n: Bare(s.functions["serving_default"]) for n, s in servables.items()}
    our_port, bare_port, stop = _start_servers(api, bares)
    samples: dict[str, list[float]] = {}
    try:
        for _ in range(rounds):  # interleaved: machine noise hits ours and the peer alike
            for name in ("simple", "mlp"):
                for batch in BATCHES:
                    payload = body(name, batch)
                    path = f"/v1/models/{name}:predict"
                    case = f"{name}_b{batch}"
                    bare = bares[name]
                    calls = {
                        f"inproc_ours_{case}": partial(api.handle, "POST", path, payload),
                        f"inproc_bare_{case}": partial(bare.answer, payload),
                        f"http_ours_{case}": _poster(our_port, path, payload),
                        f"http_bare_{case}": _poster(bare_port, path, payload),
                    }
                    for key, call in calls.items():
                        call()  # warm: first call, connection set-up
                        samples.setdefault(key, []).extend(timed(call, requests // rounds))
    finally:
        stop()
        manager.close()
    result: dict[str, Any] = {
        key: {"p50_ms": percentile(v, 0.5), "p99_ms": percentile(v, 0.99)}
        for key, v in samples.items()
    }
    result["ratios_p50_ours_over_bare"] = {
        key.replace("_ours_", "_"): result[key]["p50_ms"]
        / result[key.replace("_ours_", "_bare_")]["p50_ms"]
        for key in samples
        if "_ours_" in key
    }
    result["median_ratio"] = statistics.median(result["ratios_p50_ours_over_bare"].values())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per figure")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args()
    result = measure(args.requests, args.rounds)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predict_path.json").write_text(json.dumps(result, indent=2))
    for key, ratio in result["ratios_p50_ours_over_bare"].items():
        ours = result[key.replace("inproc_", "inproc_ours_").replace("http_", "http_ours_")]
        bare = result[key.replace("inproc_", "inproc_bare_").replace("http_", "http_bare_")]
        print(
            f"{key:18s} ours p50 {ours['p50_ms']:7.3f} p99 {ours['p99_ms']:7.3f} ms | bare p50 "
            f"{bare['p50_ms']:7.3f} p99 {bare['p99_ms']:7.3f} ms | ratio {ratio:5.2f}"
        )


if __name__ == "__main__":
    main()
