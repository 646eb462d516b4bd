"""Reading the local model server's status: one keep-alive call per model name, mapped from
TF Serving's `GetModelStatus` answer to an `Observation` with a reason a user can act on."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

from ..tfserving.model_config import ModelConfig
from .base import Observation, Observed, ServeSpec


def serves(configs: list[ModelConfig], spec: ServeSpec) -> bool:
    return any(c.name == spec.name and spec.version in c.version_policy.versions for c in configs)


def status_call(connection: http.client.HTTPConnection, name: str, timeout: float) -> Any:
    """The model server's status of every version of `name`: a JSON body, an HTTP status code
    (int) when it answered with an error, or None when it did not answer in time."""
    connection.timeout = timeout
    if connection.sock is not None:
        connection.sock.settimeout(timeout)
    try:
        connection.request("GET", f"/v1/models/{urllib.parse.quote(name, safe='')}")
        response = connection.getresponse()
        raw = response.read()
    except TimeoutError:
        return None
    except (OSError, http.client.HTTPException):
        connection.close()  # reconnect on the next call
        return "starting"
    if response.status != 200:
        return response.status
    try:
        return json.loads(raw)
    except ValueError:
        return 500


def observation(answer: Any, configs: list[ModelConfig], spec: ServeSpec) -> Observation:
    if answer is None:
        return Observation(Observed.UNKNOWN, "the model server does not answer")
    wanted = serves(configs, spec)
    if answer == "starting":
        return Observation(Observed.STARTING, "the model server is starting")
    if isinstance(answer, int):
        if answer == 404:  # the server has never heard of it (or forgot it)
            if not wanted:
                return Observation(Observed.ABSENT)
            return Observation(Observed.STARTING, "waiting for the model server to load it")
        return Observation(Observed.STARTING, f"model server answered {answer}")
    if not wanted:
        # Gone from the config is not gone from the server: absent once it says so.
        state = _version_state(answer, spec)
        if state in (None, "END"):
            return Observation(Observed.ABSENT)
        return Observation(Observed.STARTING, f"the model server is unloading it ({state})")
    return _observation_from_status(answer, spec)


def _version_state(body: dict[str, Any], spec: ServeSpec) -> str | None:
    for status in body.get("model_version_status", []):
        if str(status.get("version")) == str(spec.version):
            return str(status.get("state"))
    return None


def _observation_from_status(body: dict[str, Any], spec: ServeSpec) -> Observation:
    for status in body.get("model_version_status", []):
        if str(status.get("version")) != str(spec.version):
            continue
        state = status.get("state")
        error = status.get("status", {})
        if state == "AVAILABLE":
            return Observation(Observed.AVAILABLE)
        if state in ("START", "LOADING"):
            return Observation(Observed.LOADING, "the model server is loading it")
        if state == "END" and error.get("error_code", "OK") != "OK":
            return Observation(Observed.FAILED, error.get("error_message") or error["error_code"])
        return Observation(Observed.STARTING, f"model server reports {state}")
    return Observation(Observed.STARTING, "waiting for the model server to load it")
