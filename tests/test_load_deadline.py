"""A serve that overruns its load deadline is FAILED with what was last seen."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SEED_BODY, Api, server_config


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    # No time at all to load: every serve overruns its deadline at the first look.
    return server_config(ModelServeApp={"load_timeout": 0.0})


async def test_a_serve_past_its_load_deadline_is_failed_with_what_was_last_seen(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200
    serve = envelope["result"]
    assert serve["state"] == "FAILED"
    assert serve["reason"].startswith("not AVAILABLE after 0 s; last seen: PENDING")
