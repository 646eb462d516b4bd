"""Hostile requests against a real `jupyter modelserve` process, through every front door.

Names with control characters or any Unicode line separator are refused by every route (taken
from the handlers' route table), the Python API, the CLI and the %serve magic; huge bodies get
413 at once while the server keeps answering; deep nesting and huge numbers are 400s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from IPython.core.interactiveshell import InteractiveShell

from jupyter_modelserve import api
from jupyter_modelserve.errors import InvalidInput
from jupyter_modelserve.handlers import (
    ModelVersionsHandler,
    ModelVersionTagHandler,
    OpenAPIHandler,
    PingHandler,
    RegisteredModelsHandler,
    RegisteredModelTagHandler,
    RegistryPingHandler,
    ServeHandler,
)
from jupyter_modelserve.service import ServeService

from ..conftest import eventually, server_config
from ..contract import RouteCall, route_calls
from ..servers import TOKEN, model_server_pid
from . import tally
from .conftest import Jupyter, Pinger, register, stop_everything

# Every line break str.splitlines() knows, and control characters that are not line breaks.
# (A lone surrogate cannot travel in a URL or argv; the parser tests cover it in JSON.)
BAD_CHARACTERS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]
BAD_CHARACTERS += ["\x00", "\x1b", "\x7f"]
AUTH = {"Authorization": f"token {TOKEN}"}
TEN_MB = 10 * 1024 * 1024
# Routes whose name arrives in the body or the query, and what a request carrying it looks like.
BODY_NAMES: dict[tuple[type[Any], str], Callable[[str, str], dict[str, Any]]] = {
    (ServeHandler, "POST"): lambda name, _: {"modelName": name, "modelVersion": 1},
    (ServeHandler, "DELETE"): lambda name, _: {"modelName": name, "modelVersion": 1},
    (RegisteredModelsHandler, "POST"): lambda name, _: {"name": name},
    (ModelVersionsHandler, "POST"): lambda name, source: {"name": name, "source": source},
    (ModelVersionsHandler, "PATCH"): lambda name, _: {"name": name, "version": 1},
}
QUERY_NAMES: dict[type[Any], dict[str, str]] = {
    RegisteredModelTagHandler: {"tag": "t"},
    ModelVersionTagHandler: {"version": "1", "tag": "t"},
}
NAMELESS = {
    (ServeHandler, "GET"),
    (PingHandler, "GET"),
    (RegistryPingHandler, "GET"),
    (RegisteredModelsHandler, "GET"),
    (OpenAPIHandler, "GET"),
}
# Bodies a route with the name in its path needs to get as far as reading the name.
PATH_BODIES = {"PATCH": {"description": "x"}, "POST": {"instances": [1.0]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, half_plus_two: Path) -> Iterator[Jupyter]:
    """One server for the module's tests, which leave its registry and serves as they found them."""
    jupyter = Jupyter(
        tmp_path_factory.mktemp("hostile"), {"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}}
    )
    jupyter.start()
    register(jupyter, "simple", half_plus_two)
    yield jupyter
    stop_everything(jupyter)


def send(
    server: Jupyter, call: RouteCall, params: dict[str, str] | None, body: Any
) -> tuple[int, str]:
    """Send one call; (status, the error message of an envelope or of TF Serving's form)."""
    tally.requests()
    response = requests.request(
        call.method,
        server.url + call.path,
        params=params,
        data=None if body is None else json.dumps(body),
        headers=AUTH,
        timeout=60,
    )
    if response.status_code >= 500:
        tally.server_error()
    answer = response.json()
    return response.status_code, str(answer.get("message", answer.get("error")))


def hostile_request(
    call: RouteCall, name: str, source: str
) -> tuple[dict[str, str] | None, Any] | None:
    """The query and body that carry `name` to this route; None for a route without a name."""
    if "name" in re.compile(call.pattern).groupindex:  # already in the path
        return None, PATH_BODIES.get(call.method)
    if (call.handler, call.method) in BODY_NAMES:
        return None, BODY_NAMES[call.handler, call.method](name, source)
    if call.handler in QUERY_NAMES:
        return {"name": name, **QUERY_NAMES[call.handler]}, None
    assert (call.handler, call.method) in NAMELESS, f"{call} takes a name this test cannot send"
    return None


def test_names_with_control_characters_are_refused_by_every_route(
    server: Jupyter, half_plus_two: Path
) -> None:
    # Given a server where "simple" version 1 is registered
    refused = 0
    for character in BAD_CHARACTERS:
        # When every route is sent "simple" with the character first, inside or last
        for name in (f"simple{character}", f"{character}simple", f"sim{character}ple"):
            for call in route_calls(name=name, version="1"):
                request = hostile_request(call, name, str(half_plus_two))
                if request is None:
                    continue
                tally.bad_input()
                code, message = send(server, call, *request)
                # Then each answers 400 and says which field is not a valid model name
                assert code == 400, (str(call), repr(name), code, message)
                assert "is not a valid model name" in message, (str(call), message)
                assert re.search(r"U\+[0-9A-F]{4}", message), message
                refused += 1
    assert refused >= len(BAD_CHARACTERS) * 3 * 15  # every route with a name, every character
    # And nothing was created, served, renamed or lost: the registry is as it was
    code, models = server.request("GET", "/api/v1/registered-model")
    assert code == 200 and [m["name"] for m in models["result"]] == ["simple"]
    code, versions = server.request("GET", "/api/v1/model-version/simple")
    assert code == 200 and [v["version"] for v in versions["result"]] == [1]
    code, serves = server.request("GET", "/api/v1/serve")
    assert code == 200 and serves["result"] == []


def test_versions_with_control_characters_are_refused_by_every_route(server: Jupyter) -> None:
    # Given a server where "simple" version 1 is registered
    refused = 0
    for character in BAD_CHARACTERS:
        for version in (f"1{character}", f"{character}1"):
            # When every route that reads a version is sent one with the character
            for call in route_calls(name="simple", version=version):
                if "version" in re.compile(call.pattern).groupindex:
                    request: tuple[dict[str, str] | None, Any] = (
                        None,
                        PATH_BODIES.get(call.method),
                    )
                elif call.handler is ModelVersionTagHandler:
                    request = ({"name": "simple", "version": version, "tag": "t"}, None)
                elif (call.handler, call.method) in BODY_NAMES and "modelName" in str(
                    BODY_NAMES[call.handler, call.method]("simple", "")
                ):
                    request = (None, {"modelName": "simple", "modelVersion": version})
                else:
                    continue
                tally.bad_input()
                code, message = send(server, call, *request)
                # Then each answers 400: a version is ASCII digits and nothing else
                assert code == 400, (str(call), repr(version), code, message)
                assert "must be a positive integer" in message, (str(call), message)
                refused += 1
    assert refused >= len(BAD_CHARACTERS) * 2 * 10
    code, serves = server.request("GET", "/api/v1/serve")
    assert code == 200 and serves["result"] == []


@pytest.fixture
def in_process_api(server: Jupyter, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The Python API and the magic of a kernel on the same Jupyter folders as `server`."""
    for variable in ("JUPYTER_DATA_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR"):
        monkeypatch.setenv(variable, server.env[variable])
    monkeypatch.setattr(api, "_service", None)
    yield
    if api._service is not None:
        api._service.close()


def test_the_python_api_the_cli_and_the_magic_refuse_the_same_names(
    server: Jupyter,
    in_process_api: None,
    half_plus_two: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the Python API, the CLI and the magic of a kernel next to the server
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_modelserve")
    shell.user_ns["model_dir"] = str(half_plus_two)
    for character in BAD_CHARACTERS:
        name = f"simple{character}"
        tally.bad_input(10)
        # When each front door is given the name
        # Then the Python API raises InvalidInput naming the argument
        calls: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
            (api.register, (half_plus_two, name), {}),
            (api.register, (str(half_plus_two), "ok"), {"tags": [name]}),
            (api.serve, (name, 1), {}),
            (api.get, (name, 1), {}),
        ]
        for function, args, options in calls:
            with pytest.raises(InvalidInput, match=r"^(name|tags): .*U\+"):
                function(*args, **options)
        # The magic fails the cell with InvalidInput, shown as one line naming NAME or --name
        quoted = f"'{name}'"  # shlex keeps everything inside single quotes, line breaks too
        for line in (
            f"register $model_dir --name {quoted}",
            f"{quoted} 1",
            f"status {quoted} 1",
            f"delete {quoted} 1",
            f"logs {quoted} 1",
            f"predict {name} 1 [[1.0]]",
        ):
            with pytest.raises(InvalidInput) as raised:
                shell.run_line_magic("serve", line)
            (shown,) = raised.value._render_traceback_()  # type: ignore[attr-defined]
            assert re.match(r"%serve: (NAME|--name): '.*' is not a valid model name", shown), line
        # The CLI exits with 2 and says why (argv cannot carry NUL)
        if character != "\x00":
            done = server.command("register", str(half_plus_two), "--name", name)
            assert done.returncode == 2, done
            assert "error: --name: " in done.stderr and "is not a valid model name" in done.stderr
    # And the registry holds only what it held
    assert [m.name for m in api.service().store.list_registered_models()] == ["simple"]


def test_a_huge_body_gets_413_at_once_while_the_server_keeps_answering(
    server: Jupyter, pinger_for: Callable[[Jupyter], Pinger]
) -> None:
    # Given a server being pinged every ~10 ms from another process
    pinger = pinger_for(server)
    body = b'{"modelName": "simple", "modelVersion": 1, "x": "' + b"x" * TEN_MB + b'"}'
    chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
    answers = []
    session = requests.Session()  # one keep-alive client, as a browser or an SDK would be
    session.headers.update(AUTH)
    # When 10 MB bodies arrive: with a Content-Length, chunked, and on every body route
    for data, path in (
        (body, "/api/v1/serve"),
        (chunks, "/api/v1/serve"),
        (body, "/api/v1/registered-model"),
        (body, "/api/v1/model-version"),
    ):
        tally.requests()
        tally.bad_input()
        started = time.monotonic()
        response = session.post(server.url + path, data=data, timeout=60)
        answers.append((response.status_code, time.monotonic() - started, response.json()))
        # (the answer told the client the connection closes: the next request just works)
        assert response.headers.get("Connection") == "close"
        tally.requests()
        assert session.get(server.url + "/api/v1/serve/ping", timeout=60).status_code == 200
    pinger.stop()
    # Then each gets a 413 naming the limit, within a fraction of a second
    for code, seconds, envelope in answers:
        assert code == 413 and envelope["status"] == "REQUEST_ENTITY_TOO_LARGE", envelope
        assert (
            "at most 65536 bytes" in envelope["message"]
            and "max_request_bytes" in (envelope["message"])
        )
        assert seconds < 2.0, f"a 413 took {seconds:.2f} s"
    # And the pings never stalled (a check that nothing blocks, not a benchmark)
    assert pinger.errors == 0 and pinger.latencies, pinger.describe()
    assert pinger.latencies[-1] < 1.0, pinger.describe()


def test_big_bodies_under_a_raised_cap_are_parsed_off_the_event_loop(
    make_jupyter: Callable[..., Jupyter], pinger_for: Callable[[Jupyter], Pinger]
) -> None:
    # Given a server that accepts 32 MB control bodies (and 1 MB predict bodies)
    server = make_jupyter(
        {
            "LocalBackend": {"rest_api_port": 0, "grpc_port": 0},
            "ModelServeApp": {"max_request_bytes": 32 * 1024**2, "max_predict_bytes": 1024**2},
        },
        name="raised-cap",
    )
    server.start()
    pinger = pinger_for(server)
    padding = "x" * TEN_MB
    strict = json.dumps({"modelName": "simple", "modelVersion": 1, "x": padding})
    # Submarine's trailing comma: the body strict JSON refuses and the slow repair walks
    repaired = strict[:-1] + ", }"
    answers = []
    # When 10 MB bodies are read whole and parsed, strict and repaired
    for body in (strict, repaired):
        tally.bad_input()
        started = time.monotonic()
        code, envelope = server.request("POST", "/api/v1/serve", body)
        answers.append((code, time.monotonic() - started, envelope))
    # And a 10 MB predict body goes to the proxy, whose cap is 1 MB
    tally.requests()
    tally.bad_input()
    predict = requests.post(
        server.url + "/modelserve/v1/models/simple/versions/1:predict",
        data=b"[" * TEN_MB,
        headers=AUTH,
        timeout=60,
    )
    pinger.stop()
    # Then both bodies were parsed (their unknown field is named) ...
    for code, seconds, envelope in answers:
        assert code == 400 and envelope["message"] == (
            "x: is not a known field (expected modelName, modelVersion, modelType)"
        ), envelope
        assert seconds < 60
    # ... the predict body was refused in TF Serving's form ...
    assert predict.status_code == 413
    assert predict.json() == {
        "error": f"request body is {TEN_MB} bytes; at most {1024**2} bytes are accepted here "
        "(c.ModelServeApp.max_predict_bytes)"
    }
    # ... and the event loop kept answering pings throughout
    assert pinger.errors == 0 and pinger.latencies, pinger.describe()
    assert pinger.latencies[-1] < 1.0, pinger.describe()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"modelName": "simple", "modelVersion": ' + "[" * 20_000 + "]" * 20_000 + "}", "nested"),
        ('{"modelName": "simple", "modelVersion": 1' + "0" * 5000 + "}", "4300 digits"),
        ('{"name": "simple", "description": ' + "9" * 5000 + "}", "4300 digits"),
        ('{"name": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}", "nested"),
    ],
    ids=["deep-serve", "digits-serve", "digits-registry", "deep-registry"],
)
def test_deep_nesting_and_huge_numbers_are_400s(server: Jupyter, body: str, message: str) -> None:
    # Given a body that once made the server answer 500 (RecursionError, int() digit limit)
    tally.bad_input()
    path = "/api/v1/serve" if "modelName" in body else "/api/v1/registered-model"
    # When it is posted
    code, envelope = server.request("POST", path, body)
    # Then it is a 400 that names the problem
    assert code == 400, envelope
    assert message in envelope["message"], envelope


def test_bad_proxy_paths_answer_in_tf_servings_form(server: Jupyter) -> None:
    # Given the predict proxy, which impersonates TF Serving
    for path, message in (
        ("/modelserve/v1/models/simple/versions/abc:predict", "modelVersion: must be a positive"),
        ("/modelserve/v1/models/simple/versions/0", "modelVersion: must be a positive"),
        ("/modelserve/v1/models/si%0Ample/versions/1:predict", "is not a valid model name"),
    ):
        tally.requests()
        tally.bad_input()
        # When a bad version or name arrives
        method = "POST" if path.endswith(":predict") else "GET"
        response = requests.request(method, server.url + path, data="{}", headers=AUTH, timeout=60)
        # Then it is a 400 with TF Serving's {"error": ...} body
        assert response.status_code == 400, response.text
        assert message in response.json()["error"]


# -- ?wait: clients that wait on the event loop, and clients that walk away ---------------------


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    # A stopped model server answers no status call: each read then costs 0.3 s, not 5 s.
    return server_config(LocalBackend={"rest_api_port": 0, "grpc_port": 0, "status_timeout": 0.3})


@pytest.fixture
def stalled(service: ServeService, half_plus_two: Path) -> Iterator[ServeService]:
    """simple 1 AVAILABLE, then its model server SIGSTOPped: `other` 1 can never load."""
    service.registry.register_saved_model(half_plus_two, "simple")
    service.registry.register_saved_model(half_plus_two, "other")
    service.create("simple", 1)
    view = service.wait("simple", 1, 120)
    assert view.state.value == "AVAILABLE", view
    pid = model_server_pid(service.backend.dir)  # type: ignore[attr-defined]
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    tally.fault()
    try:
        yield service
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_wait_returns_the_current_view_when_its_time_is_up(stalled: Any, api: Any) -> None:
    # Given a serve whose model server does not answer
    started = time.monotonic()
    # When it is created with ?wait=1
    tally.requests()
    code, envelope = await api(
        "POST", "/api/v1/serve", {"modelName": "other", "modelVersion": 1}, params={"wait": "1"}
    )
    elapsed = time.monotonic() - started
    # Then after about a second it answers 200 with the serve as it stands, not ready
    assert code == 200 and envelope["result"]["state"] in ("PENDING", "LOADING"), envelope
    assert 1.0 <= elapsed < 10.0, elapsed


async def test_a_client_that_hangs_up_ends_its_wait(
    stalled: Any,
    api: Any,
    jp_serverapp: Any,
    jp_http_port: int,
    jp_base_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a serve that will not become AVAILABLE, and a client waiting up to 60 s for it
    caplog.set_level(logging.DEBUG)
    token = jp_serverapp.identity_provider.token
    body = json.dumps({"modelName": "other", "modelVersion": 1})
    _, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    writer.write(
        (
            f"POST {jp_base_url}api/v1/serve?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: token {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    await writer.drain()
    tally.requests()

    async def waiting() -> bool:  # the serve exists: the handler is in its wait
        code, _ = await api("GET", "/api/v1/serve/other/1")
        return code == 200

    await eventually(waiting, what="the serve the client waits for")
    hung_up = time.monotonic()
    # When the client hangs up
    writer.close()
    await writer.wait_closed()

    # Then the server ends that request within a poll or two, not after 60 s, and quietly
    ended = re.compile(r"POST \S*api/v1/serve\?wait=60 .* ([0-9.]+)ms")

    async def access_line() -> list[str]:
        return [m.group(1) for r in caplog.records if (m := ended.search(r.getMessage()))]

    milliseconds = await eventually(access_line, timeout=20, what="the request to end")
    assert time.monotonic() - hung_up < 20
    assert float(milliseconds[0]) < 20_000, milliseconds
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_wait_on_a_serve_that_fails_is_a_422_with_the_reason(
    api: Any, service: ServeService, half_plus_two: Path, tmp_path: Path
) -> None:
    # Given a registered version whose variables are gone, so the model server cannot load it
    version = service.registry.register_saved_model(half_plus_two, "broken")
    shutil.rmtree(Path(version.source) / "variables")
    tally.fault()
    # When it is served with ?wait
    tally.requests()
    code, envelope = await api(
        "POST", "/api/v1/serve", {"modelName": "broken", "modelVersion": 1}, params={"wait": "120"}
    )
    # Then the answer is a 422 that says it FAILED, and why
    assert code == 422 and envelope["status"] == "UNPROCESSABLE_ENTITY", envelope
    assert envelope["message"].startswith("model 'broken' version 1 FAILED: "), envelope
    assert len(envelope["message"]) > len("model 'broken' version 1 FAILED: ") + 5
