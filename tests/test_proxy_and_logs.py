"""The proxy route and the logs route on the local backend, with real TensorFlow."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import LOCKED_DOWN, SEED_BODY, Api, server_config

PREDICT = {"instances": [1.0, 2.0, 5.0]}


@pytest.fixture
def proxy(http_server_client: Any, jp_base_url: str, jp_auth_header: dict[str, str]) -> Any:
    """Fetch a proxy path as a logged-in user (jp_fetch would escape the ':' of ':predict')."""

    def fetch(path: str, body: Any = None) -> Any:
        return http_server_client.fetch(
            f"{jp_base_url}modelserve/v1/models/{path}",
            method="GET" if body is None else "POST",
            body=None if body is None else json.dumps(body),
            headers=jp_auth_header,
            raise_error=False,
        )

    return fetch


async def _serve_simple(api: Api) -> dict[str, Any]:
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    return dict(envelope["result"])


async def test_the_proxy_url_predicts_through_the_jupyter_server(
    api: Api, simple_registered: dict[str, Any], proxy: Any, jp_base_url: str
) -> None:
    # Given simple 1 AVAILABLE on the local backend
    serve = await _serve_simple(api)

    # Then its proxyUrl is on the Jupyter server, and predicts like the model server does
    path = "simple/versions/1:predict"
    assert serve["proxyUrl"].endswith(f"{jp_base_url}modelserve/v1/models/{path}")
    response = await proxy(path, PREDICT)
    assert (response.code, json.loads(response.body)) == (200, {"predictions": [2.5, 3.0, 4.5]})
    metadata = await proxy("simple/versions/1/metadata")
    signature = json.loads(metadata.body)["metadata"]["signature_def"]["signature_def"]
    assert "serving_default" in signature
    status = await proxy("simple/versions/1")
    assert json.loads(status.body)["model_version_status"][0]["state"] == "AVAILABLE"

    # And TF Serving's own errors come through unchanged
    bad = await proxy(path, {"instances": [1.0], "inputs": [1.0]})
    assert bad.code == 400
    assert "expecting only one of 'inputs' or 'instances'" in json.loads(bad.body)["error"]


async def test_the_proxy_answers_tf_serving_errors_for_what_is_not_served(
    api: Api, simple_registered: dict[str, Any], proxy: Any
) -> None:
    response = await proxy("simple/versions/1:predict", PREDICT)
    assert response.code == 404
    assert json.loads(response.body) == {"error": "model 'simple' version 1 is not served"}


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    """Every test here runs with unauthenticated access switched off, as a locked-down server."""
    return server_config(ServerApp=LOCKED_DOWN)


async def test_the_proxy_refuses_unauthenticated_calls(
    api: Api, simple_registered: dict[str, Any], http_server_client: Any, jp_base_url: str
) -> None:
    await _serve_simple(api)
    for method, body in (("GET", None), ("POST", json.dumps(PREDICT))):
        response = await http_server_client.fetch(
            f"{jp_base_url}modelserve/v1/models/simple/versions/1:predict",
            method=method,
            body=body,
            raise_error=False,
        )
        assert response.code == 403
        assert "predictions" not in response.body.decode()


async def test_logs_show_the_model_servers_lines_about_that_model(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    await _serve_simple(api)
    code, envelope = await api("GET", "/api/v1/serve/simple/1/logs", params={"tail": 50})
    assert code == 200
    lines = envelope["result"]
    loaded = "Successfully loaded servable version {name: simple version: 1}"
    assert any(loaded in line for line in lines)
    assert all("{name: simple" in line for line in lines)
    code, one = await api("GET", "/api/v1/serve/simple/1/logs", params={"tail": 1})
    assert code == 200 and len(one["result"]) == 1
    code, bad = await api("GET", "/api/v1/serve/simple/1/logs", params={"tail": 0})
    assert code == 400 and bad["message"].startswith("tail:")
    code, _ = await api("GET", "/api/v1/serve/other/1/logs")
    assert code == 404


async def test_remote_sources_are_recorded_and_refused_by_the_local_backend(
    api: Api, service: Any
) -> None:
    # Registering an s3:// version folder records it without copying anything
    code, envelope = await api(
        "POST",
        "/api/v1/model-version",
        {"name": "remote", "source": "s3://bucket/models/remote/3/"},
    )
    assert code == 200
    assert envelope["result"]["source"] == "s3://bucket/models/remote/3"
    assert not service.registry.artifact_root.joinpath("remote").exists()
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "remote", "source": "s3://bucket/models/remote"}
    )
    assert code == 400 and "must name a numbered version folder" in envelope["message"]

    # And serving it locally is a 400 that says which setting it needs, with nothing created
    code, envelope = await api("POST", "/api/v1/serve", {"modelName": "remote", "modelVersion": 1})
    assert code == 400
    assert "c.ModelServeApp.backend = 'kubernetes'" in envelope["message"]
    _, listed = await api("GET", "/api/v1/serve")
    assert listed["result"] == []
