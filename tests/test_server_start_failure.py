"""A model server command that cannot start is a clear 503, and no serve is left behind."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SEED_BODY, Api, server_config


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return server_config(LocalBackend={"server_command": ["/nonexistent/model_server"]})


async def test_a_model_server_that_cannot_start_is_a_503_and_leaves_no_serve(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 503 and envelope["status"] == "SERVICE_UNAVAILABLE"
    assert "/nonexistent/model_server" in envelope["message"]
    assert "c.LocalBackend.server_command" in envelope["message"]
    _, listed = await api("GET", "/api/v1/serve")
    assert listed["result"] == []
