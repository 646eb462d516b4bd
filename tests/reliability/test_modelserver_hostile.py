"""The built-in model server under hostile requests: web pages, odd hosts, bodies built to break.

Its REST port has no authentication, so it must refuse what a web page can send (DNS-rebound
Host names, form POSTs, cross-site Origins), bound what any client can send (body size), and
answer every predict body, however deep, huge, non-numeric or malformed, with 200 or a 4xx in
TF Serving's `{"error": "..."}` form: never a 5xx, a crash or a hang. Predict bodies are fuzzed
with Hypothesis in-process through `Api.handle` for volume, and over real HTTP against the
server process.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_modelserve.modelserver.guard import (
    DEFAULT_MAX_BODY_BYTES,
    LOOPBACK_HOSTS,
    RequestPolicy,
    host_name,
)
from jupyter_modelserve.modelserver.manager import ModelManager
from jupyter_modelserve.modelserver.routes import Api

from ..modelserver_fixtures import (
    ServerProcess,
    build_all,
    loaded,
    serve,
    state_of,
    wait_for,
)
from . import tally

# A predict on these tiny models takes milliseconds; anything near this is a hang.
CALL_BOUND_S = 10.0
CAP = 65536  # the body limit the server process is started with
PREDICT = "/v1/models/half_plus_two:predict"
GOOD_BODY = b'{"instances": [1.0, 2.0, 5.0]}'
GOOD_ANSWER = {"predictions": [2.5, 3.0, 4.5]}
JSON = {"Content-Type": "application/json"}


# -- fixtures: real SavedModels, served in-process and by the server process -------------------


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_all(tmp_path_factory.mktemp("hostile-models"))


@pytest.fixture(scope="module")
def manager(bases: dict[str, Path]) -> Iterator[ModelManager]:
    with loaded(bases) as manager:
        yield manager


@pytest.fixture(scope="module")
def api(manager: ModelManager) -> Api:
    return Api(manager)


@pytest.fixture(scope="module")
def url(manager: ModelManager) -> Iterator[str]:
    """The REST API over real HTTP with the default policy (loopback only, 64 MiB)."""
    with serve(manager) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def process_url(bases: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m jupyter_modelserve.modelserver` with a wider host list and a small body cap."""
    base = tmp_path_factory.mktemp("hostile-process") / "half_plus_two"
    shutil.copytree(bases["half_plus_two"], base)
    server = ServerProcess(
        "--rest_api_port=0",
        "--model_name=half_plus_two",
        f"--model_base_path={base}",
        "--rest_api_allowed_hosts=models.example, *.corp.example",
        f"--rest_api_max_body_bytes={CAP}",
    )
    try:
        base_url = server.base_url()
        wait_for(lambda: state_of(base_url, "half_plus_two", 1) == "AVAILABLE", what="AVAILABLE")
        yield base_url
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def bounded() -> Iterator[ThreadPoolExecutor]:
    """Runs in-process calls on a thread so a hang fails the test instead of stalling it."""
    with ThreadPoolExecutor(1, thread_name_prefix="hostile-call") as pool:
        yield pool


def call(api: Api, bounded: ThreadPoolExecutor, path: str, body: bytes) -> tuple[int, Any]:
    """POST `body` through `Api.handle` within CALL_BOUND_S; (status, decoded JSON answer)."""
    started = time.monotonic()
    status, payload = bounded.submit(api.handle, "POST", path, body).result(CALL_BOUND_S)
    assert time.monotonic() - started < CALL_BOUND_S
    tally.bad_input()
    return status, json.loads(payload)


def post(base_url: str, path: str, body: bytes, **headers: str) -> requests.Response:
    response = requests.post(base_url + path, data=body, headers=headers, timeout=CALL_BOUND_S)
    tally.requests()
    return response


def assert_answer_shape(status: int, answer: Any) -> None:
    """200, or a 4xx whose body is exactly TF Serving's {"error": "<message>"}."""
    if status >= 500:
        tally.server_error()
    assert status == 200 or 400 <= status < 500, (status, answer)
    if status != 200:
        assert isinstance(answer, dict) and set(answer) == {"error"}, answer
        assert isinstance(answer["error"], str) and answer["error"], answer


def error_of(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    answer = response.json()
    assert set(answer) == {"error"}
    message: str = answer["error"]
    return message


# -- Host allow-list: DNS rebinding ------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8501",
        "localhost.evil.example",
        "127.0.0.1.evil.example",
        "LOCALHOST.evil.example:80",
        "[::2]:8501",
        "127.0.0.2",
        "localhost.",
        "",
    ],
)
def test_a_host_that_is_not_loopback_is_refused(url: str, host: str) -> None:
    # Given the server with its default policy
    # When a page whose DNS name was rebound to 127.0.0.1 asks for status and a prediction
    status = requests.get(url + "/v1/models/half_plus_two", headers={"Host": host}, timeout=5)
    predict = post(url, PREDICT, GOOD_BODY, Host=host, **JSON)
    tally.bad_input(2)
    # Then both are 403 naming the host and the flag that would allow it
    for response in (status, predict):
        message = error_of(response, 403)
        assert f"Host '{host}' is not allowed" in message
        assert "--rest_api_allowed_hosts" in message and "DNS rebinding" in message


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:8501",
        "LocalHost:1",
        "127.0.0.1",
        "127.0.0.1:8501",
        "[::1]",
        "[::1]:8501",
        "[0:0:0:0:0:0:0:1]:8501",
    ],
)
def test_loopback_hosts_with_or_without_a_port_are_answered(url: str, host: str) -> None:
    # Given the server with its default policy
    # When a client names a loopback host, in any case, with or without a port
    response = post(url, PREDICT, GOOD_BODY, Host=host, **JSON)
    # Then it predicts
    assert response.status_code == 200, response.text
    assert response.json() == GOOD_ANSWER


def test_the_allowed_hosts_flag_widens_the_list(process_url: str) -> None:
    # Given the server process started with --rest_api_allowed_hosts=models.example,*.corp.example
    # When clients name those hosts, hosts under the wildcard, loopback and others
    def status_for(host: str) -> int:
        return post(process_url, PREDICT, GOOD_BODY, Host=host, **JSON).status_code

    # Then the listed names, names under the wildcard and loopback names are answered
    for host in ("models.example", "MODELS.example:8501", "a.corp.example", "x.y.corp.example:1"):
        assert status_for(host) == 200, host
    assert status_for("localhost:8501") == 200
    # And the wildcard's own domain and other names are still refused, naming the allowed ones
    for host in ("corp.example", "evil.example", "models.example.evil", "acorp.example"):
        assert status_for(host) == 403, host
    tally.bad_input(4)
    message = error_of(post(process_url, PREDICT, GOOD_BODY, Host="evil.example", **JSON), 403)
    assert "models.example" in message and "*.corp.example" in message


def test_a_star_allows_any_host(manager: ModelManager) -> None:
    # Given a server started with --rest_api_allowed_hosts=*
    with serve(manager, RequestPolicy.build(extra_hosts=["*"])) as star_url:
        # When a client names any host
        response = post(star_url, PREDICT, GOOD_BODY, Host="anything.example", **JSON)
        # Then it is answered
        assert response.status_code == 200, response.text


@given(st.text(max_size=40))
@settings(max_examples=200, deadline=None, derandomize=True, database=None)
def test_any_host_header_is_judged_without_error(header: str) -> None:
    # Given the default policy
    policy = RequestPolicy()
    # When any text arrives as a Host header
    from tornado.httputil import HTTPHeaders

    refusal = policy.refusal("GET", HTTPHeaders({"Host": header}))
    tally.bad_input()
    # Then it is allowed exactly when it names a loopback host, and refused with a 403 otherwise
    if host_name(header) in LOOPBACK_HOSTS:
        assert refusal is None
    else:
        assert refusal is not None and refusal.http_status == 403


# -- browser simple requests: content types and Origin -----------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "Text/Plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=----x",
    ],
)
def test_simple_request_content_types_are_refused(url: str, content_type: str) -> None:
    # Given the server
    # When a POST carries a content type a web page may send cross-site without a preflight
    response = post(url, PREDICT, GOOD_BODY, **{"Content-Type": content_type})
    tally.bad_input()
    # Then it is 415, naming the type and how to send JSON instead
    message = error_of(response, 415)
    assert f"Content-Type '{content_type}'" in message
    assert "send Content-Type: application/json" in message.replace("Send", "send")
    assert "-H 'Content-Type: application/json'" in message


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"Content-Type": "application/json; charset=utf-8"},
        {"Content-Type": "APPLICATION/JSON"},
        {},  # python requests' data=... sends no Content-Type at all
    ],
)
def test_json_and_untyped_posts_are_accepted(url: str, headers: dict[str, str]) -> None:
    # Given the server
    # When a POST sends JSON, with or without a charset, or with no Content-Type
    response = post(url, PREDICT, GOOD_BODY, **headers)
    # Then it predicts
    assert response.status_code == 200, response.text
    assert response.json() == GOOD_ANSWER


def test_curl_d_without_a_content_type_is_refused_with_the_fix(url: str) -> None:
    # Given the server, and curl's -d, which sends application/x-www-form-urlencoded
    # When the README's old command line is used
    response = post(
        url, PREDICT, GOOD_BODY, **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    tally.bad_input()
    # Then the answer says exactly what to add
    assert "with curl: -H 'Content-Type: application/json'" in error_of(response, 415)


@pytest.mark.parametrize(
    ("origin", "headers"),
    [
        ("http://evil.example", JSON),
        ("https://evil.example:8443", JSON),
        ("http://evil.example", {}),  # fetch() of an untyped Blob: no Content-Type at all
        ("null", {}),  # sandboxed frames and file:// pages
        ("http://localhost.evil.example", JSON),
    ],
)
def test_a_post_from_another_sites_page_is_refused(
    url: str, origin: str, headers: dict[str, str]
) -> None:
    # Given the server
    # When a page of another site POSTs a prediction
    response = post(url, PREDICT, GOOD_BODY, Origin=origin, **headers)
    tally.bad_input()
    # Then it is 403 naming the Origin and the flag
    message = error_of(response, 403)
    assert f"Origin '{origin}' is not allowed" in message
    assert "--rest_api_allowed_hosts" in message


def test_a_post_from_a_loopback_page_or_an_allowed_host_is_answered(
    url: str, process_url: str
) -> None:
    # Given the default server and the process that allows models.example
    # When pages on loopback hosts, or on an allowed host, POST JSON
    local = post(url, PREDICT, GOOD_BODY, Origin="http://localhost:8888", **JSON)
    allowed = post(process_url, PREDICT, GOOD_BODY, Origin="https://models.example", **JSON)
    # Then they are answered
    assert local.status_code == 200, local.text
    assert allowed.status_code == 200, allowed.text


def test_a_refused_post_leaves_the_connection_usable(url: str) -> None:
    # Given one keep-alive connection
    with requests.Session() as session:
        # When a refused POST is followed by a good one on it
        refused = session.post(
            url + PREDICT, data=GOOD_BODY, headers={"Content-Type": "text/plain"}, timeout=5
        )
        good = session.post(url + PREDICT, data=GOOD_BODY, headers=JSON, timeout=5)
        tally.requests(2)
        tally.bad_input()
    # Then the second is answered normally
    assert refused.status_code == 415 and good.status_code == 200


def test_a_refused_request_with_a_large_body_is_refused_for_what_it_is(
    url: str, process_url: str
) -> None:
    # Given the default server and the process with a 64 KiB limit
    big = b'{"instances": [' + b"1.0," * 250_000 + b"1.0]}"  # 1 MB
    # When a request that is refused on its headers also carries a large body
    rebound = post(url, PREDICT, big, Host="evil.example", **JSON)
    form = post(url, PREDICT, big, **{"Content-Type": "text/plain"})
    over_cap = post(process_url, PREDICT, big, Host="evil.example", **JSON)
    tally.bad_input(3)
    # Then each is refused for its headers (answered before the body is read), not for size
    assert "Host 'evil.example'" in error_of(rebound, 403)
    assert "Content-Type 'text/plain'" in error_of(form, 415)
    assert "Host 'evil.example'" in error_of(over_cap, 403)


# -- body size ---------------------------------------------------------------------------------


def test_the_default_body_limit_is_64_mib() -> None:
    # Given no flag, Then the limit is TF Serving-sized: 64 MiB
    assert RequestPolicy().max_body_bytes == DEFAULT_MAX_BODY_BYTES == 64 * 1024 * 1024


def test_a_body_over_the_limit_is_413_before_it_is_read(process_url: str) -> None:
    # Given the server process started with --rest_api_max_body_bytes=65536
    over = b'{"instances": [' + b"1.0," * (CAP // 4) + b"1.0]}"
    # When a client declares a larger body (and one ten times the limit)
    for body in (over, over * 10):
        response = post(process_url, PREDICT, body, **JSON)
        tally.bad_input()
        # Then it is 413 in TF Serving's form, naming the limit and the flag
        message = error_of(response, 413)
        assert str(CAP) in message and "--rest_api_max_body_bytes" in message
    # And a body just within the limit is parsed as usual
    within = b'{"instances": [' + b"1.0," * (CAP // 4 - 10) + b"1.0]}"
    assert len(within) <= CAP
    assert post(process_url, PREDICT, within, **JSON).status_code == 200


def test_a_chunked_body_that_grows_past_the_limit_is_413(process_url: str) -> None:
    # Given the server process with a 64 KiB limit
    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(CAP // 4096 + 2):
            yield b"1.0," * 1024
        yield b"1.0]}"

    # When a client streams a body with no Content-Length that ends up larger
    response = post(process_url, PREDICT, chunks(), **JSON)  # type: ignore[arg-type]
    tally.bad_input()
    # Then it is 413 too
    assert "--rest_api_max_body_bytes" in error_of(response, 413)
    # And the server still answers
    assert post(process_url, PREDICT, GOOD_BODY, **JSON).json() == GOOD_ANSWER


# -- hostile predict bodies, one of each kind --------------------------------------------------


def nested(depth: int, leaf: str = "1.0") -> str:
    return "[" * depth + leaf + "]" * depth


HOSTILE: list[tuple[str, str | bytes, str, list[str]]] = [
    (PREDICT, b'\xff{"instances": [1.0]}', "not UTF-8", ["JSON Parse error", "UTF-8"]),
    # (path, body, why, words the 400 must contain)
    (PREDICT, '{"instances": ' + nested(100_000) + "}", "deep", ["nesting too deep"]),
    (PREDICT, '{"inputs": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001, "deep", ["too deep"]),
    (PREDICT, '{"instances": ' + nested(500) + "}", "rank 500", ["'x'"]),
    ("/v1/models/strings:predict", '{"instances": ' + nested(500, '"a"') + "}", "", ["'text'"]),
    (PREDICT, '{"instances": [' + "9" * 5000 + "]}", "5000 digits", ["4300 digits"]),
    (PREDICT, '{"instances": [' + "9" * 400 + "]}", "past float64", ["'x'", "out of range"]),
    (PREDICT, '{"instances": [1e300]}', "past float32", ["'x'", "out of range"]),
    (PREDICT, '{"instances": [1, [2]]}', "ragged", ["'x'"]),
    (PREDICT, '{"instances": [[1.0], [2.0, 3.0]]}', "ragged", ["'x'"]),
    (PREDICT, '{"instances": []}', "empty", ["non-empty"]),
    (PREDICT, '{"inputs": [[]]}', "empty rows", ["'x'", "shape"]),
    (PREDICT, '{"instances": ["one"]}', "string for float", ["'x'"]),
    (PREDICT, '{"instances": [null]}', "null", ["'x'"]),
    (PREDICT, '{"instances": [true]}', "bool for float", ["'x'"]),
    (PREDICT, '{"instances": [{"b64": "AAAA"}]}', "b64 for float", ["'x'"]),
    (PREDICT, '{"instances": "1.0"}', "not a list", ["'instances'"]),
    (PREDICT, '{"instances": [1.0], "signature_name": 7}', "", ["signature_name"]),
    (PREDICT, '{"instances": [1.0], "inputs": [1.0]}', "both", ["only one"]),
    (PREDICT, "[1.0]", "not an object", ["Is not object"]),
    (PREDICT, '{"instances": [1.0]', "truncated", ["JSON Parse error"]),
    (PREDICT, '{"instances": ["\udcff"]}', "surrogate bytes", ["'x'"]),
    ("/v1/models/strings:predict", '{"instances": ["\\ud800"]}', "lone surrogate", ["Unicode"]),
    ("/v1/models/strings:predict", '{"instances": [{"b64": "@@"}]}', "bad b64", ["base64"]),
    ("/v1/models/strings:predict", '{"instances": [{"b64": 5}]}', "b64 number", ["b64"]),
    ("/v1/models/strings:predict", '{"instances": [{"b64": "é"}]}', "b64 non-ascii", ["base64"]),
    ("/v1/models/strings:predict", '{"instances": ["a", ["b"]]}', "ragged", ["'text'"]),
    (
        "/v1/models/multi_io:predict",
        '{"inputs": {"a": [[1, 2]], "b": [9223372036854775808]}}',
        "past int64",
        ["'b'", "out of range"],
    ),
    (
        "/v1/models/multi_io:predict",
        '{"inputs": {"a": [[1, 2]], "b": [' + "1" * 60 + "]}}",
        "past uint64",
        ["'b'", "out of range"],
    ),
    ("/v1/models/multi_io:predict", '{"inputs": {"a": [[1, 2]], "b": [NaN]}}', "", ["'b'"]),
    (
        "/v1/models/classify_v1:regress",
        '{"examples": [{"x": ' + "9" * 30 + '}, {"x": [1, ' + "9" * 400 + "]}]}",
        "int64 feature",
        ["'x'", "out of range"],
    ),
    (
        "/v1/models/classify_v1:regress",
        '{"examples": [{"x": [1.5, 1e300]}]}',
        "float32 feature",
        ["'x'", "out of range"],
    ),
    ("/v1/models/classify_v1:regress", '{"examples": [{"\\udc00": 1.0}]}', "", ["Unicode"]),
    ("/v1/models/classify_v1:regress", '{"examples": [{"x": ["\\ud800"]}]}', "", ["Unicode"]),
    ("/v1/models/classify_v1:regress", '{"examples": [' + nested(300) + "]}", "", ["Example 0"]),
]


@pytest.mark.parametrize(("path", "body", "why", "words"), HOSTILE)
def test_each_kind_of_hostile_body_is_a_400_that_names_it(
    api: Api, bounded: ThreadPoolExecutor, path: str, body: str | bytes, why: str, words: list[str]
) -> None:
    # Given a loaded model
    # When a body built to break the parser or the tensor conversion is posted
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    status, answer = call(api, bounded, path, raw)
    # Then it is a 400 in TF Serving's form whose message names the problem
    assert status == 400, (why, answer)
    assert_answer_shape(status, answer)
    for word in words:
        assert word in answer["error"], (why, answer)


def test_nan_infinity_and_unicode_are_accepted(api: Api, bounded: ThreadPoolExecutor) -> None:
    # Given the models
    # When NaN and the infinities are sent as floats, and non-ASCII text as strings
    status, answer = call(api, bounded, PREDICT, b'{"inputs": [NaN, Infinity, -Infinity, 2]}')
    text = "héllo ✓ 𝄞"
    body = json.dumps({"instances": [text]}, ensure_ascii=False).encode()
    s_status, s_answer = call(api, bounded, "/v1/models/strings:predict", body)
    # Then they predict, as TF Serving does
    assert status == 200 and math.isnan(answer["outputs"][0])
    assert answer["outputs"][1:] == [math.inf, -math.inf, 3.0]
    upper = "".join(c.upper() if c.isascii() else c for c in text)  # tf.strings.upper: ASCII
    assert s_status == 200 and s_answer["predictions"][0]["upper"] == upper


# -- Hypothesis: random predict bodies ---------------------------------------------------------

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
TEXT = st.text(st.one_of(st.characters(), SURROGATES), max_size=12)
B64 = st.one_of(
    st.binary(max_size=12).map(lambda b: {"b64": base64.b64encode(b).decode()}),
    st.fixed_dictionaries({"b64": st.one_of(TEXT, st.integers(), st.none())}),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),  # past every dtype
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e308, max_value=1e308).map(lambda f: f * 1e10),  # may pass float32
    TEXT,
    B64,
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(TEXT, st.sampled_from(["x", "a", "b", "text"])), children, max_size=4
        ),
    ),
    max_leaves=25,
)
# Lists that are rectangular, so the fuzzer also reaches the model itself.
TENSORS = st.integers(0, 3).flatmap(
    lambda rank: st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), TEXT),
        min_size=1,
        max_size=4,
    ).map(lambda row: _wrap(row, rank))
)
REQUESTS = st.one_of(
    st.fixed_dictionaries({"instances": st.one_of(TENSORS, VALUES)}),
    st.fixed_dictionaries({"inputs": st.one_of(TENSORS, VALUES)}),
    st.fixed_dictionaries(
        {
            "inputs": st.dictionaries(
                st.sampled_from(["x", "a", "b", "text"]), st.one_of(TENSORS, VALUES), max_size=3
            )
        }
    ),
    st.fixed_dictionaries(
        {"instances": st.lists(VALUES, max_size=3)},
        optional={"signature_name": st.one_of(st.sampled_from(["", "scale", "nope"]), VALUES)},
    ),
    st.fixed_dictionaries(
        {"examples": st.one_of(st.lists(VALUES, max_size=3), VALUES)}, optional={"context": VALUES}
    ),
    VALUES,
)
PATHS = st.sampled_from(
    [
        PREDICT,
        "/v1/models/half_plus_two/versions/1:predict",
        "/v1/models/strings:predict",
        "/v1/models/multi_io:predict",
        "/v1/models/classify_v1:classify",
        "/v1/models/classify_v1:regress",
    ]
)
# Raw JSON text for what json.dumps cannot produce: huge integer literals, deep nesting.
RAW = st.one_of(
    st.integers(1, 6000).map(lambda n: '{"instances": [' + "7" * n + "]}"),
    st.integers(1, 3000).map(lambda n: '{"instances": ' + nested(n) + "}"),
    st.integers(1, 3000).map(lambda n: '{"inputs": ' + '{"x": ' * n + "[1]" + "}" * (n + 1)),
    st.integers(1, 400).map(lambda n: '{"instances": [' + nested(n, '"s"') + "]}"),
    st.text(max_size=40),
)


def _wrap(row: list[Any], rank: int) -> Any:
    for _ in range(rank):
        row = [row]
    return row


def _encode(value: Any, ascii_only: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    # A lone surrogate is sent as it would be by a careless encoder: invalid UTF-8.
    return text.encode("utf-8", "surrogatepass")


BODIES = st.one_of(
    st.builds(_encode, REQUESTS, st.booleans()),
    RAW.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=60),
)


@given(path=PATHS, body=BODIES)
@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_fuzzed_predict_bodies_in_process(
    api: Api, bounded: ThreadPoolExecutor, path: str, body: bytes
) -> None:
    # Given loaded models
    # When any body is posted to a predict, classify or regress path
    status, answer = call(api, bounded, path, body)
    # Then the answer is 200 or a 4xx with exactly {"error": str}, within the bound
    assert_answer_shape(status, answer)


@given(path=PATHS, body=BODIES, ascii_headers=st.booleans())
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_fuzzed_predict_bodies_over_http_to_the_server_process(
    process_url: str, path: str, body: bytes, ascii_headers: bool
) -> None:
    # Given the server process
    # When any body is posted over HTTP (as JSON, or with no Content-Type)
    headers = JSON if ascii_headers else {}
    response = post(process_url, path, body, **headers)
    tally.bad_input()
    # Then the answer is 200 or a 4xx with exactly {"error": str}, within the bound (only
    # half_plus_two is loaded in the process: the other paths are 404s in the same form)
    assert response.headers["Content-Type"] == "application/json"
    assert_answer_shape(response.status_code, response.json())


def test_the_server_process_survives_the_fuzzing(process_url: str) -> None:
    # Given the server process after everything above
    # When a good prediction is asked for
    response = post(process_url, PREDICT, GOOD_BODY, **JSON)
    # Then it still answers correctly
    assert response.json() == GOOD_ANSWER
