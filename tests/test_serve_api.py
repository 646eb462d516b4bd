"""The serve REST API end to end: a real Jupyter server, real TensorFlow behind the url."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api, eventually, post_json

PREDICT = {"instances": [1.0, 2.0, 5.0]}
EXPECTED = [2.5, 3.0, 4.5]


async def test_seed_examples_serve_predict_and_delete(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    # Given `simple` version 1 in the registry
    # When the seed's POST is sent exactly as documented (trailing comma included)
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY)

    # Then it answers the Submarine envelope with a predict url
    assert code == 200
    assert envelope["status"] == "OK" and envelope["success"] is True
    assert envelope["message"].startswith("Create a serve instance")
    serve = envelope["result"]
    assert serve["modelName"] == "simple" and serve["modelVersion"] == 1
    url = serve["url"]
    assert url.startswith("http://127.0.0.1:") and url.endswith(
        "/v1/models/simple/versions/1:predict"
    )

    # And that url predicts with TF Serving's row format
    async def predicted() -> Any:
        status, body = await post_json(url, PREDICT)
        return body if status == 200 else None

    body = await eventually(predicted, what="a prediction at the returned url")
    assert body == {"predictions": EXPECTED}

    # And the list says AVAILABLE, the same way POST's result reads
    code, listed = await api("GET", "/api/v1/serve")
    assert code == 200
    [item] = listed["result"]
    assert item["state"] == "AVAILABLE" and item["url"] == url and item["reason"] is None
    assert set(item) == set(serve)
    code, one = await api("GET", "/api/v1/serve/simple/1")
    assert code == 200 and one["result"]["state"] == "AVAILABLE"

    # When the seed's DELETE is sent
    code, envelope = await api("DELETE", "/api/v1/serve", SEED_BODY)

    # Then it is gone everywhere
    assert code == 200
    assert envelope["message"] == "Delete the model serve instance"
    assert envelope["result"] is None
    status, _ = await post_json(url, PREDICT)
    assert status == 404
    code, listed = await api("GET", "/api/v1/serve")
    assert listed["result"] == []


async def test_wait_returns_available_and_second_post_is_idempotent(
    api: Api, simple_registered: dict[str, Any], service: ServeService
) -> None:
    # Given a serve created with ?wait
    code, first = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": 60})
    assert code == 200, first
    assert first["result"]["state"] == "AVAILABLE"
    assert first["message"] == "Create a serve instance"

    # When it is POSTed again, also concurrently
    results = await asyncio.gather(
        *(
            api("POST", "/api/v1/serve", {"modelName": "simple", "modelVersion": "1"})
            for _ in range(3)
        )
    )

    # Then every answer is 200 with the same url, and the server config holds the model once
    assert {code for code, _ in results} == {200}
    assert {body["result"]["url"] for _, body in results} == {first["result"]["url"]}
    config = Path(service.backend.config_file).read_text()  # type: ignore[attr-defined]
    assert config.count("name: 'simple'") == 1
    assert config.count("versions: 1") == 1


async def test_get_one_serve_and_unknowns(api: Api, simple_registered: dict[str, Any]) -> None:
    code, envelope = await api("GET", "/api/v1/serve/simple/1")
    assert code == 404
    assert envelope["message"] == "model 'simple' version 1 is not served"
    code, envelope = await api("GET", "/api/v1/serve/nosuch/1")
    assert code == 404 and "nosuch" in envelope["message"]
    code, envelope = await api("GET", "/api/v1/serve/simple/abc")
    assert code == 400 and envelope["message"].startswith("modelVersion:")


async def test_ping(api: Api) -> None:
    code, envelope = await api("GET", "/api/v1/serve/ping")
    assert (code, envelope["result"]) == (200, "Pong")
