"""The DELETING path: a delete that outlives its timeout, a create meanwhile, a read finishing it.

The backend is slow to confirm in a real way: the model server is SIGSTOPped, so it can neither
unload the model nor answer a status call, until SIGCONT.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, eventually, post_json, server_config
from .servers import model_server_pid

DELETE_TIMEOUT = 0.5


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return server_config(
        ModelServeApp={
            "delete_timeout": DELETE_TIMEOUT,
            # A stopped model server costs each status read this much, not the default 3 s.
            "status_timeout": 0.3,
            # No periodic reconcile: only a read can finish the interrupted delete.
            "reconcile_interval": 0,
        }
    )


@pytest.fixture
def stoppable(service: ServeService) -> Iterator[list[int]]:
    """Pids to SIGCONT at the end, whatever happened: a stopped server cannot be stopped."""
    stopped: list[int] = []
    yield stopped
    for pid in stopped:
        os.kill(pid, signal.SIGCONT)


async def test_a_delete_past_its_timeout_stays_deleting_until_a_read_sees_it_confirmed(
    api: Api, simple_registered: dict[str, Any], service: ServeService, stoppable: list[int]
) -> None:
    # Given simple 1 AVAILABLE, then its model server stopped so it cannot confirm anything
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    url = envelope["result"]["url"]
    pid = model_server_pid(service.backend.dir)  # type: ignore[attr-defined]
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    stoppable.append(pid)

    # When it is deleted
    code, envelope = await api("DELETE", "/api/v1/serve", SEED_BODY)

    # Then past the delete timeout the answer is a 503 saying the serve stays DELETING
    assert code == 503 and envelope["status"] == "SERVICE_UNAVAILABLE", envelope
    assert envelope["message"] == (
        f"model 'simple' version 1 is still being removed after {DELETE_TIMEOUT:.0f} s; "
        "it stays DELETING until the backend confirms"
    )
    # And reads say DELETING, with why it is not done yet
    code, one = await api("GET", "/api/v1/serve/simple/1")
    assert code == 200 and one["result"]["state"] == "DELETING", one
    assert "does not answer" in one["result"]["reason"], one
    _, listed = await api("GET", "/api/v1/serve")
    assert [(s["modelName"], s["state"]) for s in listed["result"]] == [("simple", "DELETING")]
    # And the model server's config no longer asks for it: the removal was handed over
    config = Path(service.backend.config_file).read_text()  # type: ignore[attr-defined]
    assert "'simple'" not in config

    # When it is created again while the delete is not finished
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)

    # Then that is refused with a 503 naming the delete, and the serve stays DELETING
    assert code == 503 and envelope["status"] == "SERVICE_UNAVAILABLE", envelope
    assert envelope["message"] == (
        "model 'simple' version 1 is being deleted; create it again once the delete finished"
    )
    _, one = await api("GET", "/api/v1/serve/simple/1")
    assert one["result"]["state"] == "DELETING", one

    # When the model server runs again (it now unloads the model it was told to drop)
    os.kill(pid, signal.SIGCONT)
    stoppable.remove(pid)

    # Then a later read, with no reconcile running, finishes the delete: the serve is gone
    async def gone() -> bool:
        code, _ = await api("GET", "/api/v1/serve/simple/1")
        return code == 404

    await eventually(gone, timeout=30, what="a read to finish the interrupted delete")
    _, listed = await api("GET", "/api/v1/serve")
    assert listed["result"] == []
    status, _ = await post_json(url, {"instances": [1.0]})
    assert status == 404

    # And now a create is accepted again and serves
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    assert await post_json(envelope["result"]["url"], {"instances": [1.0]}) == (
        200,
        {"predictions": [2.5]},
    )
