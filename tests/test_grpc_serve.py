"""A serve's `grpcUrl` end to end: POST /api/v1/serve, then a TF Serving gRPC client on it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jupyter_modelserve.service import ServeService

from .conftest import Api, server_config
from .grpc_helpers import TIMEOUT, predict_request, status_request, stubs


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    # Port 0 for gRPC too: tests never fight over 8500 with each other or a user's server.
    return server_config(LocalBackend={"rest_api_port": 0, "grpc_port": 0})


def _grpc_calls(address: str) -> tuple[list[float], int, Any]:
    """Predict and status over gRPC, as a TF Serving client written for 8500 would."""
    import tensorflow as tf

    with stubs(address) as (prediction, models):
        request = predict_request("simple", {"x": np.array([1, 2, 5], np.float32)}, version=1)
        response = prediction.Predict(request, timeout=TIMEOUT)
        status = models.GetModelStatus(status_request("simple", 1), timeout=TIMEOUT)
    (version,) = status.model_version_status
    return tf.make_ndarray(response.outputs["y"]).tolist(), version.version, version.state


async def test_grpc_url_of_a_local_serve_predicts(
    api: Api, simple_registered: dict[str, Any], service: ServeService, half_plus_two: Path
) -> None:
    from tensorflow_serving.apis import get_model_status_pb2

    # Given `simple` version 1 registered
    # When it is served, waiting until it is AVAILABLE
    body = {"modelName": "simple", "modelVersion": 1}
    code, created = await api("POST", "/api/v1/serve", body, params={"wait": 60})
    assert code == 200, created
    serve = created["result"]
    # Then the result names the model server's gRPC address on loopback, not its REST port
    grpc_url = serve["grpcUrl"]
    host, _, port = grpc_url.partition(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert f":{port}/" not in serve["url"]
    # And a TF Serving gRPC client predicts there and reads the version's status
    loop = asyncio.get_running_loop()
    outputs, version, state = await loop.run_in_executor(None, _grpc_calls, grpc_url)
    assert outputs == [2.5, 3.0, 4.5]
    assert (version, state) == (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    # And GET one and the list carry the same address
    code, one = await api("GET", "/api/v1/serve/simple/1")
    assert one["result"]["grpcUrl"] == grpc_url
    code, listed = await api("GET", "/api/v1/serve")
    assert [item["grpcUrl"] for item in listed["result"]] == [grpc_url]
    # And the Python API's view has it too
    assert service.get("simple", 1).grpc_url == grpc_url

    # Given a second version whose serve row is accepted but not applied (its creator died)
    version = service.registry.register_saved_model(half_plus_two, "simple").version
    service.store.insert_serve("simple", version, service.backend.name, None)
    # When it is read
    code, other = await api("GET", f"/api/v1/serve/simple/{version}")
    # Then it has no grpcUrl while it has no url (should the reconciler apply it meanwhile,
    # both are set)
    assert code == 200
    result = other["result"]
    assert (result["url"] is None) == (result["grpcUrl"] is None)
