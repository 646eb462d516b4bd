"""Fixtures: a real Jupyter server with the extension (pytest-jupyter), real SavedModels."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

from jupyter_modelserve.app import ModelServeApp
from jupyter_modelserve.service import ServeService

from .contract import Contract
from .servers import JupyterProcess, model_server_pid

pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.kube.fixtures"]

SEED_BODY = '\n{\n  "modelName": "simple", \n  "modelVersion":1, \n}\n'


@pytest.fixture(scope="session")
def half_plus_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real half_plus_two SavedModel version folder, built once per run."""
    from jupyter_modelserve.demo import build_half_plus_two

    return build_half_plus_two(tmp_path_factory.mktemp("models") / "half_plus_two" / "1")


@pytest.fixture
def local_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`jupyter_modelserve.api` as a kernel uses it: registry, artifacts and model server in
    tmp folders, the model server on a free port; it is stopped afterwards."""
    from jupyter_modelserve import api

    for kind in ("data", "config", "runtime"):
        monkeypatch.setenv(f"JUPYTER_{kind.upper()}_DIR", str(tmp_path / kind))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
    )
    monkeypatch.setattr(api, "_service", None)
    yield api
    service = api._service
    if service is not None:
        service.backend.stop_server()  # type: ignore[attr-defined]
        service.close()


def server_config(**sections: dict[str, Any]) -> dict[str, Any]:
    """Jupyter server config with the extension on, a free model server port, and `sections`."""
    config: dict[str, Any] = {
        "ServerApp": {"jpserver_extensions": {"jupyter_modelserve": True}},
        # Port 0: tests never fight over 8501 with each other or with a user's server.
        "LocalBackend": {"rest_api_port": 0, "grpc_port": 0},
        # gc.freeze in each of the many in-process servers would freeze the pytest heap for good.
        "ModelServeApp": {"freeze_startup_heap": False},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    return config


LOCKED_DOWN = {"allow_unauthenticated_access": False}


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return server_config()


@pytest.fixture
def modelserve_app(jp_serverapp: Any, jp_asyncio_loop: Any) -> Iterator[ModelServeApp]:
    """The extension inside the test server, started as a running server starts it (the
    reconciler ticking); stops the model server it started afterwards."""
    app = next(
        a
        for apps in jp_serverapp.extension_manager.extension_apps.values()
        for a in apps
        if isinstance(a, ModelServeApp)
    )
    # pytest-jupyter starts the app without its event-loop hooks; a real server runs them.
    jp_asyncio_loop.run_until_complete(app._start_jupyter_server_extension(jp_serverapp))
    yield app
    assert app.service is not None
    # The reconciler first: a tick after the server's stop could start it again (a serve the
    # test left PENDING), leaving a model server behind the test.
    jp_asyncio_loop.run_until_complete(_stop_reconciling(app))
    stop = getattr(app.service.backend, "stop_server", None)
    if stop is not None:
        stop()


async def _stop_reconciling(app: ModelServeApp) -> None:
    if app._reconciler is not None:
        app._reconciler.stop()
    deadline = time.monotonic() + 60
    while app._ticking and time.monotonic() < deadline:
        await asyncio.sleep(0.05)  # polling the tick in flight, bounded by the deadline


@pytest.fixture
def service(modelserve_app: ModelServeApp) -> ServeService:
    assert modelserve_app.service is not None
    return modelserve_app.service


@pytest.fixture
def jupyter(tmp_path: Path) -> Iterator[JupyterProcess]:
    """A real `jupyter modelserve` process (not started yet) in its own Jupyter folders."""
    server = JupyterProcess(tmp_path, {"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
    yield server
    server.stop()
    server.stop_model_server()


@pytest.fixture(scope="session")
def contract() -> Contract:
    return Contract()


Api = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
def api(jp_fetch: Any, modelserve_app: ModelServeApp, contract: Contract) -> Api:
    """Call a route; returns (status, envelope) after checking both against the OpenAPI document."""

    async def call(
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        raw = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
        response: HTTPResponse = await jp_fetch(
            *path.strip("/").split("/"),
            method=method,
            body=raw,
            params=params,
            headers=headers,
            raise_error=False,
            allow_nonstandard_methods=True,  # DELETE with a body, as Submarine's SDK sends it
        )
        envelope = json.loads(response.body)
        assert envelope["code"] == response.code, envelope
        contract.check(method, "/" + path.strip("/"), response.code, envelope)
        return response.code, envelope

    return call


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 60.0, what: str = "condition"
) -> Any:
    """Poll `check` until it returns a truthy value, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


async def crash_model_server(api: Api, service: ServeService) -> dict[str, Any]:
    """SIGKILL the local model server, then read `simple` 1 until the reconcile a read triggers
    has it AVAILABLE again on a new process; returns that serve."""
    backend: Any = service.backend
    crashed = model_server_pid(backend.dir)
    assert crashed is not None, "no local model server runs"
    os.kill(crashed, signal.SIGKILL)

    async def available_again() -> Any:
        _, envelope = await api("GET", "/api/v1/serve/simple/1")
        return envelope["result"]["state"] == "AVAILABLE" and envelope["result"]

    serve = await eventually(available_again, what="the serve to be AVAILABLE again")
    assert model_server_pid(backend.dir) not in (None, crashed)
    return serve


async def post_json(url: str, body: Any) -> tuple[int, Any]:
    """POST to a model server URL (not the Jupyter server); (0, None) while nothing listens."""
    try:
        response = await AsyncHTTPClient().fetch(
            url,
            method="POST",
            body=json.dumps(body),
            # As TF Serving clients send it; the model server refuses the form type that
            # tornado (like curl -d) would send by default, a browser's simple request.
            headers={"Content-Type": "application/json"},
            raise_error=False,
            request_timeout=30,
        )
    except ConnectionRefusedError:
        return 0, None
    return response.code, json.loads(response.body) if response.body else None


@pytest.fixture
def simple_registered(service: ServeService, half_plus_two: Path) -> dict[str, Any]:
    """`simple` version 1 in the registry (the REST route for it has tests of its own)."""
    return service.registry.register_saved_model(half_plus_two, "simple").to_json()
