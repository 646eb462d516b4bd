"""Which bodies orjson reads and which Python's json reads (modelserver/jsonbody.py): integers
that may not fit 64 bits stay exact, so the tensor conversion can refuse them; everyday float
bodies take orjson."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_modelserve.modelserver import jsonbody
from jupyter_modelserve.modelserver.jsonbody import parse_object

from .modelserver_fixtures import TIMEOUT, loaded, serve
from .tf_models import build_multi_io

pytest.importorskip("orjson")  # without it every body takes json, and there is nothing to route

BELOW_INT64 = -9223372036854775809  # 19 digits: orjson reads it as the float -9.2e18
ABOVE_INT64 = 9223372036854775808  # 19 digits
ABOVE_UINT64 = 18446744073709551616  # 20 digits: orjson reads it as a float


def only_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the json fallback fail loudly, so a body that parses was read by orjson."""

    def refuse(body: bytes) -> Any:
        raise AssertionError(f"the body went to Python's json: {body[:80]!r}")

    monkeypatch.setattr(jsonbody, "_json_loads", refuse)


@pytest.mark.parametrize("value", [BELOW_INT64, ABOVE_INT64, ABOVE_UINT64, 10**19, -(10**20)])
def test_integers_of_19_or_more_digits_stay_exact_integers(value: int) -> None:
    # Given a body holding an integer of 19 or more digits
    body = b'{"instances": [%d]}' % value
    # When it is parsed
    parsed = parse_object(body)
    # Then it is still that integer, not the float orjson would make of some of them
    (got,) = parsed["instances"]
    assert type(got) is int
    assert got == value


def test_a_float_with_19_or_more_fraction_digits_parses_as_json_reads_it() -> None:
    # Given floats whose fraction alone has 19 or more digits (a run a check for long
    # integers must not mistake for one)
    text = b'{"instances": [0.1234567890123456789012, -3.14159265358979323846264, 1.0000000000000000000001]}'  # noqa: E501
    # When parsed
    parsed = parse_object(text)
    # Then each is the float Python's json reads, of type float
    assert parsed == json.loads(text)
    assert all(type(value) is float for value in parsed["instances"])


def mlp_batch(value: Callable[[random.Random], float]) -> bytes:
    """32 rows of 784 floats, as json.dumps prints them (Python's shortest repr)."""
    rng = random.Random(12)
    rows = [[value(rng) for _ in range(784)] for _ in range(32)]
    return json.dumps({"instances": rows}).encode()


def pixel(rng: random.Random) -> float:
    return rng.randint(0, 255) / 255  # as benchmarks/ sends: 0.00392156862745098 at most 17


def uniform(rng: random.Random) -> float:
    return rng.choice([rng.random(), -rng.random() * 1e-7, float(rng.randint(0, 255))])


@pytest.mark.parametrize("value", [pixel, uniform])
def test_a_32_by_784_float_body_parses_as_json_reads_it(
    value: Callable[[random.Random], float],
) -> None:
    # Given an MLP batch of 32 rows of 784 floats
    body = mlp_batch(value)
    # When parsed
    parsed = parse_object(body)
    # Then every value is the float Python's json reads
    assert parsed == json.loads(body)


def test_a_32_by_784_batch_of_pixels_takes_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an MLP batch of pixel values scaled to [0, 1]
    body = mlp_batch(pixel)
    expected = json.loads(body)
    # When parsed with the json fallback refusing to work
    only_orjson(monkeypatch)
    parsed = parse_object(body)
    # Then orjson read it, to the same values
    assert parsed == expected


def test_a_32_by_784_batch_of_uniform_floats_takes_orjson(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an MLP batch of float64 values, some of them small (under 0.01)
    body = mlp_batch(uniform)
    expected = json.loads(body)
    # When parsed with the json fallback refusing to work
    only_orjson(monkeypatch)
    parsed = parse_object(body)
    # Then orjson read it, to the same values (no integer there needs json's exactness)
    assert parsed == expected


def test_an_18_digit_integer_still_takes_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given integers of 18 digits, which always fit int64 and orjson reads exactly
    body = b'{"instances": [999999999999999999, -999999999999999999]}'
    # When parsed with the json fallback refusing to work
    only_orjson(monkeypatch)
    parsed = parse_object(body)
    # Then orjson read them as the exact integers
    assert parsed == {"instances": [999999999999999999, -999999999999999999]}


# -- through a real model server --------------------------------------------------------------


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server with multi_io: inputs `a` float32 [-1, 2] and `b` int64 [-1]."""
    base: Path = tmp_path_factory.mktemp("jsonbody-models") / "multi_io"
    build_multi_io(base / "1")
    with loaded({"multi_io": base}) as manager, serve(manager) as base_url:
        yield base_url


def predict_b(url: str, b: int) -> requests.Response:
    body = json.dumps({"instances": [{"a": [1, 2], "b": b}]})  # json writes an int exactly
    return requests.post(url + "/v1/models/multi_io:predict", data=body, timeout=TIMEOUT)


def test_one_below_int64s_minimum_is_refused_naming_the_range(url: str) -> None:
    # Given a model with an int64 input
    # When a client sends int64's minimum less one (which orjson reads as a float, and a float
    # -9.2e18 converts to int64's minimum: a wrong prediction, silently)
    response = predict_b(url, BELOW_INT64)
    # Then it is a 400 naming the range
    assert response.status_code == 400, response.text
    assert response.json() == {"error": "Input 'b': a value is out of range for int64"}


def test_int64s_minimum_itself_is_predicted_exactly(url: str) -> None:
    # Given the same model
    # When a client sends int64's minimum (19 digits: it now takes json)
    response = predict_b(url, -9223372036854775808)
    # Then it is accepted, and the echoed label is exactly that integer
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert prediction["label_bytes"] == {"b64": "LTkyMjMzNzIwMzY4NTQ3NzU4MDg="}  # its digits
