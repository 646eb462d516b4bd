"""Nothing that blocks runs on the Jupyter server's event loop: not a timing, an observation.

Every SQL statement the registry sends, every process the backend starts and every HTTP call it
makes to the model server is recorded with the thread it ran on, while a serve's whole life
goes through the REST API; none may be the event loop's thread. (A latency bound on pings
would say the same less surely, and fail on a loaded machine.)
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from jupyter_modelserve.service import ServeService

from .conftest import Api


class Threads:
    """Where each kind of blocking call ran: {kind: {thread names}}."""

    def __init__(self) -> None:
        self.seen: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def record(self, kind: str) -> None:
        with self._lock:
            self.seen.setdefault(kind, set()).add(threading.current_thread().name)


@pytest.fixture
def threads(service: ServeService, monkeypatch: pytest.MonkeyPatch) -> Iterator[Threads]:
    """Observers on the registry's engine, on process starts and on http.client requests; each
    records the calling thread and lets the call run unchanged."""
    seen = Threads()

    def on_statement(*_: Any) -> None:
        seen.record("SQL statement")

    popen_init = subprocess.Popen.__init__
    request = http.client.HTTPConnection.request

    def observed_popen(self: Any, *args: Any, **kwargs: Any) -> None:
        seen.record("process start")
        popen_init(self, *args, **kwargs)

    def observed_request(self: Any, *args: Any, **kwargs: Any) -> None:
        seen.record("HTTP call to the model server")
        request(self, *args, **kwargs)

    event.listen(service.store.engine, "before_cursor_execute", on_statement)
    monkeypatch.setattr(subprocess.Popen, "__init__", observed_popen)
    monkeypatch.setattr(http.client.HTTPConnection, "request", observed_request)
    try:
        yield seen
    finally:
        event.remove(service.store.engine, "before_cursor_execute", on_statement)


async def test_a_serves_whole_life_blocks_nothing_on_the_event_loop(
    api: Api,
    simple_registered: dict[str, Any],
    threads: Threads,
    http_server_client: Any,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
) -> None:
    # Given the Jupyter server's event loop: the thread this test runs on
    loop_thread = threading.current_thread().name
    serve = {"modelName": "simple", "modelVersion": 1}
    # When a serve is created (starting the model server), read, listed, predicted through the
    # proxy, its logs read, the registry listed, and the serve deleted
    code, created = await api("POST", "/api/v1/serve", serve, params={"wait": 60})
    assert code == 200 and created["result"]["state"] == "AVAILABLE", created
    for method, path in [
        ("GET", "/api/v1/serve/simple/1"),
        ("GET", "/api/v1/serve"),
        ("GET", "/api/v1/serve/simple/1/logs"),
        ("GET", "/api/v1/registered-model"),
        ("GET", "/api/v1/model-version/simple"),
    ]:
        code, answer = await api(method, path)
        assert code == 200, (path, answer)
    predicted = await http_server_client.fetch(
        f"{jp_base_url}modelserve/v1/models/simple/versions/1:predict",
        method="POST",
        body=json.dumps({"instances": [1.0]}),
        headers=jp_auth_header,
        raise_error=False,
    )
    assert (predicted.code, json.loads(predicted.body)) == (200, {"predictions": [2.5]})
    code, deleted = await api("DELETE", "/api/v1/serve", serve)
    assert code == 200, deleted

    # Then each kind of blocking call happened, and none of them on the event loop's thread
    assert set(threads.seen) == {
        "SQL statement",
        "process start",
        "HTTP call to the model server",
    }, threads.seen
    on_the_loop = {kind for kind, names in threads.seen.items() if loop_thread in names}
    assert on_the_loop == set(), f"ran on the event loop: {on_the_loop}; threads: {threads.seen}"
