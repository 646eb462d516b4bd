"""Every route sits behind Jupyter's authentication."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jupyter_server.utils import url_path_join

from jupyter_modelserve.handlers.base import FORBIDDEN_HINT, XSRF_HINT
from jupyter_modelserve.handlers.proxy import ModelProxyHandler

from .conftest import LOCKED_DOWN, server_config
from .contract import Contract, RouteCall, route_calls

# Every method of every route, from the handlers' route table (not a list kept by hand).
CALLS = route_calls(name="simple", version="1")


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return server_config(ServerApp=LOCKED_DOWN)


@pytest.mark.parametrize("call", CALLS, ids=str)
async def test_unauthenticated_calls_are_refused(
    jp_serverapp: Any,
    http_server_client: Any,
    jp_base_url: str,
    contract: Contract,
    call: RouteCall,
) -> None:
    # Given a locked-down server (allow_unauthenticated_access=False)
    body = '{"modelName": "simple", "modelVersion": 1}' if call.method != "GET" else None
    # When a route is called without a token
    response = await http_server_client.fetch(
        url_path_join(jp_base_url, call.path),
        method=call.method,
        body=body,
        # A matching XSRF cookie and header get writes past Jupyter's XSRF guard, so it is our
        # own authentication that has to refuse them.
        headers={"Cookie": "_xsrf=same", "X-XSRFToken": "same"},
        raise_error=False,
        allow_nonstandard_methods=True,
    )
    # Then it is a 403 that says how to authenticate, in the route's documented error form
    assert response.code == 403
    answer = json.loads(response.body)
    if call.handler is ModelProxyHandler:  # TF Serving's form
        assert answer == {"error": FORBIDDEN_HINT}
    else:
        assert answer["status"] == "FORBIDDEN" and answer["success"] is False
        assert answer["message"] == FORBIDDEN_HINT
    contract.check(call.method, call.path, response.code, answer)


async def test_a_wrong_token_is_refused(jp_fetch: Any) -> None:
    response = await jp_fetch(
        "api", "v1", "serve", headers={"Authorization": "token wrong"}, raise_error=False
    )
    assert response.code == 403


@pytest.mark.parametrize(
    ("path", "form"),
    [("api/v1/serve", "envelope"), ("modelserve/v1/models/simple/versions/1:predict", "tf")],
)
async def test_a_logged_in_browser_without_the_xsrf_header_is_told_what_to_send(
    jp_serverapp: Any, http_server_client: Any, jp_base_url: str, path: str, form: str
) -> None:
    # Given a browser session: the login cookie Jupyter sets for its token
    token = jp_serverapp.identity_provider.token
    login = await http_server_client.fetch(
        url_path_join(jp_base_url, f"login?token={token}"),
        follow_redirects=False,
        raise_error=False,
    )
    cookies = "; ".join(value.split(";", 1)[0] for value in login.headers.get_list("Set-Cookie"))
    assert "username-" in cookies, login.headers

    # When it POSTs with the cookie alone, no X-XSRFToken header
    response = await http_server_client.fetch(
        url_path_join(jp_base_url, path),
        method="POST",
        body=json.dumps({"modelName": "simple", "modelVersion": 1, "instances": [1.0]}),
        headers={"Cookie": cookies},
        raise_error=False,
    )

    # Then the 403 says what to send (not tornado's "'_xsrf' argument missing from POST")
    assert response.code == 403
    answer = json.loads(response.body)
    message = answer["error"] if form == "tf" else answer["message"]
    assert message == XSRF_HINT
