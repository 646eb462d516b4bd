"""GET /api/v1/serve/{name}/{version}: the signature, an example request that predicts, and the
serve's metrics, from a real Jupyter server and a real model server."""

from __future__ import annotations

from typing import Any

from jupyter_modelserve.schemas import ServeState
from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, eventually, post_json


async def test_get_one_shows_signature_example_and_exact_metrics(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    # Given `simple` (half_plus_two) served and AVAILABLE
    code, created = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 200 and created["result"]["state"] == "AVAILABLE", created
    url = created["result"]["url"]

    # When GET one is read before any predict
    code, envelope = await api("GET", "/api/v1/serve/simple/1")
    assert code == 200
    serve = envelope["result"]

    # Then it shows the signature read from the artifact, and an example request
    assert serve["signature"] == {
        "name": "serving_default",
        "method": "tensorflow/serving/predict",
        "inputs": [{"name": "x", "dtype": "float", "shape": [-1]}],
        "outputs": [{"name": "y", "dtype": "float", "shape": [-1]}],
    }
    assert serve["exampleRequest"] == {"instances": [0.0]}
    # And no traffic yet: the backend's own status reads are not the serve's requests
    assert serve["metrics"] == {
        "requestCount": 0,
        "errorCount": 0,
        "latencyP50Ms": None,
        "latencyP99Ms": None,
    }

    # When the example request is POSTed to the url, then 4 more predicts and 1 bad one
    status, answer = await post_json(url, serve["exampleRequest"])
    assert (status, answer) == (200, {"predictions": [2.0]})
    for _ in range(4):
        assert (await post_json(url, {"instances": [1.0, 2.0]}))[0] == 200
    assert (await post_json(url, {"instances": "x"}))[0] == 400

    # Then GET one counts exactly those, and has latencies
    code, envelope = await api("GET", "/api/v1/serve/simple/1")
    metrics = envelope["result"]["metrics"]
    assert (metrics["requestCount"], metrics["errorCount"]) == (6, 1)
    assert 0 < metrics["latencyP50Ms"] <= metrics["latencyP99Ms"]

    # And the list and POST's answer stay as they were: no signature, example or metrics
    code, listed = await api("GET", "/api/v1/serve")
    assert set(listed["result"][0]) == set(created["result"])
    assert not {"signature", "exampleRequest", "metrics"} & set(created["result"])


async def test_a_registered_version_has_a_signature_before_it_is_served(
    service: ServeService, simple_registered: dict[str, Any]
) -> None:
    # Given `simple` 1 registered, not served
    # When its signature is asked for
    signature = service.signature("simple", 1)
    # Then it is read from the artifact
    assert signature is not None
    assert [(t.name, t.dtype, t.shape) for t in signature.inputs] == [("x", "float", [-1])]


async def test_describe_without_a_running_serve_has_no_metrics(
    api: Api, service: ServeService, simple_registered: dict[str, Any]
) -> None:
    # Given `simple` 1 served, then its model server stopped on purpose (serves read FAILED)
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 200
    service.backend.stop_server()  # type: ignore[attr-defined]

    async def failed() -> Any:
        _, envelope = await api("GET", "/api/v1/serve/simple/1")
        return envelope["result"]["state"] == ServeState.FAILED.value and envelope["result"]

    # When GET one is read
    serve = await eventually(failed, what="the serve to read FAILED")
    # Then metrics are null, never an error, and the signature is still there
    assert serve["metrics"] is None
    assert serve["signature"]["name"] == "serving_default"


async def test_a_remote_version_has_no_signature_until_it_is_served(
    service: ServeService,
) -> None:
    # Given a version registered from an s3:// URI (only the model server can read it)
    service.registry.register_remote_model("s3://bucket/models/remote/1", "remote")
    # When its signature is asked for before it is served / Then it is unknown, not an error
    assert service.signature("remote", 1) is None
