"""The periodic reconcile: the lease holder removes what no serve row wants, with no request."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.app import ModelServeApp
from jupyter_modelserve.backends.base import ServeSpec
from jupyter_modelserve.backends.local import LocalBackend
from jupyter_modelserve.tfserving.model_config import parse_model_config_list

from .conftest import SEED_BODY, Api, post_json, server_config

RECONCILE_INTERVAL = 1.0


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return server_config(ModelServeApp={"reconcile_interval": RECONCILE_INTERVAL})


def deployed(config_file: Path) -> set[tuple[str, int]]:
    """What the model server's config asks it to serve, read as the model server reads it."""
    configs = parse_model_config_list(config_file.read_text())
    return {(c.name, v) for c in configs for v in c.version_policy.versions}


async def test_an_orphan_in_the_model_servers_config_is_removed_by_the_periodic_reconcile(
    api: Api,
    modelserve_app: ModelServeApp,
    simple_registered: dict[str, Any],
    half_plus_two: Path,
) -> None:
    # Given simple 1 AVAILABLE, served by a Jupyter server that holds the reconciler lease
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    service = modelserve_app.service
    assert service is not None
    backend: Any = service.backend
    config_file = Path(backend.config_file)

    # When another process adds a model to the model server's config that no serve row wants
    # (a kernel that died between its apply and its row, say): its own backend, same folder
    other = LocalBackend(
        data_dir=backend.dir.parent, state_dir=str(backend.dir), rest_api_port=0, grpc_port=0
    )
    other.apply(ServeSpec("orphan", 1, str(half_plus_two)))
    assert deployed(config_file) == {("simple", 1), ("orphan", 1)}

    # Then, with no request sent, the next periodic reconcile takes it out again
    deadline = time.monotonic() + 10 * RECONCILE_INTERVAL
    while ("orphan", 1) in deployed(config_file):
        assert time.monotonic() < deadline, "the periodic reconcile did not remove the orphan"
        await asyncio.sleep(0.1)  # the reconcile runs on the server's own loop: let it
    # And the serve a row wants is untouched: still in the config, still predicting
    assert deployed(config_file) == {("simple", 1)}
    status, body = await post_json(envelope["result"]["url"], {"instances": [1.0]})
    assert (status, body) == (200, {"predictions": [2.5]})
    _, listed = await api("GET", "/api/v1/serve")
    assert [(s["modelName"], s["state"]) for s in listed["result"]] == [("simple", "AVAILABLE")]
