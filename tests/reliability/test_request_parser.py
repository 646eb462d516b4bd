"""The control API's request parser on its own (no server, milliseconds per case).

Whatever arrives, in whatever chunks, it ends as a parsed request model or as an InvalidInput
(400) / PayloadTooLarge (413) whose message names the problem: never another exception, which
the Jupyter server would answer with a 500.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_modelserve.errors import InvalidInput, PayloadTooLarge
from jupyter_modelserve.handlers.body import BodyBuffer, parse_json_body
from jupyter_modelserve.schemas import (
    MAX_NAME_LENGTH,
    MAX_TAG_LENGTH,
    ModelVersionCreate,
    ModelVersionUpdate,
    RegisteredModelCreate,
    RegisteredModelUpdate,
    ServeRequest,
    parse_request,
    validate_model_name,
    validate_tag,
    validate_version,
)

from ..conftest import SEED_BODY
from . import tally

LIMIT = 64 * 1024  # max_request_bytes' default
MODELS = (
    ServeRequest,
    RegisteredModelCreate,
    RegisteredModelUpdate,
    ModelVersionCreate,
    ModelVersionUpdate,
)
# Every character str.splitlines() breaks on, NUL, DEL, and a lone surrogate (unstorable).
LINE_BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
HOSTILE_CHARACTERS = [*LINE_BREAKS, "\x00", "\x01", "\x1b", "\x7f", "\x9b", "\ud800"]
# The name rule as written in the design, with \A...\Z: the reference the validator must equal.
NAME_RULE = re.compile(r"\A[0-9A-Za-z](?:[0-9A-Za-z_-]*[0-9A-Za-z])?\Z")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
PARSER = settings(
    max_examples=1000,
    deadline=None,  # a shared 2-core machine: timing is not what these tests check
    derandomize=True,  # the same cases on every run, in CI too
    suppress_health_check=[HealthCheck.too_slow],
)


def read(model: type[Any], body: bytes, chunk_size: int = 4096, limit: int = LIMIT) -> Any:
    """What a handler does with a body: bounded collection, JSON, then the request model."""
    buffer = BodyBuffer(limit, "c.ModelServeApp.max_request_bytes")
    buffer.declare(str(len(body)))
    for start in range(0, len(body), chunk_size):
        buffer.add(body[start : start + chunk_size])
    return parse_request(model, parse_json_body(buffer.body, "its fields"))


def read_or_refuse(model: type[Any], body: bytes, **options: Any) -> Any:
    """The parsed model, or the 400/413 error; anything else escapes and fails the test."""
    try:
        return read(model, body, **options)
    except (InvalidInput, PayloadTooLarge) as error:
        assert error.message and "\n" not in error.message, error.message
        return error


# -- the table of bad serve bodies (once end-to-end cases, one Jupyter server each) -------------

BAD_SERVE_BODIES = [
    ("", "request body is empty"),
    ("   ", "request body is empty"),
    ("{not json", "request body is not valid JSON"),
    ("[1, 2]", "request body must be a JSON object"),
    ('{"modelVersion": 1}', "modelName: is required"),
    ('{"modelName": "simple"}', "modelVersion: is required"),
    ('{"modelName": 7, "modelVersion": 1}', "modelName: must be a string"),
    ('{"modelName": "bad name!", "modelVersion": 1}', "modelName: 'bad name!' is not a valid"),
    ('{"modelName": "evil\\n", "modelVersion": 1}', "modelName: 'evil\\n' is not a valid"),
    ('{"modelName": "simple", "modelVersion": 0}', "modelVersion: must be a positive integer"),
    ('{"modelName": "simple", "modelVersion": -1}', "modelVersion: must be a positive integer"),
    ('{"modelName": "simple", "modelVersion": "abc"}', "modelVersion: must be a positive integer"),
    ('{"modelName": "simple", "modelVersion": "1\\n"}', "modelVersion: must be a positive"),
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
    ('{"modelName": "simple", "modelVersion": 1' + "0" * 5000 + "}", "more than 4300 digits"),
    ('{"modelName": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
]


@pytest.mark.parametrize(("body", "message"), BAD_SERVE_BODIES)
def test_a_bad_serve_body_is_an_invalid_input_naming_the_problem(body: str, message: str) -> None:
    # Given a bad body of POST or DELETE /api/v1/serve
    tally.bad_input()
    # When it is read
    with pytest.raises(InvalidInput) as caught:
        read(ServeRequest, body.encode())
    # Then the error names the problem
    assert message in caught.value.message


def test_submarine_bodies_with_a_trailing_comma_still_parse() -> None:
    # Given Submarine's documented body (a trailing comma) and strict JSON with ", }" in a string
    quirky = read(ServeRequest, SEED_BODY.encode())
    strict = read(RegisteredModelCreate, b'{"name": "a", "description": "x, }", }')
    # Then both parse, and the repair never touches what is inside a string
    assert (quirky.model_name, quirky.model_version) == ("simple", 1)
    assert strict.description == "x, }"


@pytest.mark.parametrize("character", HOSTILE_CHARACTERS, ids=repr)
def test_names_versions_and_tags_with_control_characters_are_refused(character: str) -> None:
    # Given a name, a version and a tag that carry the character first, inside or last
    for value in (f"evil{character}", f"{character}evil", f"ev{character}il"):
        tally.bad_input(4)
        # When each is checked, directly and inside a JSON body (escaped as JSON would)
        with pytest.raises(InvalidInput, match=r"^name: .*U\+"):
            validate_model_name(value)
        with pytest.raises(InvalidInput, match=r"^tag: .*U\+"):
            validate_tag(value)
        with pytest.raises(InvalidInput, match=r"^version: must be a positive integer"):
            validate_version(value.replace("evil", "1").replace("ev", "1").replace("il", "2"))
        body = json.dumps({"modelName": value, "modelVersion": 1}).encode()
        # Then every one is refused, and the message shows the character escaped
        with pytest.raises(InvalidInput, match=r"^modelName: '.*\\.*' is not a valid model name"):
            read(ServeRequest, body)


def test_names_are_bounded_so_they_are_always_file_names() -> None:
    longest = "a" * MAX_NAME_LENGTH
    assert validate_model_name(longest) == longest
    assert len(longest.encode()) <= 255  # NAME_MAX of every common file system
    tally.bad_input()
    with pytest.raises(InvalidInput, match=f"it has {MAX_NAME_LENGTH + 1} characters"):
        validate_model_name(longest + "a")


def test_a_declared_or_streamed_body_over_the_limit_is_refused_before_it_is_kept() -> None:
    tally.bad_input(3)
    # Given a 10 MB body: its Content-Length alone refuses it
    with pytest.raises(PayloadTooLarge, match="request body is 10000000 bytes; at most 65536"):
        BodyBuffer(LIMIT, "c.ModelServeApp.max_request_bytes").declare("10000000")
    # A Content-Length of 5,000 digits (int() would refuse it) is refused the same way
    with pytest.raises(PayloadTooLarge, match="5000-digit"):
        BodyBuffer(LIMIT, "c.ModelServeApp.max_request_bytes").declare("9" * 5000)
    # A chunked body is refused on the chunk that passes the limit, and nothing is kept
    buffer = BodyBuffer(LIMIT, "c.ModelServeApp.max_request_bytes")
    buffer.add(b"x" * LIMIT)
    with pytest.raises(PayloadTooLarge, match="max_request_bytes"):
        buffer.add(b"x")
    assert buffer.body == b""


# -- Hypothesis: arbitrary bodies ----------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=300),
    st.builds(
        lambda head, bad, tail: head + bad + tail,
        st.text(alphabet=string.ascii_letters, max_size=8),
        st.sampled_from(HOSTILE_CHARACTERS),
        st.text(alphabet=string.ascii_letters, max_size=8),
    ),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=4000, max_value=9000).map(lambda n: int("7" * n) if n <= 4300 else n),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=20,
)
FIELDS = sorted(
    {field.alias or name for model in MODELS for name, field in model.model_fields.items()}
)


@st.composite
def request_bodies(draw: st.DrawFn) -> bytes:
    """JSON objects with the models' own field names (mostly) and arbitrary values."""
    keys = st.sampled_from(FIELDS) | hostile_text
    data = draw(st.dictionaries(keys, json_values, max_size=6))
    text = json.dumps(data, allow_nan=True)
    if draw(st.booleans()):  # Submarine-style trailing comma before the closing brace
        text = text[:-1].rstrip() + ", }" if len(text) > 2 else text
    return text.encode()


@PARSER
@given(model=st.sampled_from(MODELS), body=request_bodies(), chunk_size=st.integers(1, 5000))
def test_any_json_object_becomes_a_model_or_a_named_400(
    model: type[Any], body: bytes, chunk_size: int
) -> None:
    tally.bad_input()
    outcome = read_or_refuse(model, body, chunk_size=chunk_size)
    if isinstance(outcome, InvalidInput | PayloadTooLarge):
        return
    # Whatever was accepted obeys the rules the database and the file system rely on.
    for field in ("name", "model_name"):
        value = getattr(outcome, field, None)
        if value is not None:
            assert NAME_RULE.match(value) and len(value) <= MAX_NAME_LENGTH, value
    for tag in getattr(outcome, "tags", []):
        assert not CONTROL.search(tag) and 0 < len(tag) <= MAX_TAG_LENGTH, tag
    version = getattr(outcome, "model_version", None)
    if version is not None:
        assert isinstance(version, int) and 0 < version <= 2**31 - 1


@PARSER
@given(body=st.binary(max_size=2000), chunk_size=st.integers(1, 100))
def test_any_bytes_become_json_or_a_named_400(body: bytes, chunk_size: int) -> None:
    tally.bad_input()
    read_or_refuse(ServeRequest, body, chunk_size=chunk_size)


@PARSER
@given(
    depth=st.integers(1, 30_000),
    opener=st.sampled_from(["[", '{"a": ', '{"modelName": [', '[{"x": ']),
    trailing_comma=st.booleans(),
)
def test_deep_nesting_is_parsed_or_refused_as_too_deep(
    depth: int, opener: str, trailing_comma: bool
) -> None:
    tally.bad_input()
    closer = "".join("]" if c == "[" else "}" for c in opener if c in "[{")[::-1]
    inner = "1" + (", " if trailing_comma else "")
    body = (opener * depth + inner + closer * depth).encode()
    # (a limit that lets every such body through to the parser)
    outcome = read_or_refuse(ServeRequest, body, chunk_size=65536, limit=len(body))
    if depth > 2000:  # far beyond the decoder's recursion limit
        assert isinstance(outcome, InvalidInput)
        assert "nested too deeply" in outcome.message


@PARSER
@given(
    digits=st.integers(4301, 60_000),
    sign=st.sampled_from(["", "-"]),
    field=st.sampled_from(["modelVersion", "modelName", "x"]),
)
def test_huge_integers_are_a_400_naming_the_digits(digits: int, sign: str, field: str) -> None:
    tally.bad_input()
    body = f'{{"modelName": "a", "modelVersion": 1, "{field}": {sign}{"9" * digits}}}'.encode()
    outcome = read_or_refuse(ServeRequest, body, chunk_size=65536, limit=len(body))
    assert isinstance(outcome, InvalidInput)
    assert "more than 4300 digits" in outcome.message


@PARSER
@given(name=hostile_text)
def test_the_name_check_is_exactly_the_full_match_rule(name: str) -> None:
    tally.bad_input()
    expected = bool(NAME_RULE.match(name)) and len(name) <= MAX_NAME_LENGTH
    try:
        accepted = validate_model_name(name) == name
    except InvalidInput as error:
        accepted = False
        assert error.message.startswith("name: ") and "\n" not in error.message
    assert accepted == expected


@PARSER
@given(
    chunks=st.lists(st.binary(min_size=0, max_size=3000), max_size=40),
    limit=st.integers(0, 20_000),
    declared=st.booleans(),
)
def test_a_body_is_never_kept_beyond_its_limit(
    chunks: list[bytes], limit: int, declared: bool
) -> None:
    total = sum(map(len, chunks))
    buffer = BodyBuffer(limit, "c.ModelServeApp.max_request_bytes")
    refused = False
    try:
        if declared:
            buffer.declare(str(total))
        for chunk in chunks:
            buffer.add(chunk)
            assert len(buffer.body) <= limit
    except PayloadTooLarge as error:
        refused = True
        assert "max_request_bytes" in error.message and buffer.body == b""
    assert refused == (total > limit)
    if not refused:
        assert buffer.body == b"".join(chunks)
