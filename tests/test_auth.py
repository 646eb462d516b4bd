"""Every route sits behind Jupyter's authentication."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import LOCKED_DOWN, server_config
from .contract import Contract

ROUTES = [
    ("GET", "api/v1/serve"),
    ("POST", "api/v1/serve"),
    ("DELETE", "api/v1/serve"),
    ("GET", "api/v1/serve/ping"),
    ("GET", "api/v1/serve/simple/1"),
    ("GET", "api/v1/serve/simple/1/logs"),
    ("GET", "api/v1/registered-model"),
    ("POST", "api/v1/registered-model"),
    ("GET", "api/v1/registered-model/simple"),
    ("POST", "api/v1/model-version"),
    ("GET", "api/v1/model-version/simple/1"),
    ("DELETE", "api/v1/model-version/simple/1"),
    ("GET", "api/v1/modelserve/openapi.json"),
]


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return server_config(ServerApp=LOCKED_DOWN)


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_unauthenticated_calls_are_refused(
    jp_serverapp: Any,
    http_server_client: Any,
    jp_base_url: str,
    contract: Contract,
    method: str,
    path: str,
) -> None:
    body = '{"modelName": "simple", "modelVersion": 1}' if method != "GET" else None
    response = await http_server_client.fetch(
        f"{jp_base_url}{path}",
        method=method,
        body=body,
        # A matching XSRF cookie and header get writes past Jupyter's XSRF guard, so it is our
        # own authentication that has to refuse them.
        headers={"Cookie": "_xsrf=same", "X-XSRFToken": "same"},
        raise_error=False,
        allow_nonstandard_methods=True,
    )
    assert response.code == 403
    envelope = json.loads(response.body)
    assert envelope["status"] == "FORBIDDEN" and envelope["success"] is False
    assert "token" in envelope["message"], envelope["message"]
    contract.check(method, "/" + path, response.code, envelope)


async def test_a_wrong_token_is_refused(jp_fetch: Any) -> None:
    response = await jp_fetch(
        "api", "v1", "serve", headers={"Authorization": "token wrong"}, raise_error=False
    )
    assert response.code == 403
