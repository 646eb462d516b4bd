"""TF Serving's gRPC API of the built-in model server, called as a TF Serving client would.

One real model server process serves real SavedModels; the client uses only the stubs and
messages of `tensorflow-serving-api`.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests

from jupyter_modelserve.tfserving.model_config import render_model_config_list

from .grpc_helpers import (
    GRPC_LINE,
    TIMEOUT,
    code_and_message,
    predict_request,
    rpc_error,
    status_request,
    stubs,
)
from .modelserver_fixtures import PORT_LINE, ServerProcess, build_all, config, state_of, wait_for

MAX_BYTES = 1024 * 1024  # the server's request limit here: small, so bounds are cheap to hit


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(gRPC host:port, REST base url) of a server with the test models AVAILABLE."""
    root = tmp_path_factory.mktemp("grpc-models")
    bases = build_all(root)
    config_file = root / "models.config"
    configs = [config(name, base) for name, base in bases.items()]
    config_file.write_text(render_model_config_list(configs))
    process = ServerProcess(
        "--rest_api_port=0",
        "--port=0",
        f"--rest_api_max_body_bytes={MAX_BYTES}",
        f"--model_config_file={config_file}",
        "--file_system_poll_wait_seconds=0",
    )
    try:
        url = f"http://127.0.0.1:{process.wait_for_line(PORT_LINE).group(1)}"
        address = f"127.0.0.1:{process.wait_for_line(GRPC_LINE).group(1)}"
        for name in bases:
            wait_for(lambda n=name: state_of(url, n, 1) == "AVAILABLE", what=f"{name} AVAILABLE")
        yield address, url
    finally:
        process.stop()


@pytest.fixture(scope="module")
def clients(server: tuple[str, str]) -> Iterator[tuple[Any, Any]]:
    with stubs(server[0]) as pair:
        yield pair


def test_predict_answers_as_tf_serving(clients: tuple[Any, Any]) -> None:
    import tensorflow as tf

    # Given half_plus_two served, and a client of TF Serving's PredictionService
    prediction, _ = clients
    # When it predicts three values, naming no version and no signature
    request = predict_request("half_plus_two", {"x": np.array([1.0, 2.0, 5.0], np.float32)})
    response = prediction.Predict(request, timeout=TIMEOUT)
    # Then the outputs are 0.5x + 2 and the model spec names what answered
    assert tf.make_ndarray(response.outputs["y"]).tolist() == [2.5, 3.0, 4.5]
    spec = response.model_spec
    assert (spec.name, spec.version.value, spec.signature_name) == (
        "half_plus_two",
        1,
        "serving_default",
    )


def test_predict_with_several_inputs_a_signature_and_an_output_filter(
    clients: tuple[Any, Any],
) -> None:
    import tensorflow as tf

    prediction, _ = clients
    # Given multi_io's two inputs (float32 [-1, 2] and int64 [-1])
    inputs = {"a": np.array([[1, 2], [3, 4]], np.float32), "b": np.array([10, 20], np.int64)}
    # When the default signature is asked for `total` only, at version 1
    request = predict_request("multi_io", inputs, version=1)
    request.output_filter.append("total")
    response = prediction.Predict(request, timeout=TIMEOUT)
    # Then only `total` comes back
    assert list(response.outputs) == ["total"]
    assert tf.make_ndarray(response.outputs["total"]).tolist() == [13.0, 27.0]
    # And without a filter, the string output comes back as bytes
    full = prediction.Predict(predict_request("multi_io", inputs), timeout=TIMEOUT)
    assert tf.make_ndarray(full.outputs["label_bytes"]).tolist() == [b"10", b"20"]
    # And another signature is chosen by name
    scale = predict_request("multi_io", {"x": [1.5]}, signature_name="scale")
    doubled = prediction.Predict(scale, timeout=TIMEOUT).outputs["doubled"]
    assert tf.make_ndarray(doubled).tolist() == [3.0]


@pytest.mark.parametrize(
    ("request_args", "code", "words"),
    [
        (("nope", {"x": [1.0]}), grpc.StatusCode.NOT_FOUND, "Servable not found"),
        (("half_plus_two", {"x": [1.0]}, {"version": 7}), grpc.StatusCode.NOT_FOUND, "7"),
        (("half_plus_two", {"x": [1.0]}, {"version_label": "stable"}), None, "label"),
        (("half_plus_two", {"x": np.array([1.0])}), grpc.StatusCode.INVALID_ARGUMENT, "DT_DOUBLE"),
        (("half_plus_two", {"x": [[1.0]]}), grpc.StatusCode.INVALID_ARGUMENT, "shape [1, 1]"),
        (("half_plus_two", {"z": [1.0]}), grpc.StatusCode.INVALID_ARGUMENT, "Input 'z'"),
        (("half_plus_two", {}), grpc.StatusCode.INVALID_ARGUMENT, "needs input 'x'"),
        (("", {"x": [1.0]}), grpc.StatusCode.INVALID_ARGUMENT, "name"),
        (
            ("half_plus_two", {"x": [1.0]}, {"signature_name": "nope"}),
            grpc.StatusCode.FAILED_PRECONDITION,
            '"nope" not found',
        ),
    ],
)
def test_bad_predicts_get_tf_serving_codes(
    clients: tuple[Any, Any], request_args: tuple[Any, ...], code: Any, words: str
) -> None:
    # Given a request for an unknown model/version/label/signature, or a bad tensor
    name, inputs, spec = (*request_args, {})[:3]
    request = predict_request(name, inputs, **spec)
    # When it is sent
    error = rpc_error(clients[0].Predict, request)
    # Then the status code is TF Serving's and the message names the problem
    got_code, message = code_and_message(error)
    assert got_code == (code or grpc.StatusCode.INVALID_ARGUMENT)
    assert words in message


def test_tensors_past_the_request_limit_are_refused(clients: tuple[Any, Any]) -> None:
    import tensorflow as tf

    prediction, _ = clients
    # Given a tensor of one value with a shape past the limit: a few bytes filled out to more
    # (a larger shape would be gigabytes; this one stays harmless should the check break)
    bomb = tf.make_tensor_proto(1.0, dtype=tf.float32, shape=[MAX_BYTES])
    # When it is predicted
    error = rpc_error(prediction.Predict, predict_request("half_plus_two", {"x": bomb}))
    # Then it is refused before it is built, naming the limit
    code, message = code_and_message(error)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and str(MAX_BYTES) in message
    # And a message larger than the limit (one long string, a valid input) is refused by gRPC
    big = np.array([b"a" * (MAX_BYTES + 100)], dtype=object)
    too_big = rpc_error(prediction.Predict, predict_request("strings", {"text": big}))
    assert code_and_message(too_big)[0] == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_metadata_is_the_signature_def_map(clients: tuple[Any, Any]) -> None:
    from tensorflow_serving.apis import get_model_metadata_pb2

    prediction, _ = clients
    # When the metadata of half_plus_two is asked for, as TF Serving's clients do
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "half_plus_two"
    request.metadata_field.append("signature_def")
    response = prediction.GetModelMetadata(request, timeout=TIMEOUT)
    # Then it holds the SignatureDefMap, packed in an Any
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    default = signatures.signature_def["serving_default"]
    assert (list(default.inputs), list(default.outputs)) == (["x"], ["y"])
    assert response.model_spec.version.value == 1
    # And a request without a metadata field is INVALID_ARGUMENT, as TF Serving answers it
    del request.metadata_field[:]
    error = rpc_error(prediction.GetModelMetadata, request)
    assert code_and_message(error)[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_model_status(clients: tuple[Any, Any]) -> None:
    from tensorflow_serving.apis import get_model_status_pb2

    _, models = clients
    # When the status of half_plus_two is asked for
    response = models.GetModelStatus(status_request("half_plus_two"), timeout=TIMEOUT)
    # Then version 1 is AVAILABLE with an OK status
    (status,) = response.model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0
    # And an unknown model or version is NOT_FOUND
    for request in (status_request("nope"), status_request("half_plus_two", 9)):
        error = rpc_error(models.GetModelStatus, request)
        assert code_and_message(error)[0] == grpc.StatusCode.NOT_FOUND


def _examples(*values: float) -> Any:
    from tensorflow.core.example import example_pb2
    from tensorflow_serving.apis import input_pb2

    request_input = input_pb2.Input()
    for value in values:
        example = example_pb2.Example()
        example.features.feature["x"].float_list.value.append(value)
        request_input.example_list.examples.append(example)
    return request_input


def test_classify_and_regress(clients: tuple[Any, Any]) -> None:
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    prediction, _ = clients
    # Given classify_v1's classify and regress signatures over tf.Example with a feature `x`
    classify = classification_pb2.ClassificationRequest(input=_examples(0.0, -4.0))
    classify.model_spec.name, classify.model_spec.signature_name = "classify_v1", "classify_x"
    regress = regression_pb2.RegressionRequest(input=_examples(2.0))
    regress.model_spec.name = "classify_v1"
    # When they are called
    classified = prediction.Classify(classify, timeout=TIMEOUT)
    regressed = prediction.Regress(regress, timeout=TIMEOUT)
    # Then the classes and scores are the model's, per example
    first, second = classified.result.classifications
    assert [c.label for c in first.classes] == ["neg", "pos"]
    assert first.classes[1].score == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert second.classes[1].score == pytest.approx(0.5)
    assert [r.value for r in regressed.result.regressions] == [3.0]
    assert regressed.model_spec.signature_name == "serving_default"
    # And a model without such a signature says so (FAILED_PRECONDITION), as does an empty input
    regress.model_spec.name = "half_plus_two"
    error = rpc_error(prediction.Regress, regress)
    code, message = code_and_message(error)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "does not support regress" in message
    empty = classification_pb2.ClassificationRequest()
    empty.model_spec.name, empty.model_spec.signature_name = "classify_v1", "classify_x"
    error = rpc_error(prediction.Classify, empty)
    assert code_and_message(error)[0] == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_calls_are_counted_with_rest_ones(
    server: tuple[str, str], clients: tuple[Any, Any]
) -> None:
    # Given a gRPC predict of strings (the only test that predicts `strings`)
    request = predict_request("strings", {"text": np.array([b"a"], dtype=object)})
    clients[0].Predict(request, timeout=TIMEOUT)
    # When the server's Prometheus metrics are read over REST
    page = requests.get(f"{server[1]}/monitoring/prometheus/metrics", timeout=TIMEOUT).text
    # Then the call is counted under its model, version and API, and its latency under the
    # GRPC entrypoint, as TF Serving labels it
    assert (
        ':tensorflow:serving:request_count{model_name="strings",status="OK",API="predict",'
        'version="1"} 1'
    ) in page
    assert (
        ':tensorflow:serving:request_latency_count{model_name="strings",API="predict",'
        'entrypoint="GRPC",version="1"} 1'
    ) in page


def test_reload_config_over_grpc_is_unimplemented(clients: tuple[Any, Any]) -> None:
    from tensorflow_serving.apis import model_management_pb2

    # When a client asks the ModelService to reload the config
    request = model_management_pb2.ReloadConfigRequest()
    error = rpc_error(clients[1].HandleReloadConfigRequest, request)
    # Then it is told to change the config file instead
    code, message = code_and_message(error)
    assert code == grpc.StatusCode.UNIMPLEMENTED and "--model_config_file" in message


def test_a_grpc_port_held_elsewhere_leaves_rest_serving(tmp_path: Path) -> None:
    # Given a port another program listens on
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        # When a model server is started with it as --port
        process = ServerProcess(
            "--rest_api_port=0", f"--port={port}", f"--model_base_path={tmp_path}"
        )
        try:
            url = f"http://127.0.0.1:{process.wait_for_line(PORT_LINE).group(1)}"
            # Then it says it does not serve gRPC, naming the port
            process.wait_for_line(re.compile(rf"Not serving gRPC on 127\.0\.0\.1:{port}"))
            # And REST still answers
            answer = requests.get(f"{url}/v1/models/default", timeout=TIMEOUT)
            assert answer.status_code in (200, 404)
            assert process.process.poll() is None
        finally:
            process.stop()
