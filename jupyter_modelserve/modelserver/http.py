"""The Tornado application serving TF Serving's REST API from a ModelManager."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Executor, ThreadPoolExecutor

import tornado.web

from .api import Api
from .logs import log
from .manager import ModelManager


class RestHandler(tornado.web.RequestHandler):
    """Every path goes through `Api.handle`, which answers unknown ones as TF Serving does."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def initialize(self, api: Api, executor: Executor) -> None:
        self.api = api
        self.executor = executor

    async def _answer(self) -> None:
        method, path = self.request.method or "GET", self.request.path
        if method == "POST":
            # Parsing, TensorFlow and JSON encoding all run off the IOLoop thread.
            loop = asyncio.get_running_loop()
            body = self.request.body
            status, payload = await loop.run_in_executor(
                self.executor, self.api.handle, method, path, body
            )
        else:
            status, payload = self.api.handle(method, path)  # status/metadata: a quick lookup
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(payload)

    get = post = put = delete = patch = head = options = _answer

    def check_xsrf_cookie(self) -> None:
        """A model server API has no cookies to protect."""


def _log_request(handler: tornado.web.RequestHandler) -> None:
    status = handler.get_status()
    if status >= 500:
        request = handler.request
        log.warning("%d %s %s", status, request.method, request.path)


def make_app(manager: ModelManager, executor: Executor | None = None) -> tornado.web.Application:
    """The REST application; `executor` runs predictions (default: one thread per CPU)."""
    if executor is None:
        executor = ThreadPoolExecutor(os.cpu_count() or 4, thread_name_prefix="modelserver-rest")
    return tornado.web.Application(
        [(r".*", RestHandler, {"api": Api(manager), "executor": executor})],
        log_function=_log_request,
    )
