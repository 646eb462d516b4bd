"""The predict fast path: orjson in and out, finite floats written from the array, the loaded
signature called with its flat inputs; and what must still take the careful way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jupyter_modelserve.modelserver.manager import ModelManager
from jupyter_modelserve.modelserver.routes import Api
from jupyter_modelserve.modelserver.servable import DirectCall

from .modelserver_fixtures import build_all, loaded

PREDICT = "/v1/models/half_plus_two:predict"


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelManager]:
    bases: dict[str, Path] = build_all(tmp_path_factory.mktemp("fastpath-models"))
    with loaded(bases) as manager:
        yield manager


@pytest.fixture(scope="module")
def api(manager: ModelManager) -> Api:
    return Api(manager)


def test_finite_float32_predictions_are_written_by_orjson_as_tf_serving_prints_them(
    api: Api,
) -> None:
    # Given half_plus_two (y = 0.5x + 2 in float32)
    # When predicting values whose float32 results have short decimal forms, and one (0.2)
    # whose float32 result reads 2.1 only when printed as the shortest float32 text
    status, body = api.handle("POST", PREDICT, b'{"instances": [1.0, 2.0, 5.0, 0.2]}')
    # Then the answer is orjson's compact text (json.dumps would add spaces), with 2.1 printed
    # as TF Serving prints it rather than as the float64 2.0999999046325684
    assert status == 200
    assert body == b'{"predictions":[2.5,3.0,4.5,2.1]}'


def test_nan_and_infinities_still_print_as_tf_serving_prints_them(api: Api) -> None:
    # Given half_plus_two
    # When the outputs hold NaN and the infinities (orjson would write them as null)
    status, body = api.handle("POST", PREDICT, b'{"inputs": [NaN, Infinity, -Infinity, 2]}')
    # Then they are written as TF Serving writes them, and the finite value beside them too
    assert status == 200, body
    assert body.replace(b" ", b"") == b'{"outputs":[NaN,Infinity,-Infinity,3.0]}'


def test_several_outputs_in_rows_and_columns_answer_as_before(api: Api) -> None:
    # Given multi_io, whose outputs are a float32 `total` and a string `label_bytes`
    body = b'{"instances": [{"a": [1, 2], "b": 3}, {"a": [0.5, 0.5], "b": -1}]}'
    # When predicting in row form and in columnar form
    rows_status, rows = api.handle("POST", "/v1/models/multi_io:predict", body)
    columns_body = b'{"inputs": {"a": [[1, 2], [0.5, 0.5]], "b": [3, -1]}}'
    columns_status, columns = api.handle("POST", "/v1/models/multi_io:predict", columns_body)
    # Then both carry the same values, bytes as base64 objects
    assert (rows_status, columns_status) == (200, 200)
    assert json.loads(rows) == {
        "predictions": [
            {"label_bytes": {"b64": "Mw=="}, "total": 6.0},
            {"label_bytes": {"b64": "LTE="}, "total": 0.0},
        ]
    }
    assert json.loads(columns) == {
        "outputs": {"label_bytes": [{"b64": "Mw=="}, {"b64": "LTE="}], "total": [6.0, 0.0]}
    }


def test_bodies_orjson_refuses_still_parse_or_fail_as_before(api: Api) -> None:
    # Given half_plus_two
    # When a body holds what only Python's json reads (NaN), or nothing JSON at all
    nan_status, nan_body = api.handle("POST", PREDICT, b'{"instances": [NaN]}')
    bad_status, bad_body = api.handle("POST", PREDICT, b'{"instances": [1.0,')
    # Then NaN is accepted as TF Serving accepts it, and the broken body gets a parse error
    assert nan_status == 200, nan_body
    assert bad_status == 400
    assert json.loads(bad_body)["error"].startswith("JSON Parse error")


def test_the_loaded_signature_is_called_with_its_flat_inputs(manager: ModelManager) -> None:
    # Given loaded models with one input (half_plus_two) and two named inputs (multi_io)
    import tensorflow as tf

    for name, inputs in {
        "half_plus_two": {"x": tf.constant([1.0, 3.0])},
        "multi_io": {"a": tf.constant([[1.0, 2.0]]), "b": tf.constant([4], tf.int64)},
    }.items():
        servable = manager.servable(name)
        _, function = servable.signature(None)
        caller = DirectCall(function)
        # When calling the signature through its caller and in the ordinary way
        direct = caller(inputs)
        ordinary = function(**inputs)
        # Then the caller skipped the argument binding, and the answers are the same
        assert caller.direct, name
        assert direct.keys() == ordinary.keys()
        for key in direct:
            np.testing.assert_array_equal(direct[key].numpy(), ordinary[key].numpy())
