"""Serves outlive a Jupyter server restart, and a crashed model server comes back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, crash_model_server, post_json
from .servers import JupyterProcess

PREDICT = {"instances": [1.0, 2.0, 5.0]}


def predicts(url: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = requests.post(url, json=PREDICT, timeout=10)
            if response.status_code == 200:
                return response.json()
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not predict within {timeout} s")


def test_a_serve_outlives_a_restart_of_the_jupyter_server(
    jupyter: JupyterProcess, half_plus_two: Path
) -> None:
    # Given simple 1 served by a real `jupyter modelserve` process
    jupyter.start()
    code, _ = jupyter.call(
        "POST", "/api/v1/model-version", {"name": "simple", "source": str(half_plus_two)}
    )
    assert code == 200
    code, envelope = jupyter.call("POST", "/api/v1/serve", SEED_BODY, wait=60)
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    url = envelope["result"]["url"]
    assert predicts(url) == {"predictions": [2.5, 3.0, 4.5]}

    # When the Jupyter server stops and starts again
    jupyter.stop()
    assert predicts(url) == {"predictions": [2.5, 3.0, 4.5]}  # serving never depended on it
    jupyter.start()

    # Then the serve still reads AVAILABLE at the same url, and predicts
    code, envelope = jupyter.call("GET", "/api/v1/serve/simple/1")
    assert code == 200
    assert envelope["result"]["state"] == "AVAILABLE" and envelope["result"]["url"] == url
    assert predicts(url) == {"predictions": [2.5, 3.0, 4.5]}


async def test_a_crashed_model_server_is_restarted_with_its_models(
    api: Api, simple_registered: dict[str, Any], service: ServeService
) -> None:
    # Given simple 1 AVAILABLE
    _, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert envelope["result"]["state"] == "AVAILABLE", envelope

    # When the model server dies
    # Then reading the serve notices, starts a new server, and the model loads again
    serve = await crash_model_server(api, service)
    status, body = await post_json(serve["url"], PREDICT)
    assert (status, body) == (200, {"predictions": [2.5, 3.0, 4.5]})
