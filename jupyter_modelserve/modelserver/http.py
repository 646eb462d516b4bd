"""The Tornado application serving TF Serving's REST API from a ModelManager."""

from __future__ import annotations

import asyncio
import json
import os
import time
from concurrent.futures import Executor, ThreadPoolExecutor

import tornado.httpserver
import tornado.web

from ..tfserving import ALL_STATUSES_PATH
from .errors import ServingError
from .guard import RequestPolicy, content_length
from .inline import InlineCalls
from .logs import log
from .manager import ModelManager
from .metrics import CONTENT_TYPE
from .metrics import PATH as METRICS_PATH
from .routes import Api

# The HTTP server's own body limit sits this far above the policy's, so that the handler, which
# answers in TF Serving's error form, is what clients meet; Tornado's bare 400 and closed
# connection remain only for a single chunk declared far past the limit.
HARD_STOP_MARGIN = 1024 * 1024
DRAIN_LIMIT = 64 * 1024  # the largest body of a refused request that is read before answering


@tornado.web.stream_request_body
class RestHandler(tornado.web.RequestHandler):
    """Every path goes through `Api.handle`, which answers unknown ones as TF Serving does.

    The body streams in so that a request refused on its headers (host, content type, declared
    size) is answered before its body is read, and no body is held past the size limit.
    """

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def initialize(
        self, api: Api, executor: Executor, policy: RequestPolicy, inline: InlineCalls | None
    ) -> None:
        self.api = api
        self.executor = executor
        self.policy = policy
        self.inline = inline
        self._chunks: list[bytes] = []
        self._received = 0
        self._refusal: ServingError | None = None

    def prepare(self) -> None:
        self._started = time.perf_counter()  # TF Serving times a request from its arrival
        self._refusal = self.policy.refusal(self.request.method or "GET", self.request.headers)
        if self._refusal is None:
            return
        if self._refusal.http_status == 413 or not self._small_body():
            # Answer now, before the body arrives; the connection then closes.
            self._reply_error(self._refusal)
        # A small body of a refused request is read and dropped first, and the refusal answered
        # after it: that keeps the connection usable, while closing it with unread data could
        # reset it before the client reads the answer.

    def _small_body(self) -> bool:
        headers = self.request.headers
        if "chunked" in headers.get("Transfer-Encoding", "").lower():
            return False
        length = content_length(headers)
        return length is None or length <= DRAIN_LIMIT

    def data_received(self, chunk: bytes) -> None:
        if self._finished or self._refusal is not None:
            return  # a refused request's body is dropped
        self._received += len(chunk)
        if self._received > self.policy.max_body_bytes:  # chunked: no Content-Length to check
            self._chunks.clear()
            self._reply_error(self.policy.body_too_large(self._received))
        elif self.request.method == "POST":
            self._chunks.append(chunk)

    async def _answer(self) -> None:
        if self._finished:
            return
        if self._refusal is not None:
            self._reply_error(self._refusal)
            return
        method, path = self.request.method or "GET", self.request.path
        if method == "GET" and path == METRICS_PATH:
            self.set_header("Content-Type", CONTENT_TYPE)
            self.finish(self.api.metrics.render())
            return
        loop = asyncio.get_running_loop()
        if method == "GET" and path == ALL_STATUSES_PATH:
            # Thousands of models make a large answer: built off the loop, like a predict.
            self._reply(200, await loop.run_in_executor(self.executor, self.api.all_statuses))
            return
        if method == "POST":
            # Parsing, TensorFlow and JSON encoding run off the IOLoop thread, unless this
            # path's calls are cheaper than the hop to a thread (inline.py).
            body, self._chunks = b"".join(self._chunks), []
            if self.inline is not None and self.inline.wanted(path, len(body)):
                status, payload, taken = _timed(self.api, path, body, self._started)
            else:
                status, payload, taken = await loop.run_in_executor(
                    self.executor, _timed, self.api, path, body, self._started
                )
            if self.inline is not None:
                self.inline.record(path, len(body), status, taken)
        else:  # status/metadata: a quick lookup
            status, payload = self.api.handle(method, path, started=self._started)
        self._reply(status, payload)

    get = post = put = delete = patch = head = options = _answer

    def _reply(self, status: int, payload: bytes) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(payload)

    def _reply_error(self, error: ServingError) -> None:
        if error.http_status in (403, 415):
            # A refused page or client should be findable in the log; %r keeps it one line.
            log.warning("Refused %s %s: %r", self.request.method, self.request.path, error.message)
        self._reply(error.http_status, json.dumps({"error": error.message}).encode("utf-8"))

    def check_xsrf_cookie(self) -> None:
        """A model server API has no cookies to protect."""


def _timed(api: Api, path: str, body: bytes, started: float) -> tuple[int, bytes, float]:
    """`api.handle` of a POST, and the seconds it took on the thread that ran it."""
    began = time.perf_counter()
    status, payload = api.handle("POST", path, body, started)
    return status, payload, time.perf_counter() - began


def _log_request(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    if status >= 500:
        request = handler.request
        log.warning("%d %s %s", status, request.method, request.path)


def make_app(
    manager: ModelManager,
    executor: Executor | None = None,
    policy: RequestPolicy | None = None,
    api: Api | None = None,
    inline: InlineCalls | None = None,
) -> tornado.web.Application:
    """The REST application; `executor` runs predictions (default: one thread per CPU), but
    those `inline` finds cheap; `api` is given when another front end (gRPC) shares its
    metrics."""
    if executor is None:
        executor = ThreadPoolExecutor(os.cpu_count() or 4, thread_name_prefix="modelserver-rest")
    handler_args = {
        "api": api or Api(manager),
        "executor": executor,
        "policy": policy or RequestPolicy(),
        "inline": inline,
    }
    return tornado.web.Application([(r".*", RestHandler, handler_args)], log_function=_log_request)


def make_server(
    manager: ModelManager,
    executor: Executor | None = None,
    policy: RequestPolicy | None = None,
    api: Api | None = None,
    inline: InlineCalls | None = None,
) -> tornado.httpserver.HTTPServer:
    """An HTTP server for `make_app`, with the body limit as its hard stop."""
    policy = policy or RequestPolicy()
    return tornado.httpserver.HTTPServer(
        make_app(manager, executor, policy, api, inline),
        max_body_size=policy.max_body_bytes + HARD_STOP_MARGIN,
    )
