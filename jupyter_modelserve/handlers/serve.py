"""Submarine's serve routes: POST, DELETE and GET /api/v1/serve, one serve, and a ping."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import InvalidInput
from ..schemas import (
    MAX_LOG_TAIL,
    ServeRequest,
    ServeState,
    ServeView,
    parse_request,
    validate_model_name,
)
from ..schemas import validate_version as _validate_version
from ..servestate import failure, settled
from .base import ModelServeHandler

SERVE_BODY = "modelName and modelVersion"
MAX_WAIT_SECONDS = 600.0


class ServeHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = parse_request(ServeRequest, await self.json_body(SERVE_BODY))
        wait = self._wait_seconds()
        # create can wait too: retrying a FAILED serve first takes its old deployment down.
        view = await self.run(self.service.create, request.model_name, request.model_version)
        if wait:
            view = await self._wait(view, wait)
        self.answer(_create_message(view), self.serve_json(view))

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        request = parse_request(ServeRequest, await self.json_body(SERVE_BODY))
        name, version = request.model_name, request.model_version
        await self.run(self.service.start_delete, name, version)
        # Answer once the backend confirms, waiting on the loop rather than in a thread.
        timeout = self.service.delete_timeout
        done = await self.poll(lambda: self.service.finish_delete(name, version), bool, timeout)
        if not done:
            raise self.service.still_deleting(name, version)
        self.answer("Delete the model serve instance")

    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit, offset = self.page()

        def rows() -> list[dict[str, Any]]:
            views = self.service.list_serves(limit=limit, offset=offset)
            return [self.serve_json(view) for view in views]

        await self.answer_page("List model serve instances", rows, limit, offset)

    async def _wait(self, view: ServeView, timeout: float) -> ServeView:
        """Until AVAILABLE (returned), FAILED (ServeFailed) or `timeout` (the current view):
        ServeService.wait's rule, polled on the loop instead of in a parked thread."""
        name, version = view.model_name, view.model_version
        if not settled(view):
            view = await self.poll(lambda: self.service.get(name, version), settled, timeout)
        if view.state is ServeState.FAILED:
            raise failure(view)
        return view

    def _wait_seconds(self) -> float:
        raw = self.query("wait")
        if raw is None:
            return 0.0
        try:
            wait = float(raw) if len(raw) <= 32 else -1.0
        except ValueError:
            wait = -1.0
        if not 0 <= wait <= MAX_WAIT_SECONDS:  # NaN fails this too
            raise InvalidInput(
                f"wait: must be a number of seconds from 0 to {MAX_WAIT_SECONDS:.0f}"
            )
        return wait


class ServeItemHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str, version: str) -> None:
        view = await self.run(self.service.describe, _name(name), _version(version))
        self.answer("Get the model serve instance", self.serve_json(view, described=True))


class ServeLogsHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self, name: str, version: str) -> None:
        tail = self._bounded_int("tail", 100, 1, MAX_LOG_TAIL)
        lines = await self.run(self.service.logs, _name(name), _version(version), tail)
        self.answer("Get the model serve instance's logs", lines)


class PingHandler(ModelServeHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.answer("Ping the serve API", "Pong")


def _name(raw: str, field: str = "modelName") -> str:
    """A model name from a path segment (tornado has already %-decoded it)."""
    return validate_model_name(raw, field)


def _version(raw: str) -> int:
    return _validate_version(raw, "modelVersion")


def _create_message(view: ServeView) -> str:
    # Submarine's message, plus where the serve stands when it is not ready yet.
    if view.state is ServeState.AVAILABLE:
        return "Create a serve instance"
    return f"Create a serve instance: {view.state.value}" + (
        f" ({view.reason})" if view.reason else ""
    )
