"""Submarine's registry routes over a real Jupyter server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from jupyter_modelserve.handlers.openapi import openapi_document
from jupyter_modelserve.service import ServeService

from .conftest import Api


def test_the_shipped_openapi_document_is_valid() -> None:
    validate(openapi_document())


async def test_openapi_document_is_served(api: Api, jp_fetch: Any) -> None:
    response = await jp_fetch("api", "v1", "modelserve", "openapi.json")
    assert response.code == 200
    assert b'"/api/v1/serve"' in response.body


async def test_register_list_update_and_delete_versions(
    api: Api, half_plus_two: Path, service: ServeService
) -> None:
    # Given a registered model with a description and tags
    code, created = await api(
        "POST",
        "/api/v1/registered-model",
        {"name": "simple", "description": "halves and adds two", "tags": ["demo"]},
    )
    assert code == 200 and created["result"]["tags"] == ["demo"]
    code, again = await api("POST", "/api/v1/registered-model", {"name": "simple"})
    assert code == 409 and again["message"] == "registered model 'simple' already exists"

    # When two versions are registered from a SavedModel folder
    versions = []
    for _ in range(2):
        code, envelope = await api(
            "POST",
            "/api/v1/model-version",
            {"name": "simple", "source": str(half_plus_two), "tags": ["v"], "dataset": "toy"},
        )
        assert code == 200, envelope
        versions.append(envelope["result"])

    # Then they are numbered 1 and 2 and copied in TF Serving's <base>/<version> layout
    assert [v["version"] for v in versions] == [1, 2]
    for version in versions:
        source = Path(version["source"])
        assert source == service.registry.artifact_root / "simple" / str(version["version"])
        assert (source / "saved_model.pb").is_file()
        assert version["modelType"] == "tensorflow" and version["currentStage"] == "None"
    code, listed = await api("GET", "/api/v1/model-version/simple")
    assert [v["version"] for v in listed["result"]] == [1, 2]

    # And stage, description and tags can change
    code, patched = await api(
        "PATCH", "/api/v1/model-version/simple/2", {"currentStage": "Production"}
    )
    assert code == 200 and patched["result"]["currentStage"] == "Production"
    code, bad_stage = await api("PATCH", "/api/v1/model-version/simple/2", {"currentStage": "Live"})
    assert code == 400 and bad_stage["message"].startswith("currentStage:")
    code, null_stage = await api("PATCH", "/api/v1/model-version/simple/2", {"currentStage": None})
    assert code == 400 and null_stage["message"].startswith("currentStage:")
    code, _ = await api(
        "POST", "/api/v1/model-version/tag", params={"name": "simple", "version": 2, "tag": "best"}
    )
    assert code == 200
    code, one = await api("GET", "/api/v1/model-version/simple/2")
    assert one["result"]["tags"] == ["best", "v"]
    code, missing_tag = await api(
        "DELETE", "/api/v1/model-version/tag", params={"name": "simple", "version": 2, "tag": "x"}
    )
    assert code == 404 and "has no tag 'x'" in missing_tag["message"]
    code, no_version = await api(
        "POST", "/api/v1/model-version/tag", params={"name": "simple", "tag": "x"}
    )
    assert code == 400 and no_version["message"].startswith("version:")

    # When version 1 is deleted, its artifact goes with it
    code, _ = await api("DELETE", "/api/v1/model-version/simple/1")
    assert code == 200
    assert not Path(versions[0]["source"]).exists()
    code, gone = await api("GET", "/api/v1/model-version/simple/1")
    assert code == 404 and gone["message"] == "model 'simple' has no version 1"

    # And deleting the model removes the rest
    code, _ = await api("DELETE", "/api/v1/registered-model/simple")
    assert code == 200
    assert not (service.registry.artifact_root / "simple").exists()
    code, _ = await api("GET", "/api/v1/registered-model/simple")
    assert code == 404


async def test_registered_model_patch_and_tags(api: Api) -> None:
    await api("POST", "/api/v1/registered-model", {"name": "m1"})
    code, patched = await api("PATCH", "/api/v1/registered-model/m1", {"description": "new"})
    assert code == 200 and patched["result"]["description"] == "new"
    code, untouched = await api("PATCH", "/api/v1/registered-model/m1", {})
    assert code == 200 and untouched["result"]["description"] == "new"
    code, renamed = await api("PATCH", "/api/v1/registered-model/m1", {"name": "m2"})
    assert code == 400 and "renaming a registered model is not supported" in renamed["message"]
    code, _ = await api("POST", "/api/v1/registered-model/tag", params={"name": "m1", "tag": "t"})
    assert code == 200
    code, listed = await api("GET", "/api/v1/registered-model")
    assert [(m["name"], m["tags"]) for m in listed["result"]] == [("m1", ["t"])]
    code, _ = await api("DELETE", "/api/v1/registered-model/tag", params={"name": "m1", "tag": "t"})
    assert code == 200
    code, missing = await api("POST", "/api/v1/registered-model/tag", params={"name": "m1"})
    assert code == 400 and missing["message"] == "tag: query parameter is required"


async def test_a_saved_model_without_serving_default_is_refused(
    api: Api, tmp_path: Path, service: ServeService
) -> None:
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def double(self, x: Any) -> Any:
            return {"y": 2 * x}

    module = Doubler()
    folder = tmp_path / "odd" / "1"
    tf.saved_model.save(module, str(folder), signatures={"double": module.double})
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "odd", "source": str(folder)}
    )
    assert code == 400
    assert "has no 'serving_default' signature" in envelope["message"]
    assert not (service.registry.artifact_root / "odd").exists()


async def test_the_registry_pings_answer_pong(api: Api) -> None:
    # Given a server (no model called "ping" needed: the fixed paths come first)
    for path, message in (
        ("/api/v1/registered-model/ping", "Ping the registered model API"),
        ("/api/v1/model-version/ping", "Ping the model version API"),
    ):
        # When Submarine's ping path is read
        code, envelope = await api("GET", path)
        # Then it answers Pong in the envelope, not "no model called ping"
        assert (code, envelope["result"], envelope["message"]) == (200, "Pong", message)


@pytest.fixture
def in_root_dir(jp_root_dir: Path, half_plus_two: Path, tmp_path: Path, monkeypatch: Any) -> str:
    """models/hpt/1 as a SavedModel under the server's root_dir; the process's working folder
    has a models/hpt/1 too, but an empty one, so reading from there fails loudly."""
    shutil.copytree(half_plus_two, jp_root_dir / "models" / "hpt" / "1")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "models" / "hpt" / "1").mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    return "models/hpt/1"


async def test_a_version_from_base_dir_is_read_from_the_servers_root_dir(
    api: Api, in_root_dir: str, jp_root_dir: Path, service: ServeService
) -> None:
    # Given a SavedModel at models/hpt/1 under root_dir (and an empty folder of that name in
    # the working folder)
    sdk_body = {
        "name": "hpt",
        "modelType": "tensorflow",
        "description": "from the SDK",
        "tags": ["sdk"],
        "experimentId": "experiment-1637035230000-0001",
    }
    # When a version is created Submarine's SDK way, the folder in ?baseDir=
    code, envelope = await api(
        "POST", "/api/v1/model-version", sdk_body, params={"baseDir": in_root_dir}
    )
    # Then it was copied from root_dir into the registry
    assert code == 200, envelope
    version = envelope["result"]
    assert (version["version"], version["description"], version["tags"]) == (
        1,
        "from the SDK",
        ["sdk"],
    )
    # And the experiment it came from is kept
    assert version["experimentId"] == "experiment-1637035230000-0001"
    assert Path(version["source"]) == service.registry.artifact_root / "hpt" / "1"
    assert (Path(version["source"]) / "saved_model.pb").is_file()
    # And a relative `source` in today's body form is read from root_dir too
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "hpt", "source": f"./{in_root_dir}"}
    )
    assert code == 200 and envelope["result"]["version"] == 2, envelope


async def test_base_dir_and_relative_sources_refused_with_the_field_named(
    api: Api, in_root_dir: str, jp_root_dir: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    # Given models/hpt/1 under root_dir and a SavedModel outside root_dir
    outside = jp_root_dir.parent / "outside"
    shutil.copytree(jp_root_dir / in_root_dir, outside / "1")
    root = str(jp_root_dir)

    async def create(body: dict[str, Any], base_dir: str | None = None) -> tuple[int, str]:
        params = None if base_dir is None else {"baseDir": base_dir}
        code, envelope = await api("POST", "/api/v1/model-version", body, params=params)
        return code, envelope["message"]

    # When a relative folder climbs out of root_dir, as baseDir or as source
    code, message = await create({"name": "m"}, "../outside/1")
    # Then it is refused, naming the field it came in and where relative paths are read from
    assert code == 400 and message.startswith("baseDir: '../outside/1' leads out of"), message
    assert repr(root) in message
    code, message = await create({"name": "m", "source": "models/../../outside/1"})
    assert code == 400 and message.startswith("source: 'models/../../outside/1' leads out of")
    # And a folder that is not there is named as it was looked for, under root_dir
    code, message = await create({"name": "m"}, "nothing")
    assert (code, message) == (400, f"baseDir: {str(jp_root_dir / 'nothing')!r} is not a folder")
    # And the folder given both ways, or neither, or an empty baseDir, is a 400 that says so
    code, message = await create({"name": "m", "source": in_root_dir}, in_root_dir)
    assert code == 400 and message.startswith("source: the folder is already the baseDir"), message
    code, message = await create({"name": "m", "experimentId": "e"})
    assert code == 400 and "baseDir query parameter" in message, message
    code, message = await create({"name": "m"}, "")
    assert (code, message) == (400, "baseDir: must not be empty")
    code, message = await create({"name": "m", "experimentId": "x" * 65}, in_root_dir)
    assert (code, message) == (400, "experimentId: must be at most 64 characters, got 65")
    # And nothing was registered by any of them
    code, envelope = await api("GET", "/api/v1/registered-model")
    assert envelope["result"] == []

    # When the folder is absolute, or under ~, it is read as it is, outside root_dir too
    monkeypatch.setenv("HOME", str(outside.parent))
    assert (await create({"name": "m"}, str(outside / "1")))[0] == 200
    assert (await create({"name": "m", "source": "~/outside/1"}))[0] == 200


async def test_patch_names_the_version_in_the_body_as_submarines_sdk_does(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    # Given simple version 1
    # When it is updated with name and version in the body, not the path
    change = {"description": "new", "currentStage": "Production", "dataset": "toy"}
    code, envelope = await api(
        "PATCH", "/api/v1/model-version", {"name": "simple", "version": 1, **change}
    )
    # Then the changes are made and read back
    assert code == 200, envelope
    code, read = await api("GET", "/api/v1/model-version/simple/1")
    for version in (envelope["result"], read["result"]):
        assert (version["description"], version["currentStage"], version["dataset"]) == (
            "new",
            "Production",
            "toy",
        )
    # And only the fields sent change (a version may come as a string of digits)
    code, envelope = await api(
        "PATCH", "/api/v1/model-version", {"name": "simple", "version": "1", "dataset": None}
    )
    assert code == 200 and envelope["result"]["dataset"] is None
    assert envelope["result"]["currentStage"] == "Production"
    # And a missing, unknown or bad version is refused, saying which
    for body, answer in (
        ({"name": "simple", "description": "x"}, (400, "version: is required")),
        ({"name": "simple", "version": 9}, (404, "model 'simple' has no version 9")),
        ({"name": "simple", "version": 0}, (400, "version: must be a positive integer")),
        ({"version": 1}, (400, "name: is required")),
        ({"name": "simple", "version": 1, "tags": []}, (400, "tags: is not a known field")),
        ({"name": "simple", "version": 1, "currentStage": "Live"}, (400, "currentStage:")),
    ):
        code, envelope = await api("PATCH", "/api/v1/model-version", body)
        assert code == answer[0] and envelope["message"].startswith(answer[1]), envelope
