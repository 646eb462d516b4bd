"""Submarine's serve routes: POST, DELETE and GET /api/v1/serve, one serve, and a ping."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import InvalidInput
from ..schemas import ServeRequest, ServeView, parse_positive_int, parse_request
from .base import ModelServeHandler

SERVE_BODY = "modelName and modelVersion"
MAX_WAIT_SECONDS = 600.0


class ServeHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = parse_request(ServeRequest, self.json_body(SERVE_BODY))
        wait = self._wait_seconds()
        # create can wait too: retrying a FAILED serve first takes its old deployment down.
        view = await self.run(self.service.create, request.model_name, request.model_version)
        if wait:
            view = await self.run(
                self.service.wait, request.model_name, request.model_version, wait
            )
        self.answer(_create_message(view), self.serve_json(view))

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        request = parse_request(ServeRequest, self.json_body(SERVE_BODY))
        await self.run(self.service.delete, request.model_name, request.model_version)
        self.answer("Delete the model serve instance")

    @web.authenticated
    @authorized
    async def get(self) -> None:
        views = await self.run(self.service.list_serves)
        self.answer("List model serve instances", [self.serve_json(view) for view in views])

    def _wait_seconds(self) -> float:
        raw = self.get_query_argument("wait", None)
        if raw is None:
            return 0.0
        try:
            wait = float(raw)
        except ValueError:
            wait = -1.0
        if not 0 <= wait <= MAX_WAIT_SECONDS:
            raise InvalidInput(
                f"wait: must be a number of seconds from 0 to {MAX_WAIT_SECONDS:.0f}"
            )
        return wait


class ServeItemHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str, version: str) -> None:
        view = await self.run(self.service.get, name, _version(version))
        self.answer("Get the model serve instance", self.serve_json(view))


class ServeLogsHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str, version: str) -> None:
        tail = self.int_argument("tail") if self.get_query_argument("tail", None) else 100
        lines = await self.run(self.service.logs, name, _version(version), tail)
        self.answer("Get the model serve instance's logs", lines)


class PingHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.answer("Ping the serve API", "Pong")


def _version(raw: str) -> int:
    return parse_positive_int(raw, "modelVersion")


def _create_message(view: ServeView) -> str:
    # Submarine's message, plus where the serve stands when it is not ready yet.
    if view.state.value == "AVAILABLE":
        return "Create a serve instance"
    return f"Create a serve instance: {view.state.value}" + (
        f" ({view.reason})" if view.reason else ""
    )
