"""TF Serving's REST API of every serve, proxied through the Jupyter server under Jupyter auth.

Clients that can reach the Jupyter server but not the model server (a browser, a laptop talking
to a remote JupyterHub, anything outside the cluster) predict here with TF Serving's own paths
and bodies. Errors keep TF Serving's `{"error": ...}` shape, since these paths impersonate it.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from ..errors import BackendUnavailable
from .base import ModelServeHandler
from .serve import _name, _version


class ModelProxyHandler(ModelServeHandler):
    # Predict bodies carry tensors: a cap of their own.
    body_limit_setting = "max_predict_bytes"

    @web.authenticated
    @authorized
    async def get(self, name: str, version: str, suffix: str | None) -> None:
        await self._forward(name, version, suffix or "")

    @web.authenticated
    @authorized
    async def post(self, name: str, version: str, suffix: str | None) -> None:
        await self._forward(name, version, suffix or "")

    async def _forward(self, name: str, version: str, suffix: str) -> None:
        name, number = _name(name), _version(version)
        endpoint, servable_version = await self.run(self.service.endpoint, name, number)
        upstream = f"{endpoint}/v1/models/{name}/versions/{servable_version}{suffix}"
        try:
            response = await AsyncHTTPClient().fetch(
                upstream,
                method=self.request.method or "GET",
                body=self.body if self.request.method == "POST" else None,
                headers={"Content-Type": "application/json"},
                raise_error=False,
                request_timeout=self.modelserve_settings.proxy_timeout,
            )
        except (OSError, HTTPClientError) as error:
            # Refused, reset, or closed mid-answer (a server killed while answering):
            # raise_error=False does not cover these.
            detail = error.strerror if isinstance(error, OSError) else None
            raise BackendUnavailable(
                f"the model server at {endpoint} did not answer: {detail or error}"
            ) from None
        if response.code == 599:  # no HTTP answer at all: a timeout
            raise BackendUnavailable(
                f"the model server at {endpoint} did not answer: {response.error}"
            )
        if response.code == 404:
            # The serve exists (its row gave us the endpoint), yet the model server does not
            # have it loaded: restarting after a crash, or still loading. That is "not now",
            # not "no such model": a 503 saying where the serve stands.
            view = await self.run(self.service.get, name, number)
            reason = f" ({view.reason})" if view.reason else ""
            raise BackendUnavailable(
                f"model {name!r} version {number} is not loaded by the model server right now; "
                f"the serve is {view.state.value}{reason}; try again in a moment"
            )
        self.set_status(response.code)
        self.set_header("Content-Type", response.headers.get("Content-Type", "application/json"))
        self.finish(response.body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status_code, message = self.describe_error(status_code, kwargs)
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.close_if_body_unread()
        self.finish(json.dumps({"error": message}))
