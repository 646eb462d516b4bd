"""Every bad input gets a clear 4xx envelope that names the problem, and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_modelserve.service import ServeService

from .conftest import SEED_BODY, Api

# What the parser and the request models do with every kind of bad body is proven in
# tests/reliability/test_request_parser.py (milliseconds, no server). Here: each route, end to
# end, answers a bad input with a 400 envelope that the OpenAPI document allows, and changes
# nothing.


def _refused(code: int, envelope: dict[str, Any], message: str) -> None:
    assert code == 400, envelope
    assert envelope["status"] == "BAD_REQUEST" and envelope["success"] is False
    assert envelope["result"] is None
    assert message in envelope["message"], envelope["message"]


async def test_serve_routes_answer_bad_input_with_a_400_naming_it(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    # Given a registered simple 1 and no serve
    # When each serve route gets a bad body, path segment or query parameter
    bad_name = '{"modelName": "evil\\n", "modelVersion": 1}'
    _refused(*await api("POST", "/api/v1/serve", bad_name), "modelName: 'evil\\n' is not a valid")
    _refused(*await api("DELETE", "/api/v1/serve", "{not json"), "request body is not valid JSON")
    _refused(
        *await api("POST", "/api/v1/serve", SEED_BODY, params={"wait": "soon"}), "wait: must be"
    )
    _refused(*await api("GET", "/api/v1/serve", params={"limit": "0"}), "limit: must be")
    _refused(*await api("GET", "/api/v1/serve", params={"offset": "-1"}), "offset: must be")
    for version in ("abc", "0", "%C2%B2", "99999999999999999999", "1\n"):
        for path in (f"/api/v1/serve/simple/{version}", f"/api/v1/serve/simple/{version}/logs"):
            _refused(*await api("GET", path), "modelVersion: must be a positive integer")
    _refused(*await api("GET", "/api/v1/serve/evil\n/1"), "modelName: 'evil\\n' is not a valid")
    _refused(
        *await api("GET", "/api/v1/serve/simple/1/logs", params={"tail": "0"}), "tail: must be"
    )
    # Then nothing was served
    code, listed = await api("GET", "/api/v1/serve")
    assert code == 200 and listed["result"] == []
    assert listed["attributes"] == {"limit": 100, "offset": 0}


async def test_registry_routes_answer_bad_input_with_a_400_naming_it(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    # Given a registered simple 1
    # When each registry route gets a bad body, path segment or query parameter
    name_error = "name: 'evil\\n' is not a valid model name"
    _refused(*await api("POST", "/api/v1/registered-model", {"name": "evil\n"}), name_error)
    _refused(
        *await api("POST", "/api/v1/registered-model", {"name": "ok", "tags": ["a\u2028b"]}),
        "tags: tag 0: 'a\\u2028b' contains a control character or line break (U+2028)",
    )
    _refused(*await api("GET", "/api/v1/registered-model", params={"limit": "1001"}), "limit:")
    for method in ("GET", "PATCH", "DELETE"):
        body = {"description": "x"} if method == "PATCH" else None
        _refused(*await api(method, "/api/v1/registered-model/evil\n", body), name_error)
    _refused(
        *await api("PATCH", "/api/v1/registered-model/simple", {"description": "a\x00b"}),
        "description: contains a control character (U+0000)",
    )
    for method in ("POST", "DELETE"):
        tag = {"name": "simple", "tag": "x\n"}
        _refused(*await api(method, "/api/v1/registered-model/tag", params=tag), "tag: 'x\\n'")
        tag = {"name": "simple", "version": "1\n", "tag": "x"}
        _refused(*await api(method, "/api/v1/model-version/tag", params=tag), "version: must be")
    _refused(
        *await api("POST", "/api/v1/model-version", {"name": "simple", "source": "/tmp/x\n/y"}),
        "source: '/tmp/x\\n/y' contains a control character or line break (U+000A)",
    )
    _refused(*await api("GET", "/api/v1/model-version/evil\n"), name_error)
    _refused(*await api("GET", "/api/v1/model-version/simple", params={"offset": "x"}), "offset:")
    for method in ("GET", "PATCH", "DELETE"):
        body = {"dataset": "d"} if method == "PATCH" else None
        _refused(
            *await api(method, "/api/v1/model-version/simple/abc", body), "modelVersion: must be"
        )
    # Then the registry is as it was
    code, versions = await api("GET", "/api/v1/model-version/simple")
    assert code == 200 and [v["version"] for v in versions["result"]] == [1]
    assert versions["result"][0]["description"] is None
    code, models = await api("GET", "/api/v1/registered-model")
    assert [m["name"] for m in models["result"]] == ["simple"]


async def test_a_corrupt_saved_model_pb_is_a_400(api: Api, tmp_path: Path) -> None:
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"\x10\x01")  # a field 2 that is not a message
    code, envelope = await api(
        "POST", "/api/v1/model-version", {"name": "corrupt", "source": str(folder)}
    )
    assert code == 400 and "has no readable saved_model.pb" in envelope["message"]


async def test_unknown_model_or_version_is_a_404_naming_it(
    api: Api, simple_registered: dict[str, Any]
) -> None:
    for body, message in (
        ({"modelName": "nosuch", "modelVersion": 1}, "registered model 'nosuch' does not exist"),
        ({"modelName": "simple", "modelVersion": 9}, "model 'simple' has no version 9"),
    ):
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
    root = service.registry.artifact_root
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


async def test_lists_are_pages_and_refuse_bad_page_parameters(
    api: Api, service: ServeService, half_plus_two: Path
) -> None:
    # Given three registered models and two versions of one
    for name in ("m1", "m2", "m3"):
        code, _ = await api("POST", "/api/v1/registered-model", {"name": name})
        assert code == 200
    service.registry.register_saved_model(half_plus_two, "m2")
    service.registry.register_saved_model(half_plus_two, "m2")
    # When the lists are read a page at a time
    code, page = await api("GET", "/api/v1/registered-model", params={"limit": 2, "offset": 1})
    code_versions, versions = await api(
        "GET", "/api/v1/model-version/m2", params={"limit": 1, "offset": 1}
    )
    # Then each answers its page, in the list's order, and echoes limit and offset
    assert code == code_versions == 200
    assert [m["name"] for m in page["result"]] == ["m2", "m3"]
    assert page["attributes"] == {"limit": 2, "offset": 1}
    assert [v["version"] for v in versions["result"]] == [2]
    assert versions["attributes"] == {"limit": 1, "offset": 1}
    # And a page size past 1000, or a page parameter that is not a number, is a 400 naming it
    for params, message in (
        ({"limit": "1001"}, "limit: must be an integer from 1 to 1000"),
        ({"limit": "1e2"}, "limit: must be an integer from 1 to 1000"),
        ({"offset": "99999999999"}, "offset: must be an integer from 0 to 2147483647"),
        ({"offset": " 1"}, "offset: must be an integer"),
    ):
        for path in ("/api/v1/serve", "/api/v1/registered-model", "/api/v1/model-version/m2"):
            _refused(*await api("GET", path, params=params), message)
