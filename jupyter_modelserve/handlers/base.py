"""The envelope every route answers with, and the one place errors become HTTP responses."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web

from ..errors import InvalidInput, ModelServeError
from ..schemas import ServeView, parse_positive_int
from ..service import ServeService
from .body import parse_json_body

T = TypeVar("T")
PROXY_PREFIX = "modelserve/v1/models"


# Pinned names: HTTPStatus renames some between Python versions (422 in 3.13).
_STATUS_NAMES = {
    200: "OK",
    400: "BAD_REQUEST",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    422: "UNPROCESSABLE_ENTITY",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def envelope(code: int, message: str, result: Any) -> dict[str, Any]:
    """Submarine's response shape, fields in Submarine's order; `status` mirrors `code`."""
    return {
        "status": _STATUS_NAMES.get(code) or HTTPStatus(code).name,
        "code": code,
        "success": code < 400,
        "message": message,
        "result": result,
        "attributes": {},
    }


class ModelServeHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every route: thin, it parses, calls the service in a thread, and answers."""

    auth_resource = "modelserve"

    @property
    def service(self) -> ServeService:
        service: ServeService = self.settings["modelserve_service"]
        return service

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking service work (database, subprocess, cluster) off the event loop.

        On threads of our own: calls that wait on a backend (?wait, DELETE, a slow cluster)
        can then never starve the shared pool the rest of the Jupyter server runs on.
        """
        limiter: CapacityLimiter = self.settings["modelserve_threads"]
        return await to_thread.run_sync(function, *args, limiter=limiter)

    def json_body(self, expected: str) -> Any:
        return parse_json_body(self.request.body, expected)

    def int_argument(self, name: str) -> int:
        return parse_positive_int(self.get_query_argument(name, None), name)

    def str_argument(self, name: str) -> str:
        value = self.get_query_argument(name, None)
        if not value:
            raise InvalidInput(f"{name}: query parameter is required")
        return value

    def answer(self, message: str, result: Any = None, code: int = HTTPStatus.OK) -> None:
        self.set_status(code)
        self.finish(envelope(code, message, result))

    def serve_json(self, view: ServeView) -> dict[str, Any]:
        """A serve as the REST API shows it, with the proxy URL on this very server."""
        path = url_path_join(
            self.base_url, PROXY_PREFIX, view.model_name, "versions", str(view.model_version)
        )
        proxy_url = f"{self.request.protocol}://{self.request.host}{path}:predict"
        return view.model_copy(update={"proxy_url": proxy_url}).to_json()

    # -- the one error translator ----------------------------------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status_code, message = self.describe_error(status_code, kwargs)
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(envelope(status_code, message, None))

    def describe_error(self, status_code: int, kwargs: dict[str, Any]) -> tuple[int, str]:
        """The status and the user-facing message for whatever ended the request."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, ModelServeError):
            status_code, message = int(error.status), error.message
        elif isinstance(error, web.HTTPError) and error.log_message:
            message = error.log_message % error.args if error.args else error.log_message
        elif status_code == HTTPStatus.FORBIDDEN:
            message = "Forbidden: send the Jupyter server's token as 'Authorization: token <token>'"
        elif error is not None and not isinstance(error, web.HTTPError):
            message = f"internal error: {type(error).__name__}: {error}; see the server log"
        else:
            message = HTTPStatus(status_code).phrase
        return status_code, message

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # A user error is an answer, not a server fault: keep tracebacks for real faults.
        if isinstance(value, ModelServeError):
            self.log.info("%s %s: %s", self.request.method, self.request.uri, value.message)
        else:
            super().log_exception(typ, value, tb)
