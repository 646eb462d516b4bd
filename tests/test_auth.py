"""Every route sits behind Jupyter's authentication."""

from __future__ import annotations

import json
from typing import Any

import pytest

ROUTES = [
    ("GET", "api/v1/serve"),
    ("POST", "api/v1/serve"),
    ("DELETE", "api/v1/serve"),
    ("GET", "api/v1/serve/ping"),
    ("GET", "api/v1/serve/simple/1"),
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
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_modelserve": True},
            "allow_unauthenticated_access": False,
        },
        "LocalBackend": {"rest_api_port": 0},
    }


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_unauthenticated_calls_are_refused(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, method: str, path: str
) -> None:
    body = '{"modelName": "simple", "modelVersion": 1}' if method != "GET" else None
    response = await http_server_client.fetch(
        f"{jp_base_url}{path}",
        method=method,
        body=body,
        raise_error=False,
        allow_nonstandard_methods=True,
    )
    assert response.code == 403
    envelope = json.loads(response.body)
    assert envelope["status"] == "FORBIDDEN" and envelope["success"] is False
    # GETs are told to send a token; writes are refused earlier by Jupyter's XSRF guard.
    assert "token" in envelope["message"] or "_xsrf" in envelope["message"]


async def test_a_wrong_token_is_refused(jp_fetch: Any) -> None:
    response = await jp_fetch(
        "api", "v1", "serve", headers={"Authorization": "token wrong"}, raise_error=False
    )
    assert response.code == 403
