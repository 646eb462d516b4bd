"""The envelope every route answers with, and the one place errors become HTTP responses.

Also the one reader of requests: bodies are counted as they arrive and refused past a cap
(never buffered whole first), parsed off the event loop, and every name, version and tag in a
path or query goes through the validators of `schemas`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar, cast

from anyio import CapacityLimiter, to_thread
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.log import _scrub_uri
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.escape import json_encode

from ..errors import InvalidInput, ModelServeError, PayloadTooLarge
from ..jupyter_info import PROXY_PREFIX
from ..registry.model_registry import ModelRegistry
from ..schemas import (
    ServeView,
    validate_model_name,
    validate_tag,
    validate_version,
)
from ..service import ServeService
from ..settings import ModelServeSettings
from .body import BodyBuffer, parse_json_body

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1
# A serve's keys that only GET one fills (each costs a read of the artifact or model server).
DESCRIBED_KEYS = ("signature", "exampleRequest", "metrics")

# Pinned names: HTTPStatus renames some between Python versions (413 and 422 in 3.13).
_STATUS_NAMES = {
    200: "OK",
    400: "BAD_REQUEST",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "REQUEST_ENTITY_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE_ENTITY",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
FORBIDDEN_HINT = "Forbidden: send the Jupyter server's token as 'Authorization: token <token>'"
# A logged-in browser session (cookie) without Jupyter's XSRF header: tornado says only
# "'_xsrf' argument missing from POST", which names neither the fix nor the simpler way.
XSRF_HINT = (
    "Forbidden: a request with Jupyter's login cookie must send the '_xsrf' cookie's value in "
    "an 'X-XSRFToken' header; or send the token as 'Authorization: token <token>' instead"
)


def envelope(
    code: int, message: str, result: Any, attributes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Submarine's response shape, fields in Submarine's order; `status` mirrors `code`."""
    return {
        "status": _STATUS_NAMES.get(code) or HTTPStatus(code).name,
        "code": code,
        "success": code < 400,
        "message": message,
        "result": result,
        "attributes": attributes or {},
    }


def scrub_uri(uri: str, extra_keys: list[str] | None = None) -> str:
    """The URI with `token=` (and Jupyter's other secret parameters) replaced by [secret].

    Jupyter's own access log redacts with this very function, so a URI reads the same in
    every line of the server log.
    """
    scrubbed: str = _scrub_uri(uri, extra_keys)
    return scrubbed


def loggable(text: str) -> str:
    """A message as one log line: line breaks and other control characters escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


# Polls (?wait, DELETE): quick at first (a warm model server loads in well under a second),
# then every half second, so a long wait costs a few reads a second and no thread at all.
FIRST_PAUSE, LONGEST_PAUSE = 0.05, 0.5


@web.stream_request_body
class ModelServeHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every route: thin, it parses, calls the service in a thread, and answers.

    Bodies are streamed (`stream_request_body`) so that their size is known, and refused,
    before they are held in memory: a declared Content-Length over the cap is answered 413
    before a byte of the body is read, and a chunked body is dropped the moment it passes it.
    """

    auth_resource = "modelserve"
    _client_gone: asyncio.Event | None = None
    _buffer: BodyBuffer
    _error_reference: str | None = None
    # Set when an answer goes out before the body was read: tornado then closes the connection
    # rather than read the rest, and the client must be told so, or it would reuse the
    # connection for its next request and see it reset.
    _closes_connection = False

    @property
    def modelserve_settings(self) -> ModelServeSettings:
        """The extension's settings (c.ModelServeApp.*), typed."""
        return cast(ModelServeSettings, self.extensionapp)

    @property
    def registry(self) -> ModelRegistry:
        return self.service.registry

    @property
    def service(self) -> ServeService:
        service: ServeService = self.settings["modelserve_service"]
        return service

    # The cap of this route's bodies, and the setting that raises it.
    body_limit_setting = "max_request_bytes"

    async def prepare(self) -> None:  # type: ignore[override]
        setting = self.body_limit_setting
        limit: int = getattr(self.extensionapp, setting)
        self._buffer = BodyBuffer(limit, f"c.ModelServeApp.{setting}")
        try:
            await super().prepare()  # Jupyter's auth and XSRF checks
            # Decided from the header: the body is never read.
            self._buffer.declare(self.request.headers.get("Content-Length"))
        except BaseException:
            self._closes_connection = self._has_body()
            raise

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        try:
            self._buffer.add(chunk)
        except PayloadTooLarge as error:  # a chunked body, or one longer than it declared
            self._closes_connection = True
            self.send_error(error.status, exc_info=(type(error), error, None))

    def _has_body(self) -> bool:
        headers = self.request.headers
        return "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"

    @property
    def body(self) -> bytes:
        return self._buffer.body

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking service work (database, subprocess, cluster) off the event loop.

        On threads of our own: calls that wait on a backend (DELETE, a slow cluster) can then
        never starve the shared pool the rest of the Jupyter server runs on.
        """
        limiter: CapacityLimiter = self.settings["modelserve_threads"]
        return await to_thread.run_sync(function, *args, limiter=limiter)

    async def run_copy(self, function: Callable[..., T], *args: Any) -> T:
        """`run` for registrations, which copy whole models: on threads apart, so a few large
        copies never hold up every other request."""
        limiter: CapacityLimiter = self.settings["modelserve_copy_threads"]
        return await to_thread.run_sync(function, *args, limiter=limiter)

    async def poll(self, read: Callable[[], T], settled: Callable[[T], bool], timeout: float) -> T:
        """Read (on a thread) until `settled(value)` or `timeout`; the last value read.

        The pauses between reads are the event loop's, quick at first and then every half
        second, so a long wait parks no thread; a client that hangs up ends it at once.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pause = FIRST_PAUSE
        gone = self._client_gone = asyncio.Event()
        value = await self.run(read)
        while not settled(value):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return value
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), min(pause, remaining))
            if gone.is_set():  # nobody to answer: stop reading quietly
                raise web.Finish()
            pause = min(pause * 2, LONGEST_PAUSE)
            value = await self.run(read)
        return value

    def on_connection_close(self) -> None:
        super().on_connection_close()
        if self._client_gone is not None:
            self._client_gone.set()

    async def json_body(self, expected: str) -> Any:
        """The body as JSON, parsed on a thread: even a capped body is not the loop's work."""
        return await self.run(parse_json_body, self.body, expected)

    # -- query parameters and path segments ------------------------------------------------------

    def query(self, name: str) -> str | None:
        """A query parameter exactly as sent (the last one if repeated).

        Not tornado's get_query_argument: that strips blanks and turns control characters into
        spaces, so "evil%0A" would quietly become "evil" instead of being refused.
        """
        values = self.request.query_arguments.get(name)
        if not values:
            return None
        try:
            return values[-1].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"{name}: query parameter is not UTF-8 text") from None

    def required_query(self, name: str) -> str:
        value = self.query(name)
        if not value:
            raise InvalidInput(f"{name}: query parameter is required")
        return value

    def name_argument(self, name: str = "name") -> str:
        return validate_model_name(self.required_query(name), name)

    def tag_argument(self, name: str = "tag") -> str:
        return validate_tag(self.required_query(name), name)

    def version_argument(self, name: str = "version") -> int:
        return validate_version(self.required_query(name), name)

    def page(self) -> tuple[int, int]:
        """`limit` (1 to 1000, default 100) and `offset` (default 0) of a list route."""
        return (
            self._bounded_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            self._bounded_int("offset", 0, 0, MAX_OFFSET),
        )

    def _bounded_int(self, name: str, default: int, lowest: int, highest: int) -> int:
        raw = self.query(name)
        if raw is None:
            return default
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and lowest <= int(raw)):
            raise InvalidInput(f"{name}: must be an integer from {lowest} to {highest}")
        if int(raw) > highest:
            raise InvalidInput(f"{name}: must be an integer from {lowest} to {highest}")
        return int(raw)

    # -- answers ---------------------------------------------------------------------------------

    def answer(
        self,
        message: str,
        result: Any = None,
        code: int = HTTPStatus.OK,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self.set_status(code)
        self.finish(envelope(code, message, result, attributes))

    async def answer_page(
        self, message: str, rows: Callable[[], list[Any]], limit: int, offset: int
    ) -> None:
        """`answer` for a list route: `rows()` (the page as JSON-ready values) is read, shaped
        and encoded on a thread, so a page of 1,000 rows never holds up the event loop."""

        def encoded() -> str:
            attributes = {"limit": limit, "offset": offset}
            # Tornado's encoder, as `finish(dict)` uses: the same bytes as every other answer.
            return json_encode(envelope(HTTPStatus.OK, message, rows(), attributes))

        body = await self.run(encoded)
        self.set_status(HTTPStatus.OK)
        self.finish(body)  # APIHandler.finish sets Content-Type: application/json

    def serve_json(self, view: ServeView, described: bool = False) -> dict[str, Any]:
        """A serve as the REST API shows it, with the proxy URL on this very server.

        Only `described` views (GET one: ServeService.describe) carry `signature`,
        `exampleRequest` and `metrics`; POST's answer and lists leave the keys out.
        """
        path = url_path_join(
            self.base_url, PROXY_PREFIX, view.model_name, "versions", str(view.model_version)
        )
        shown = view.to_json()
        # Set on the dict, not by a model_copy: a copy per row was most of a 1,000-row list.
        shown["proxyUrl"] = f"{self.request.protocol}://{self.request.host}{path}:predict"
        if not described:
            for key in DESCRIBED_KEYS:
                del shown[key]
        return shown

    # -- the one error translator ----------------------------------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status_code, message = self.describe_error(status_code, kwargs)
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.close_if_body_unread()
        self.finish(envelope(status_code, message, None))

    def close_if_body_unread(self) -> None:
        if self._closes_connection:
            self.set_header("Connection", "close")

    def describe_error(self, status_code: int, kwargs: dict[str, Any]) -> tuple[int, str]:
        """The status and the user-facing message for whatever ended the request.

        An exception we do not know is a fault on our side whose text (SQL and its parameters,
        paths) is not for the client: it gets a reference to the log line with the traceback.
        """
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ModelServeError):
            return int(error.status), error.message
        if isinstance(error, web.HTTPError):
            # Without a user, what is missing is the token (even when Jupyter's XSRF check
            # was what refused the request): say so, the same on every route.
            anonymous = getattr(self, "_jupyter_current_user", None) is None
            if status_code == HTTPStatus.FORBIDDEN and (anonymous or not error.log_message):
                return status_code, FORBIDDEN_HINT
            if status_code == HTTPStatus.FORBIDDEN and "xsrf" in (error.log_message or "").lower():
                return status_code, XSRF_HINT
            if error.log_message:
                return status_code, str(error.get_message())
            return status_code, HTTPStatus(status_code).phrase
        if error is not None:
            reference = self._error_reference or secrets.token_hex(4)
            message = f"internal error; see the Jupyter server log (reference {reference})"
            return HTTPStatus.INTERNAL_SERVER_ERROR, message
        if status_code == HTTPStatus.FORBIDDEN:
            return status_code, FORBIDDEN_HINT
        return status_code, HTTPStatus(status_code).phrase

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # Our own lines, not tornado's: those carry the request URI, token and all.
        summary = self._request_summary()
        if isinstance(value, ModelServeError):
            # A user error is an answer, not a server fault: keep tracebacks for real faults.
            level = logging.INFO if value.status < 500 else logging.WARNING
            self.log.log(level, "%d %s: %s", value.status, summary, loggable(value.message))
        elif isinstance(value, web.HTTPError):
            if value.log_message:
                message = loggable(str(value.get_message()))
                self.log.warning("%d %s: %s", value.status_code, summary, message)
        else:
            self._error_reference = secrets.token_hex(4)
            self.log.error(
                "internal error (reference %s) in %s",
                self._error_reference,
                summary,
                exc_info=(typ, value, tb),
            )

    def _request_summary(self) -> str:
        # Tornado's access and error lines use this: never with the token in the query.
        uri = scrub_uri(self.request.uri or "", self.settings.get("extra_log_scrub_param_keys"))
        return f"{self.request.method} {loggable(uri)} ({self.request.remote_ip})"
