"""Two users on one host, as The Littlest JupyterHub runs them: default settings just work.

Both Jupyter servers keep the LocalBackend's defaults (rest_api_port 8501): the first to start a
model server gets 8501 when it is free, the second a free port of its own, which it keeps.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import requests

from jupyter_modelserve.backends.local import LocalBackend

from . import tally
from .conftest import Jupyter, poll, register

DEFAULT_PORT = int(LocalBackend.rest_api_port.default_value)
PREDICT = {"instances": [1.0, 2.0, 5.0]}
PREDICTED = {"predictions": [2.5, 3.0, 4.5]}


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def serve_simple(user: Jupyter, half_plus_two: Path) -> str:
    """Register and serve `simple` 1 for one user; returns its url once it predicts."""
    register(user, "simple", half_plus_two)
    body = {"modelName": "simple", "modelVersion": 1}
    code, envelope = user.request("POST", "/api/v1/serve", body, wait=120)
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    url: str = envelope["result"]["url"]
    assert predicts(url)
    return url


def predicts(url: str) -> bool:
    tally.requests()
    try:
        response = requests.post(url, json=PREDICT, timeout=30)
    except requests.RequestException:  # nothing listens (yet)
        return False
    return response.status_code == 200 and response.json() == PREDICTED


def port_of(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def test_two_users_with_default_settings_both_serve_each_on_a_port_of_their_own(
    make_jupyter: Callable[..., Jupyter], half_plus_two: Path
) -> None:
    # Given two users' Jupyter servers on one host, each with its own data dir and the
    # LocalBackend left at its defaults
    default_was_free = not port_taken(DEFAULT_PORT)
    first = make_jupyter({}, name="alice")
    second = make_jupyter({}, name="bob")
    first.start()
    second.start()

    # When both serve `simple`, one after the other
    first_url = serve_simple(first, half_plus_two)
    second_url = serve_simple(second, half_plus_two)

    # Then each predicts on a port of its own; the first user got the default one if it was free
    assert port_of(first_url) != port_of(second_url)
    if default_was_free:
        assert port_of(first_url) == DEFAULT_PORT
    assert predicts(first_url) and predicts(second_url)
    assert first.model_server_pid() != second.model_server_pid()

    # When the second user's model server crashes (while the first still holds its port)
    crashed = second.model_server_pid()
    assert crashed is not None
    os.kill(crashed, signal.SIGKILL)

    # Then it is started again on the very port it had, so its url stays valid
    def available_again() -> bool:
        code, envelope = second.request("GET", "/api/v1/serve/simple/1")
        assert code == 200, envelope
        return envelope["result"]["state"] == "AVAILABLE"

    poll(available_again, 60, "the second user's serve to be AVAILABLE again")
    assert second.model_server_pid() not in (None, crashed)
    assert poll(lambda: predicts(second_url), 30, "the second user's url to predict again")

    # When the second user stops the model server on purpose and serves again later
    stopped = second.command("stop-server")
    assert stopped.returncode == 0, stopped.stderr
    body = {"modelName": "simple", "modelVersion": 1}
    code, envelope = second.request("POST", "/api/v1/serve", body, wait=120)

    # Then it serves on that same port again, and the first user never noticed
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    assert envelope["result"]["url"] == second_url
    assert predicts(second_url) and predicts(first_url)
    tally.fault(2)  # a crash and a stop, both survived
