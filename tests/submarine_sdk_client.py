"""Drive the registry with Apache Submarine's own Python SDK, as a Submarine user would.

Runs inside the SDK's virtual environment (see tests/test_submarine_sdk.py), never in ours:
apache-submarine 0.8.0 pins SQLAlchemy < 2. It imports nothing of this project.

stdin: {"host": "http://127.0.0.1:8888", "token": "...", "calls": [call, ...]} where a call is
  {"api": "RegisteredModelApi" | "ModelVersionApi", "method": "create_model_version",
   "args": [...], "kwargs": {...}, "entity": {"kwarg": "model_version_entity",
   "class": "ModelVersionEntity", "fields": {...}}}     ("entity" optional)
stdout: one JSON list, per call {"ok": true, "value": <the SDK's return, serialised>} or
  {"ok": false, "status": <HTTP status>, "body": <the response body, JSON when it parses>}.
A call {"describe": true} returns the public calls of each API instead: what there is to test.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from submarine.client.api.model_version_api import ModelVersionApi
from submarine.client.api.registered_model_api import RegisteredModelApi
from submarine.client.exceptions import ApiException
from submarine.client.models.model_version_entity import ModelVersionEntity
from submarine.client.models.registered_model_entity import RegisteredModelEntity
from submarine.client.utils.api_utils import get_api_client

APIS = {"RegisteredModelApi": RegisteredModelApi, "ModelVersionApi": ModelVersionApi}
ENTITIES = {
    "RegisteredModelEntity": RegisteredModelEntity,
    "ModelVersionEntity": ModelVersionEntity,
}


def main() -> None:
    plan = json.load(sys.stdin)
    # Submarine's own helper builds the client ("<host>/api"); Jupyter wants its token, which
    # the SDK has no setting for, so it goes in as a default header.
    client = get_api_client(plan["host"])
    client.set_default_header("Authorization", f"token {plan['token']}")
    results = [_call(client, call) for call in plan["calls"]]
    json.dump(results, sys.stdout)


def _call(client: Any, call: dict[str, Any]) -> dict[str, Any]:
    if call.get("describe"):
        return {"ok": True, "value": {name: _calls_of(api) for name, api in APIS.items()}}
    api = APIS[call["api"]](api_client=client)
    kwargs = dict(call.get("kwargs", {}))
    entity = call.get("entity")
    if entity is not None:
        kwargs[entity["kwarg"]] = ENTITIES[entity["class"]](**entity["fields"])
    try:
        value = getattr(api, call["method"])(*call.get("args", []), **kwargs)
    except ApiException as error:
        return {"ok": False, "status": error.status, "body": _parsed(error.body)}
    return {"ok": True, "value": client.sanitize_for_serialization(value)}


def _calls_of(api: type) -> list[str]:
    # Each call comes with a `<call>_with_http_info` twin that does the work: one call, not two.
    names = [n for n in vars(api) if not n.startswith("_") and callable(getattr(api, n))]
    return sorted(n for n in names if not n.endswith("_with_http_info"))


def _parsed(body: Any) -> Any:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return body


if __name__ == "__main__":
    main()
