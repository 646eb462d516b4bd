"""The REST API against real SavedModels, over real HTTP, answered like TF Serving answers."""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_modelserve.modelserver.manager import ModelManager

from .modelserver_fixtures import TIMEOUT, build_all, config, serve, wait_idle


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("http-models"))


@pytest.fixture(scope="module")
def url(bases: dict[str, Path]) -> Iterator[str]:
    manager = ModelManager()
    manager.apply_config(
        [
            config("half_plus_two", bases["half_plus_two"], stable=1),
            config("multi_io", bases["multi_io"]),
            config("strings", bases["strings"]),
            config("classify_v1", bases["classify_v1"]),
        ]
    )
    wait_idle(manager, "half_plus_two", "multi_io", "strings", "classify_v1")
    with serve(manager) as base_url:
        yield base_url
    manager.close()


def post(url: str, path: str, body: Any) -> requests.Response:
    return requests.post(url + path, json=body, timeout=TIMEOUT)


def ok(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    message: str = body["error"]
    return message


# -- predict -----------------------------------------------------------------------------------


def test_half_plus_two_row_form(url: str) -> None:
    answer = ok(post(url, "/v1/models/half_plus_two:predict", {"instances": [1.0, 2.0, 5.0]}))
    assert answer == {"predictions": [2.5, 3.0, 4.5]}


def test_half_plus_two_columnar_form_and_specials(url: str) -> None:
    response = requests.post(
        url + "/v1/models/half_plus_two/versions/1:predict",
        data='{"inputs": {"x": [1, NaN, Infinity, -Infinity, 0.1]}}',
        timeout=TIMEOUT,
    )
    outputs = ok(response)["outputs"]
    assert outputs[0] == 2.5 and math.isnan(outputs[1])
    assert outputs[2:4] == [math.inf, -math.inf]
    assert outputs[4] == 2.05  # float32 printed as its shortest repr, as TF Serving does


def test_several_inputs_and_outputs_row_form(url: str) -> None:
    body = {"instances": [{"a": [1.0, 2.0], "b": 3}, {"a": [0.5, 0.5], "b": -1}]}
    answer = ok(post(url, "/v1/models/multi_io:predict", body))
    assert answer == {
        "predictions": [
            {"total": 6.0, "label_bytes": {"b64": base64.b64encode(b"3").decode()}},
            {"total": 0.0, "label_bytes": {"b64": base64.b64encode(b"-1").decode()}},
        ]
    }


def test_several_inputs_and_outputs_columnar_form(url: str) -> None:
    body = {"inputs": {"a": [[1.0, 1.0]], "b": [10]}}
    answer = ok(post(url, "/v1/models/multi_io:predict", body))
    assert answer == {"outputs": {"total": [12.0], "label_bytes": [{"b64": "MTA="}]}}


def test_signature_name_selects_a_signature(url: str) -> None:
    body = {"signature_name": "scale", "instances": [1.5, -2]}
    assert ok(post(url, "/v1/models/multi_io:predict", body)) == {"predictions": [3.0, -4.0]}
    missing = error(post(url, "/v1/models/multi_io:predict", {**body, "signature_name": "no"}), 400)
    assert '"no" not found' in missing


def test_b64_and_text_strings(url: str) -> None:
    raw = "héllo".encode()
    body = {"instances": [{"b64": base64.b64encode(raw).decode()}, "plain"]}
    answer = ok(post(url, "/v1/models/strings:predict", body))
    assert answer["predictions"][0] == {"upper": "HéLLO", "echo_bytes": {"b64": "aMOpbGxv"}}
    assert answer["predictions"][1]["upper"] == "PLAIN"
    bad = error(post(url, "/v1/models/strings:predict", {"inputs": [{"b64": "@@"}]}), 400)
    assert "text" in bad and "base64" in bad


# -- predict errors ----------------------------------------------------------------------------


def test_instances_and_inputs_together(url: str) -> None:
    body = {"instances": [1.0], "inputs": [1.0]}
    message = error(post(url, "/v1/models/half_plus_two:predict", body), 400)
    assert "expecting only one of 'inputs' or 'instances' keys to exist" in message


def test_neither_instances_nor_inputs(url: str) -> None:
    message = error(post(url, "/v1/models/half_plus_two:predict", {"x": [1.0]}), 400)
    assert message == "Missing 'inputs' or 'instances' key"


@pytest.mark.parametrize(
    ("model", "body", "words"),
    [
        ("half_plus_two", {"instances": [[1.0, 2.0]]}, ["'x'", "shape"]),
        ("half_plus_two", {"inputs": ["one"]}, ["'x'", "float"]),
        ("half_plus_two", {"instances": []}, ["non-empty"]),
        ("multi_io", {"inputs": {"a": [[1.0, 2.0]], "b": [1.5]}}, ["'b'", "int"]),
        ("multi_io", {"inputs": {"a": [[1.0, 2.0], [1.0]], "b": [1, 2]}}, ["'a'"]),
        ("multi_io", {"inputs": {"a": [[1.0, 2.0]]}}, ["'b'"]),
        ("multi_io", {"inputs": {"a": [[1.0, 2.0]], "b": [1], "c": [1]}}, ["'c'"]),
        ("multi_io", {"instances": [1.0, 2.0]}, ["several inputs"]),
        ("strings", {"inputs": [1]}, ["'text'", "strings"]),
    ],
)
def test_bad_tensors_name_the_input(
    url: str, model: str, body: dict[str, Any], words: list[str]
) -> None:
    message = error(post(url, f"/v1/models/{model}:predict", body), 400)
    for word in words:
        assert word in message


def test_body_that_is_not_a_json_object(url: str) -> None:
    response = requests.post(url + "/v1/models/half_plus_two:predict", data="[", timeout=TIMEOUT)
    assert "JSON Parse error" in error(response, 400)
    assert "Is not object" in error(post(url, "/v1/models/half_plus_two:predict", [1]), 400)


# -- classify and regress ----------------------------------------------------------------------


def test_classify_with_a_classify_signature(url: str) -> None:
    body = {"signature_name": "classify_x", "examples": [{"x": 0.0}, {"x": [-4.0]}]}
    results = ok(post(url, "/v1/models/classify_v1:classify", body))["results"]
    assert [[label for label, _ in row] for row in results] == [["neg", "pos"], ["neg", "pos"]]
    score = 1 / (1 + math.exp(-2.0))
    assert results[0][1][1] == pytest.approx(score, rel=1e-6)
    assert results[1][1][1] == pytest.approx(0.5, rel=1e-6)


def test_regress_with_context_merged_into_each_example(url: str) -> None:
    body = {"context": {"x": 100.0}, "examples": [{"x": 2.0}, {"unused": "a"}]}
    answer = ok(post(url, "/v1/models/classify_v1:regress", body))  # serving_default regresses
    assert answer == {"results": [3.0, 52.0]}


def test_classify_and_regress_on_tf2_predict_signatures_that_fit(url: str) -> None:
    examples = {"examples": [{"x": 2.0}]}
    body = {"signature_name": "parse_regress", **examples}
    assert ok(post(url, "/v1/models/multi_io:regress", body)) == {"results": [3.0]}
    body = {"signature_name": "parse_classify", **examples}
    [[neg, pos]] = ok(post(url, "/v1/models/multi_io:classify", body))["results"]
    assert neg[0] == "neg" and pos[0] == "pos" and neg[1] + pos[1] == pytest.approx(1.0)


def test_model_errors_are_400_with_the_cause(url: str) -> None:
    body = {"signature_name": "classify_x", "examples": [{"x": 3}]}  # int64, model wants float
    message = error(post(url, "/v1/models/classify_v1:classify", body), 400)
    assert message.startswith("Name: <unknown>, Key: x") and "Data types don't match" in message


def test_classify_on_a_signature_that_does_not_fit(url: str) -> None:
    message = error(post(url, "/v1/models/half_plus_two:classify", {"examples": [{"x": 1}]}), 400)
    assert "serving_default" in message and "does not support classify" in message
    body = {"signature_name": "classify_x", "examples": [{"x": 1}]}
    message = error(post(url, "/v1/models/classify_v1:regress", body), 400)
    assert "does not support regress" in message
    message = error(post(url, "/v1/models/classify_v1:regress", {"examples": []}), 400)
    assert "'examples'" in message


# -- status, metadata, routing -----------------------------------------------------------------


def test_status_when_available(url: str) -> None:
    answer = ok(requests.get(url + "/v1/models/half_plus_two", timeout=TIMEOUT))
    assert answer == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    for path in ("/versions/1", "/labels/stable", "/VERSIONS/1"):
        again = ok(requests.get(url + "/v1/models/half_plus_two" + path, timeout=TIMEOUT))
        assert again == answer


def test_metadata_has_tf_serving_shape(url: str) -> None:
    answer = ok(requests.get(url + "/v1/models/half_plus_two/metadata", timeout=TIMEOUT))
    assert answer["model_spec"] == {"name": "half_plus_two", "signature_name": "", "version": "1"}
    signature = answer["metadata"]["signature_def"]["signature_def"]["serving_default"]
    dim = [{"size": "-1", "name": ""}]
    assert signature == {
        "inputs": {
            "x": {
                "dtype": "DT_FLOAT",
                "tensor_shape": {"dim": dim, "unknown_rank": False},
                "name": "serving_default_x:0",
            }
        },
        "outputs": {
            "y": {
                "dtype": "DT_FLOAT",
                "tensor_shape": {"dim": dim, "unknown_rank": False},
                "name": signature["outputs"]["y"]["name"],
            }
        },
        "method_name": "tensorflow/serving/predict",
    }
    v1 = ok(requests.get(url + "/v1/models/classify_v1/versions/1/metadata", timeout=TIMEOUT))
    methods = {
        k: s["method_name"] for k, s in v1["metadata"]["signature_def"]["signature_def"].items()
    }
    assert methods["classify_x"] == "tensorflow/serving/classify"
    assert methods["regress_x"] == "tensorflow/serving/regress"


def test_labels_route_to_their_version(url: str) -> None:
    body = {"instances": [0.0]}
    assert ok(post(url, "/v1/models/half_plus_two/labels/stable:predict", body)) == {
        "predictions": [2.0]
    }
    message = error(post(url, "/v1/models/half_plus_two/labels/beta:predict", body), 400)
    assert message == "Unrecognized servable version label: beta"


def test_not_found_answers(url: str) -> None:
    body = {"instances": [1.0]}
    assert error(post(url, "/v1/models/nope:predict", body), 404) == (
        "Servable not found for request: Latest(nope)"
    )
    assert error(post(url, "/v1/models/half_plus_two/versions/7:predict", body), 404) == (
        "Servable not found for request: Specific(half_plus_two, 7)"
    )
    assert error(requests.get(url + "/v1/models/nope", timeout=TIMEOUT), 404) == (
        "Could not find any versions of model nope"
    )
    missing = error(requests.get(url + "/v1/models/half_plus_two/versions/7", timeout=TIMEOUT), 404)
    assert "version 7" in missing
    assert error(requests.get(url + "/v1/models/nope/metadata", timeout=TIMEOUT), 404) == (
        "Servable not found for request: Latest(nope)"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models/half_plus_two/versions/one"),
        ("GET", "/v1/models/half_plus_two:predict"),
        ("POST", "/v1/models/half_plus_two"),
        ("POST", "/v1/models/half_plus_two:explain"),
        ("GET", "/v2/models/half_plus_two"),
        ("DELETE", "/v1/models/half_plus_two"),
        ("GET", "/"),
    ],
)
def test_malformed_paths(url: str, method: str, path: str) -> None:
    response = requests.request(method, url + path, timeout=TIMEOUT)
    assert error(response, 400) == f"Malformed request: {method} {path}"


def test_version_and_label_together_and_missing_name(url: str) -> None:
    path = "/v1/models/half_plus_two/versions/1/labels/stable"
    assert "Malformed request" in error(requests.get(url + path, timeout=TIMEOUT), 400)
    assert "Malformed request" in error(post(url, path + ":predict", {"instances": [1]}), 400)
    message = error(requests.get(url + "/v1/models", timeout=TIMEOUT), 400)
    assert message == "Missing model name in request."


def test_paths_are_case_insensitive(url: str) -> None:
    body = {"instances": [1.0]}
    answer = ok(post(url, "/V1/Models/half_plus_two/Versions/1:Predict", body))
    assert answer == {"predictions": [2.5]}
