"""Submarine's registry routes over a real Jupyter server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
