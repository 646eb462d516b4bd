"""The floor, measured in the same run: what no TensorFlow HTTP server can beat.

- TensorFlow import + SavedModel load + first call in a fresh process
  (benchmarks.post_to_predict.peer_cold);
- a process with TensorFlow already imported loading the SavedModel and predicting once
  (`load_and_predict_s`, in this process: the floor of a warm POST-to-first-prediction);
- one in-process call of the loaded signature (median over many);
- an echo server with no TensorFlow: aiohttp parsing the same JSON body and answering the
  same shape of JSON, driven by the same load generator as every server.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks.post_to_predict import peer_cold
from tests.servers import free_port

__all__ = ["EchoServer", "load_and_predict_s", "peer_cold", "signature_call_ms"]

_ECHO = """
import json, sys
from aiohttp import web
async def predict(request):
    rows = json.loads(await request.read())["instances"]
    return web.Response(body=json.dumps({"predictions": [2.5] * len(rows)}).encode(),
                        content_type="application/json")
app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_post("/predict", predict)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def signature_call_ms(saved_model: Path, body_rows: list[Any], calls: int = 1000) -> float:
    """Median milliseconds of one call of the loaded `serving_default`, in this process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    function = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    name = next(iter(function.structured_input_signature[1]))
    taken = []
    for _ in range(calls):
        started = time.perf_counter()
        function(**{name: tf.constant(body_rows, dtype=tf.float32)})
        taken.append(time.perf_counter() - started)
    return statistics.median(taken) * 1000


def load_and_predict_s(saved_model: Path) -> float:
    """Seconds to load the SavedModel and predict once, TensorFlow already imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    started = time.perf_counter()
    function = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    name = next(iter(function.structured_input_signature[1]))
    function(**{name: tf.constant([1.0, 2.0, 5.0])})
    return time.perf_counter() - started


class EchoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-c", _ECHO, str(self.port)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.post(self.url, json={"instances": [1.0]}, timeout=5).raise_for_status()
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("echo server did not answer within 30 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/predict"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
