"""Every bad input gets a clear 4xx envelope that names the problem, and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api

BAD_SERVE_BODIES = [
    ("", "request body is empty"),
    ("   ", "request body is empty"),
    ("{not json", "request body is not valid JSON"),
    ("[1, 2]", "request body must be a JSON object"),
    ('{"modelVersion": 1}', "modelName: is required"),
    ('{"modelName": "simple"}', "modelVersion: is required"),
    ('{"modelName": 7, "modelVersion": 1}', "modelName: must be a string"),
    ('{"modelName": "bad name!", "modelVersion": 1}', "modelName: 'bad name!' is not a valid"),
    ('{"modelName": "simple", "modelVersion": 0}', "modelVersion: must be a positive integer"),
    ('{"modelName": "simple", "modelVersion": -1}', "modelVersion: must be a positive integer"),
    ('{"modelName": "simple", "modelVersion": "abc"}', "modelVersion: must be a positive integer"),
    ('{"modelName": "simple", "modelVersion": 1.5}', "modelVersion: must be a positive integer"),
    ('{"modelName": "simple", "modelVersion": true}', "modelVersion: must be a positive integer"),
    ('{"modelName": "simple", "modelVersion": null}', "modelVersion: must be a positive integer"),
    ('{"modelName": "simple", "modelVersion": 1e30}', "modelVersion: must be a positive integer"),
    (
        '{"modelName": "simple", "modelVersion": 100000000000000000000}',
        "modelVersion: must be a positive integer up to 2147483647",
    ),
    ('{"modelName": "simple", "modelVersion": "\u00b2"}', "modelVersion: must be a positive"),
    ('{"modelName": "simple", "modelVersion": 1, "x": 2}', "x: is not a known field"),
    (
        '{"modelName": "simple", "modelVersion": 1, "modelType": "pytorch"}',
        "modelType: 'pytorch' is not a supported model type; supported: tensorflow",
    ),
]


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(("body", "message"), BAD_SERVE_BODIES)
async def test_bad_serve_body_is_a_400_naming_the_problem(
    api: Api, simple_registered: dict[str, Any], method: str, body: str, message: str
) -> None:
    code, envelope = await api(method, "/api/v1/serve", body)
    assert code == 400
    assert envelope["status"] == "BAD_REQUEST" and envelope["success"] is False
    assert envelope["result"] is None
    assert message in envelope["message"]
    _, listed = await api("GET", "/api/v1/serve")
    assert listed["result"] == []


@pytest.mark.parametrize("version", ["abc", "0", "%C2%B2", "99999999999999999999"])
async def test_bad_version_in_a_path_is_a_400(
    api: Api, simple_registered: dict[str, Any], version: str
) -> None:
    for path in (f"/api/v1/serve/simple/{version}", f"/api/v1/model-version/simple/{version}"):
        code, envelope = await api("GET", path)
        assert code == 400 and envelope["message"].startswith("modelVersion:"), envelope


async def test_a_corrupt_saved_model_pb_is_a_400(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x10\x01")  # a field 2 that is not a message
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "corrupt", "source": str(folder)}
    )
    assert code == 400 and "is not a readable SavedModel" in envelope["message"]


async def test_bad_wait_is_a_400(api: Api, simple_registered: dict[str, Any]) -> None:
    code, envelope = await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": "soon"})
    assert code == 400 and envelope["message"].startswith("wait:")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"modelName": "nosuch", "modelVersion": 1}, "registered model 'nosuch' does not exist"),
        ({"modelName": "simple", "modelVersion": 9}, "model 'simple' has no version 9"),
    ],
)
async def test_unknown_model_or_version_is_a_404_naming_it(
    api: Api, simple_registered: dict[str, Any], body: dict[str, Any], message: str
) -> None:
    code, envelope = await api("POST", "/api/v1/serve", body)
    assert (code, envelope["status"], envelope["message"]) == (404, "NOT_FOUND", message)


async def test_delete_of_a_version_that_is_not_served_is_a_404(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    code, envelope = await api("DELETE", "/api/v1/serve", SEED_BODY)
    assert code == 404
    assert envelope["message"] == "model 'simple' version 1 is not served"


async def test_deleting_a_served_model_version_is_a_409_and_keeps_it(
    api: Api, simple_registered: dict[str, Any], service: ServeService
) -> None:
    # Given simple 1 being served
    code, _ = await api("POST", "/api/v1/serve", SEED_BODY)
    assert code == 200
    # When its registered version (or the whole model) is deleted
    code, envelope = await api("DELETE", "/api/v1/model-version/simple/1")
    code_model, envelope_model = await api("DELETE", "/api/v1/registered-model/simple")
    # Then both are refused, and the version and its artifact remain
    assert (code, code_model) == (409, 409)
    assert "is being served" in envelope["message"]
    assert "is being served" in envelope_model["message"]
    assert Path(simple_registered["source"], "saved_model.pb").is_file()
    code, _ = await api("GET", "/api/v1/model-version/simple/1")
    assert code == 200


async def test_registering_a_folder_that_is_not_a_saved_model_copies_nothing(
    api: Api, service: ServeService, tmp_path: Path
) -> None:
    not_a_model = tmp_path / "notes"
    not_a_model.mkdir()
    (not_a_model / "readme.txt").write_text("hello")
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "simple", "source": str(not_a_model)}
    )
    assert code == 400
    assert "is not a SavedModel folder: it has no saved_model.pb" in envelope["message"]
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "simple", "source": str(tmp_path / "missing")}
    )
    assert code == 400 and "is not a folder" in envelope["message"]
    root = service.artifact_root
    assert not root.exists() or [p for p in root.rglob("*") if p.is_file()] == []
    code, _ = await api("GET", "/api/v1/registered-model/simple")
    assert code == 404


async def test_registering_an_unsupported_model_type_names_the_supported_ones(
    api: Api, half_plus_two: Path
) -> None:
    code, envelope = await api(
        "POST",
        "/api/v1/model-version",
        {"name": "simple", "source": str(half_plus_two), "modelType": "sklearn"},
    )
    assert code == 400
    assert envelope["message"] == (
        "modelType: 'sklearn' is not a supported model type; supported: tensorflow"
    )
