"""Time from POST /api/v1/serve to the first successful prediction, warm and cold.

    .venv/bin/python -m benchmarks.post_to_predict [--runs 5]

Runs a real `jupyter modelserve` in throwaway Jupyter folders and serves half_plus_two as
`simple` 1. "cold": no model server running at POST time; "warm": the model server is running
(another model loaded) and only `simple` 1 is new. The peer, measured in the same run, is bare
TensorFlow doing the least any TF server must do: cold, a new Python process that imports
TensorFlow, loads the SavedModel and predicts once; warm, an already running Python process with
TensorFlow imported that loads the SavedModel and predicts once. Ratios to the peer are what
to compare between machines; absolute seconds are printed too. Medians of --runs runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from tests.servers import JupyterProcess

PREDICT = {"instances": [1.0, 2.0, 5.0]}
EXPECTED = {"predictions": [2.5, 3.0, 4.5]}
RESULTS = Path(__file__).parent / "results"

_PEER_SNIPPET = """
import sys, time
import tensorflow as tf
def once(path):
    model = tf.saved_model.load(path)
    out = model.signatures["serving_default"](x=tf.constant([1.0, 2.0, 5.0]))
    assert [round(float(v), 3) for v in out["y"].numpy()] == [2.5, 3.0, 4.5]
if sys.argv[1] == "cold":
    once(sys.argv[2])
else:
    print("ready", flush=True)
    for line in sys.stdin:
        start = time.perf_counter(); once(line.strip())
        print(time.perf_counter() - start, flush=True)
"""


def first_prediction_after_post(jupyter: JupyterProcess, deadline_s: float = 60) -> float:
    start = time.perf_counter()
    code, envelope = jupyter.call(
        "POST", "/api/v1/serve", {"modelName": "simple", "modelVersion": 1}
    )
    assert code == 200, envelope
    url = envelope["result"]["url"]
    while time.perf_counter() - start < deadline_s:
        try:
            response = requests.post(url, json=PREDICT, timeout=10)
            if response.status_code == 200:
                assert response.json() == EXPECTED
                return time.perf_counter() - start
        except requests.ConnectionError:
            pass
        time.sleep(0.005)  # polling resolution of the measurement, not synchronisation
    raise RuntimeError(f"no prediction within {deadline_s} s")


def peer_cold(model: Path) -> float:
    start = time.perf_counter()
    command = [sys.executable, "-c", _PEER_SNIPPET, "cold", str(model)]
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def build_model(folder: Path) -> Path:
    command = [sys.executable, "-m", "jupyter_modelserve.demo", str(folder)]
    subprocess.run(command, check=True, capture_output=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="modelserve-bench-"))
    model = build_model(root / "models" / "half_plus_two" / "1")
    jupyter = JupyterProcess(root / "jupyter", {"LocalBackend": {"rest_api_port": 0}})
    jupyter.start()
    samples: dict[str, list[float]] = {"cold": [], "warm": [], "peer_cold": [], "peer_warm": []}
    peer = subprocess.Popen(
        [sys.executable, "-c", _PEER_SNIPPET, "warm"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert peer.stdin is not None and peer.stdout is not None
    assert peer.stdout.readline().strip() == "ready"
    try:
        for name in ("simple", "keepwarm"):
            body = {"name": name, "source": str(model)}
            code, body = jupyter.call("POST", "/api/v1/model-version", body)
            assert code == 200, body
        for _ in range(args.runs):
            jupyter.stop_model_server()
            samples["cold"].append(first_prediction_after_post(jupyter))
            jupyter.call("DELETE", "/api/v1/serve", {"modelName": "simple", "modelVersion": 1})

            keepwarm = {"modelName": "keepwarm", "modelVersion": 1}
            code, body = jupyter.call("POST", "/api/v1/serve", keepwarm, wait=60)
            assert body["result"]["state"] == "AVAILABLE", body
            samples["warm"].append(first_prediction_after_post(jupyter))
            for name in ("simple", "keepwarm"):
                jupyter.call("DELETE", "/api/v1/serve", {"modelName": name, "modelVersion": 1})

            samples["peer_cold"].append(peer_cold(model))
            peer.stdin.write(f"{model}\n")
            peer.stdin.flush()
            samples["peer_warm"].append(float(peer.stdout.readline()))
    finally:
        peer.kill()
        jupyter.stop()
        jupyter.stop_model_server()

    medians = {key: statistics.median(values) for key, values in samples.items()}
    report: dict[str, Any] = {
        "runs": args.runs,
        "median_seconds": medians,
        "samples_seconds": samples,
        "ratio_cold_to_peer": medians["cold"] / medians["peer_cold"],
        "ratio_warm_to_peer": medians["warm"] / medians["peer_warm"],
        "targets_seconds": {"warm": 0.5, "cold": 3.0},
    }
    print(f"{'case':<10}{'median s':>10}{'peer s':>10}{'ratio':>8}{'target s':>10}")
    for case in ("warm", "cold"):
        print(
            f"{case:<10}{medians[case]:>10.3f}{medians['peer_' + case]:>10.3f}"
            f"{report['ratio_' + case + '_to_peer']:>8.2f}{report['targets_seconds'][case]:>10.1f}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "post_to_predict.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'post_to_predict.json'}")


if __name__ == "__main__":
    main()
