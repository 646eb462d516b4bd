"""Reading the local model server's status, mapped from TF Serving's `GetModelStatus` answer to an
`Observation` with a reason a user can act on: one call for every model from the built-in server,
one keep-alive call per model name from tensorflow_model_server."""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from typing import Any

from ..tfserving import ALL_STATUSES_PATH
from ..tfserving.model_config import ModelConfig
from .base import Key, Observation, Observed, ServeSpec


def configured(configs: list[ModelConfig]) -> set[Key]:
    """Every (name, version) the config file asks the server to serve: one set per read, so a
    list of 1,000 serves looks each up once instead of scanning the file per serve."""
    return {(c.name, v) for c in configs for v in c.version_policy.versions}


def status_answers(
    connection: http.client.HTTPConnection, names: list[str], deadline: float, all_at_once: bool
) -> dict[str, Any]:
    """Each name's status answer (as `status_call` gives it), all read before `deadline` (a
    `time.monotonic()` reading); a name left out had no time left.

    `all_at_once` (the built-in server) asks once, on ALL_STATUSES_PATH; a server without that
    route (an older one still running) is asked per name.
    """
    if all_at_once:
        answer = get_json(connection, ALL_STATUSES_PATH, deadline - time.monotonic())
        if answer is None or answer == "starting":
            return dict.fromkeys(names, answer)
        models = answer.get("models") if isinstance(answer, dict) else None
        if isinstance(models, dict):
            # A name the server does not list is one it would answer 404 for.
            return {n: _entry(models[n]) if n in models else 404 for n in names}
    found: dict[str, Any] = {}
    for name in names:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        found[name] = status_call(connection, name, remaining)
    return found


def _entry(entry: Any) -> Any:
    """A status answer of the shape GetModelStatus has, or 500: a malformed one is a server
    fault that reads as such for its serves, never an exception that breaks a whole list."""
    versions = entry.get("model_version_status") if isinstance(entry, dict) else None
    if isinstance(versions, list) and all(isinstance(v, dict) for v in versions):
        return entry
    return 500


def status_call(connection: http.client.HTTPConnection, name: str, timeout: float) -> Any:
    """The model server's status of every version of `name`: a JSON body, an HTTP status code
    (int) when it answered with an error, or None when it did not answer in time."""
    answer = get_json(connection, f"/v1/models/{urllib.parse.quote(name, safe='')}", timeout)
    return _entry(answer) if isinstance(answer, (dict, list)) else answer


def get_json(connection: http.client.HTTPConnection, path: str, timeout: float) -> Any:
    """GET `path`: its JSON body, the HTTP status (int) of an error, "starting" when nothing
    listens yet, or None when no answer came within `timeout`."""
    if timeout <= 0:
        return None
    connection.timeout = timeout
    if connection.sock is not None:
        connection.sock.settimeout(timeout)
    try:
        connection.request("GET", path)
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


def observation(answer: Any, wanted: bool, spec: ServeSpec) -> Observation:
    """What `answer` (from `status_answers`) says of `spec`; `wanted`: the config serves it."""
    if answer is None:
        return Observation(Observed.UNKNOWN, "the model server does not answer")
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
