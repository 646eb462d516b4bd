"""Every route the extension registers sits behind Jupyter's auth, and no secret reaches a log.

The routes come from `handlers.ROUTES` (tests/contract.py `route_calls`), not from a list kept by
hand: a route added later is covered without anyone remembering it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import requests
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.utils import url_path_join
from tornado.httpclient import HTTPResponse

from jupyter_modelserve.handlers.base import FORBIDDEN_HINT, ModelServeHandler
from jupyter_modelserve.handlers.proxy import ModelProxyHandler

from ..conftest import server_config
from ..contract import RouteCall, route_calls
from ..servers import TOKEN
from . import tally
from .conftest import Jupyter

CALLS = route_calls(name="simple", version="1")
WRITES = ("POST", "PATCH", "DELETE", "PUT")
# Bodies that would pass validation, so that only auth can be what refuses them.
BODIES = {
    "/api/v1/serve": {"modelName": "simple", "modelVersion": 1},
    "/api/v1/registered-model": {"name": "other"},
    "/api/v1/registered-model/simple": {"description": "d"},
    "/api/v1/model-version": {"name": "simple", "source": "/nowhere"},
    "/api/v1/model-version/simple/1": {"description": "d"},
}
QUERIES = {
    "/api/v1/registered-model/tag": {"name": "simple", "tag": "t"},
    "/api/v1/model-version/tag": {"name": "simple", "version": "1", "tag": "t"},
}


def body_of(call: RouteCall) -> str | None:
    if call.method == "GET":
        return None
    return json.dumps(BODIES.get(call.path, {"instances": [1.0]}))


def message_of(call: RouteCall, text: str) -> str:
    """The error message of an envelope, or of TF Serving's form on the proxy."""
    answer = json.loads(text)
    return str(answer["error"] if call.handler is ModelProxyHandler else answer["message"])


@pytest.fixture
def server(simple_server: Jupyter) -> Jupyter:
    return simple_server


def call_with(
    server: Jupyter, call: RouteCall, session: Any = requests, **options: Any
) -> requests.Response:
    tally.requests()
    response: requests.Response = session.request(
        call.method,
        server.url + call.path,
        params={**QUERIES.get(call.path, {}), **options.pop("params", {})},
        data=options.pop("data", body_of(call)),
        timeout=60,
        allow_redirects=False,
        **options,
    )
    if response.status_code >= 500:
        tally.server_error()
    return response


def test_every_route_refuses_no_token_a_wrong_token_and_cookie_writes_without_xsrf(
    server: Jupyter,
) -> None:
    # Given a real server, and a browser-like session logged in with a cookie
    browser = requests.Session()
    browser.get(server.url + "/login", timeout=60)
    login = browser.post(
        server.url + "/login",
        data={"password": TOKEN, "_xsrf": browser.cookies["_xsrf"]},
        allow_redirects=False,
        timeout=60,
    )
    assert login.status_code == 302, login.text
    assert len(CALLS) >= 20  # the route table really was read
    for call in CALLS:
        tally.bad_input(3)
        # When the route is called without a token, with a wrong one (header or query)
        for options in (
            {},
            {"headers": {"Authorization": "token wrong"}},
            {"params": {"token": "wrong"}},
        ):
            response = call_with(server, call, **options)
            # Then it is a 403 whose message says how to authenticate
            assert response.status_code == 403, (str(call), options, response.text)
            assert message_of(call, response.text) == FORBIDDEN_HINT, response.text
        # When the logged-in browser calls it: reads work, writes need the XSRF header
        if call.method in WRITES:
            tally.bad_input()
            refused = call_with(server, call, session=browser)
            assert refused.status_code == 403, (str(call), refused.text)
            assert "_xsrf" in message_of(call, refused.text), refused.text
        xsrf = {"X-XSRFToken": browser.cookies["_xsrf"]}
        # (an empty object: a write gets past auth to a 400, and serves nothing)
        empty = None if call.method == "GET" else "{}"
        allowed = call_with(server, call, session=browser, headers=xsrf, data=empty)
        # (the cookie does authenticate: whatever the answer, it is not a refusal)
        assert allowed.status_code != 403, (str(call), allowed.text)


def test_the_token_never_reaches_the_server_log(server: Jupyter, half_plus_two: Path) -> None:
    # Given a real server whose log is a file
    log = server.root / f"jupyter-{server.port}.log"
    # When requests carry the token in the query and fail every way a client can make them
    failing = [
        ("GET", "/api/v1/serve/nosuch/1", None),  # 404
        ("GET", "/api/v1/serve/simple/abc", None),  # 400
        ("GET", "/api/v1/serve/simple/1/logs", None),  # 404: not served
        ("POST", "/api/v1/serve", "{not json"),  # 400
        ("POST", "/api/v1/serve", "x" * 100_000),  # 413
        ("DELETE", "/api/v1/registered-model/nosuch", None),  # 404
        ("POST", "/modelserve/v1/models/simple/versions/1:predict", "{}"),  # 404: not served
        ("GET", "/api/v1/nosuch", None),  # Jupyter's own 404
    ]
    for method, path, body in failing:
        tally.requests()
        response = requests.request(
            method, f"{server.url}{path}?token={TOKEN}", data=body, timeout=60
        )
        assert 400 <= response.status_code < 500, (path, response.text)
    # And the token is sent in the Authorization header of a request that fails
    server.request("GET", "/api/v1/serve/nosuch/1")
    # Then the requests were logged, with [secret] where the token was, and never the token
    text = log.read_text()
    assert "/api/v1/serve/nosuch/1?token=[secret]" in text
    assert TOKEN not in text


# -- in-process servers: an authorizer, and a fault ---------------------------------------------


class DenyModelServeWrites(Authorizer):
    """Reads everything; writes anything but `modelserve` (as a read-only role would)."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "modelserve" and action == "write")


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return server_config(ServerApp={"authorizer_class": DenyModelServeWrites})


async def test_an_authorizer_that_denies_writes_refuses_every_write_route(
    jp_fetch: Any, modelserve_app: Any, half_plus_two: Path
) -> None:
    # Given a server whose authorizer denies `write` on resource `modelserve`
    assert modelserve_app.service is not None
    modelserve_app.service.registry.register_saved_model(half_plus_two, "simple")
    for call in CALLS:
        tally.requests()
        tally.bad_input(1 if call.method in WRITES else 0)
        # When each route is called with a valid token
        response: HTTPResponse = await jp_fetch(
            *call.path.strip("/").split("/"),
            method=call.method,
            body=body_of(call),
            params=QUERIES.get(call.path),
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        # Then writes are refused, and reads answer as usual
        if call.method in WRITES:
            assert response.code == 403, (str(call), response.body)
            assert "not authorized" in message_of(call, response.body.decode()), response.body
        else:
            assert response.code in (200, 404), (str(call), response.body)


class FaultHandler(ModelServeHandler):
    """A route that fails as a database query does: text with SQL, parameters and a path."""

    async def get(self) -> None:
        database = sqlite3.connect(":memory:")
        database.execute("SELECT secret FROM no_such_table WHERE path = ?", ("/home/u/.ssh",))


async def test_a_fault_answers_500_with_a_reference_and_no_text_or_token_is_logged(
    jp_serverapp: Any,
    jp_base_url: str,
    http_server_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given the real server with one more route of the extension's kind that hits a real
    # sqlite3 error (nothing else in the extension fails on purpose)
    caplog.set_level(logging.DEBUG)
    fault_path = url_path_join(jp_base_url, "api/v1/modelserve-test/fault")
    jp_serverapp.web_app.add_handlers(
        ".*$", [(fault_path, FaultHandler, {"name": "jupyter_modelserve"})]
    )
    token = jp_serverapp.identity_provider.token
    assert len(token) >= 8
    # When it is called, and other routes fail, all with the token in the query
    answers = {}
    for path, body in (
        ("api/v1/modelserve-test/fault", None),
        ("api/v1/serve/nosuch/1", None),
        ("api/v1/serve/simple/abc", None),
        ("api/v1/serve", "x" * 100_000),
    ):
        tally.requests()
        response = await http_server_client.fetch(
            f"{url_path_join(jp_base_url, path)}?token={token}",
            method="GET" if body is None else "POST",
            body=body,
            raise_error=False,
        )
        answers[path] = (response.code, json.loads(response.body))
    # Then the fault is a 500 that points to the log, without the exception's text
    code, envelope = answers["api/v1/modelserve-test/fault"]
    assert code == 500 and envelope["status"] == "INTERNAL_SERVER_ERROR", envelope
    message = envelope["message"]
    assert message.startswith("internal error; see the Jupyter server log (reference ")
    assert "no_such_table" not in message and "ssh" not in message
    reference = message.rsplit("reference ", 1)[1].rstrip(")")
    # And the log has the traceback under that reference
    faults = [r for r in caplog.records if f"reference {reference}" in r.getMessage()]
    assert faults and faults[0].exc_info is not None
    assert [code for code, _ in answers.values()] == [500, 404, 400, 413]
    # And no log line, traceback included, carries the token
    handler = logging.Handler()
    handler.setFormatter(logging.Formatter())
    logged = "\n".join(handler.format(record) for record in caplog.records)
    assert "token=[secret]" in logged
    assert token not in logged
