"""Lists at scale: one status request per list, parse caches that notice a change, list pages
answered in full, and the start-up heap frozen (issue 12, registry scale).

Real parts throughout: the built-in model server (in-process for its own route, as a detached
process under the local backend), the `simple` SavedModel, a real Jupyter server and registry.
"""

from __future__ import annotations

import contextlib
import gc
import http.client
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from benchmarks.registry_scale import insert_rows
from jupyter_modelserve.app import ModelServeApp
from jupyter_modelserve.backends.base import Observed, ServeSpec
from jupyter_modelserve.backends.local import LocalBackend
from jupyter_modelserve.backends.local_config import ModelsConfigFile
from jupyter_modelserve.backends.local_status import (
    _entry,
    configured,
    observation,
    status_answers,
)
from jupyter_modelserve.handlers.base import DESCRIBED_KEYS
from jupyter_modelserve.jupyter_info import PROXY_PREFIX
from jupyter_modelserve.modelserver.config_proto import parse_model_server_config
from jupyter_modelserve.modelserver.manager import ModelManager
from jupyter_modelserve.modelserver.metrics import PATH as METRICS_PATH
from jupyter_modelserve.service import ServeService
from jupyter_modelserve.tfserving import ALL_STATUSES_PATH
from jupyter_modelserve.tfserving.model_config import (
    ModelConfig,
    VersionPolicy,
    render_model_config_list,
)

from .conftest import Api, server_config
from .modelserver_fixtures import TIMEOUT, config, serve, wait_for, wait_idle

SPECIFIC_1 = VersionPolicy(kind="specific", versions=(1,))

# -- the built-in model server's bulk status route ---------------------------------------------


def test_the_bulk_route_answers_each_model_as_its_own_status_route(
    half_plus_two: Path, tmp_path: Path
) -> None:
    # Given a built-in model server with `simple` loaded, `gone` whose version folder is
    # missing, and `empty` whose base folder holds no version at all
    (tmp_path / "empty").mkdir()
    manager = ModelManager()
    manager.apply_config(
        [
            config("simple", half_plus_two.parent, SPECIFIC_1),
            config("gone", tmp_path / "gone", SPECIFIC_1),
            config("empty", tmp_path / "empty"),
        ]
    )
    wait_idle(manager, "simple", "gone", "empty")
    try:
        with serve(manager) as url:
            # When every model's status is read in one request
            bulk = requests.get(url + ALL_STATUSES_PATH, timeout=TIMEOUT)
            # Then it answers both models that have versions, each entry exactly what
            # TF Serving's own status route answers for that model
            assert bulk.status_code == 200, bulk.text
            assert bulk.headers["Content-Type"] == "application/json"
            models = bulk.json()["models"]
            assert sorted(models) == ["gone", "simple"]
            for name in ("simple", "gone"):
                own = requests.get(f"{url}/v1/models/{name}", timeout=TIMEOUT)
                assert own.status_code == 200, own.text
                assert models[name] == own.json()
            assert models["simple"]["model_version_status"][0]["state"] == "AVAILABLE"
            gone = models["gone"]["model_version_status"][0]
            assert gone["state"] == "END"
            assert gone["status"]["error_code"] == "NOT_FOUND"
            assert str(tmp_path / "gone" / "1") in gone["status"]["error_message"]
            # And the model without versions is absent, as its own route says it is unknown
            empty = requests.get(f"{url}/v1/models/empty", timeout=TIMEOUT)
            assert empty.status_code == 404
            # And TF Serving's routes are unchanged: /v1/models alone names no model
            bare = requests.get(f"{url}/v1/models", timeout=TIMEOUT)
            assert bare.status_code == 400
            assert bare.json() == {"error": "Missing model name in request."}
    finally:
        manager.close()


# -- the local backend: one request per list ---------------------------------------------------


class CountingProxy:
    """A TCP proxy in front of a server that records the request lines clients send through it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent: list[bytes] = []  # what each client connection sent, in full
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self.lock:
                index = len(self.sent)
                self.sent.append(b"")
            for args in ((client, upstream, index), (upstream, client, None)):
                thread = threading.Thread(target=self._pump, args=args, daemon=True)
                thread.start()
                self.threads.append(thread)

    def _pump(self, source: socket.socket, target: socket.socket, index: int | None) -> None:
        try:
            while chunk := source.recv(65536):
                if index is not None:
                    with self.lock:
                        self.sent[index] += chunk
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
            source.close()  # the other pump closes `target`, its own source

    def request_lines(self) -> list[str]:
        """'METHOD path' of every request received so far (GETs: no bodies to skip)."""
        with self.lock:
            sent = b"".join(self.sent)
        return [
            f"{m.group(1).decode()} {m.group(2).decode()}"
            for m in re.finditer(rb"^([A-Z]+) (\S+) HTTP/1\.[01]\r$", sent, re.M)
        ]

    def close(self) -> None:
        self.listener.close()
        for thread in self.threads:
            thread.join(TIMEOUT)


STATUS_COUNT = re.compile(
    r'^:tensorflow:serving:request_count\{model_name="([^"]*)",status="[^"]*",API="status",'
    r'version="[^"]*"\} (\d+)$',
    re.M,
)


def status_calls(port: int) -> dict[str, int]:
    """Per-model status requests the model server has counted (its Prometheus page)."""
    page = requests.get(f"http://127.0.0.1:{port}{METRICS_PATH}", timeout=TIMEOUT).text
    assert ":tensorflow:serving:request_count" in page, page
    counts: dict[str, int] = {}
    for name, count in STATUS_COUNT.findall(page):
        counts[name] = counts.get(name, 0) + int(count)
    return counts


class Local:
    """A local backend with its built-in model server running the serves below."""

    def __init__(self, backend: LocalBackend, specs: list[ServeSpec], missing: Path) -> None:
        self.backend = backend
        self.specs = specs
        self.missing = missing

    @property
    def port(self) -> int:
        info = self.backend._running_info()
        assert info is not None and info["kind"] == "builtin", info
        return int(info["port"])


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, half_plus_two: Path) -> Iterator[Local]:
    folder = tmp_path_factory.mktemp("local-scale")
    backend = LocalBackend(data_dir=folder, rest_api_port=0, grpc_port=0)
    missing = folder / "gone"
    applied = [
        ServeSpec("simple", 1, str(half_plus_two)),  # loads
        ServeSpec("simple", 2, str(half_plus_two.parent / "2")),  # no such version folder
        ServeSpec("twin", 1, str(half_plus_two)),  # loads, under another name
        ServeSpec("gone", 1, str(missing / "1")),  # no such model folder
    ]
    for spec in applied:  # back to back: one server starts (tests/test_local_server_start.py)
        backend.apply(spec)
    specs = [*applied, ServeSpec("never", 1, str(half_plus_two))]  # a row the server lacks

    def settled() -> bool:
        if backend._running_info() is None:
            return False
        states = {o.state for o in backend.statuses(applied, TIMEOUT).values()}
        return not states & {Observed.STARTING, Observed.LOADING, Observed.UNKNOWN}

    try:
        wait_for(settled, timeout=120, what="the local model server to load its models")
        yield Local(backend, specs, missing)
    finally:
        backend.stop_server()
        backend.close()


def test_a_list_reads_every_serve_in_one_request_to_the_builtin_server(local: Local) -> None:
    # Given five serves on the local backend's built-in model server, behind a proxy that
    # counts the requests the backend sends it
    port = local.port
    info_text = local.backend.info_file.read_text()
    proxy = CountingProxy(port)
    local.backend.info_file.write_text(json.dumps({**json.loads(info_text), "port": proxy.port}))
    before = status_calls(port)
    try:
        # When the backend reads their states for one list
        found = local.backend.statuses(local.specs, TIMEOUT)
    finally:
        local.backend.info_file.write_text(info_text)
        proxy.close()
    # Then it sent exactly one request, the bulk one, and the server counted no per-model call
    assert proxy.request_lines() == [f"GET {ALL_STATUSES_PATH}"]
    assert status_calls(port) == before
    # And every serve's state was read right from that one answer
    assert {key: o.state for key, o in found.items()} == {
        ("simple", 1): Observed.AVAILABLE,
        ("simple", 2): Observed.FAILED,
        ("twin", 1): Observed.AVAILABLE,
        ("gone", 1): Observed.FAILED,
        ("never", 1): Observed.ABSENT,
    }
    assert str(local.missing / "1") in (found[("gone", 1)].reason or "")
    assert "does not exist" in (found[("gone", 1)].reason or "")


def test_the_per_name_reads_give_the_same_observations_as_the_bulk_read(local: Local) -> None:
    # Given the same serves, and the model server's per-model status counts so far
    names = list(dict.fromkeys(spec.name for spec in local.specs))
    wanted = configured(local.backend.models.read())
    before = status_calls(local.port)

    def read(all_at_once: bool) -> tuple[dict[str, Any], dict[Any, Any]]:
        connection = http.client.HTTPConnection("127.0.0.1", local.port)
        try:
            answers = status_answers(
                connection, names, time.monotonic() + TIMEOUT, all_at_once=all_at_once
            )
        finally:
            connection.close()
        seen = {s.key: observation(answers[s.name], s.key in wanted, s) for s in local.specs}
        return answers, seen

    # When they are read once per name (as from tensorflow_model_server), then all at once
    per_name = read(all_at_once=False)
    bulk = read(all_at_once=True)
    # Then both reads give the same answer for every name and the same observation per serve
    assert per_name == bulk
    assert per_name[0]["never"] == 404
    assert per_name[1][("simple", 1)].state == Observed.AVAILABLE
    # And only the per-name read made per-model calls, one per name
    after = status_calls(local.port)
    assert {n: after.get(n, 0) - before.get(n, 0) for n in names} == dict.fromkeys(names, 1)


# -- parse caches ------------------------------------------------------------------------------


def entry(name: str, base: str) -> ModelConfig:
    return ModelConfig(name=name, base_path=base, version_policy=SPECIFIC_1)


def test_the_config_file_parse_is_read_again_when_the_text_changes(tmp_path: Path) -> None:
    models = ModelsConfigFile(tmp_path / "models.config", logging.getLogger(__name__))
    a = [entry("a", "/models/a"), entry("b", "/models/b")]
    b = [entry("a", "/models/a"), entry("c", "/models/c")]
    # Given config A written and read (a list mutated by its reader changes no later read)
    assert models.write(a)
    first = models.read()
    assert first == a
    first.clear()
    assert models.read() == a
    # When config B, another text of the same length, replaces it
    assert models.write(b)
    # Then the next read gives B's models, and reading again still does
    assert models.read() == b
    assert models.read() == b
    # And A again gives A's
    assert models.write(a)
    assert models.read() == a


def test_an_empty_config_file_is_set_aside_as_before_the_cache(tmp_path: Path) -> None:
    # Given an empty config file (the cache starts empty too: it must not match)
    path = tmp_path / "models.config"
    path.write_text("")
    models = ModelsConfigFile(path, logging.getLogger(__name__))
    # When it is read
    # Then nothing is served and the file is moved aside for a look, as any unreadable one
    assert models.read() == []
    assert not path.exists()
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["models.unreadable"]


@pytest.mark.parametrize(
    "answer",
    [{"model_version_status": "AVAILABLE"}, {"model_version_status": [1]}, {"other": []}, []],
)
def test_a_malformed_status_answer_reads_as_a_server_fault_for_its_serves(answer: Any) -> None:
    # Given a status answer of the wrong shape in a model server's bulk reply
    spec = ServeSpec("m", 1, "/models/m/1")
    # When the backend reads it
    found = observation(_entry(answer), True, spec)
    # Then the serve reads as waiting on a server that answered 500, with no exception to break
    # the list it is in
    assert (found.state, found.reason) == (Observed.STARTING, "model server answered 500")


def test_the_model_server_parse_cache_follows_the_text() -> None:
    a = render_model_config_list([entry("a", "/models/a")])
    b = render_model_config_list([entry("b", "/models/b")])
    # Given config A parsed once
    first = parse_model_server_config(a)
    assert [c.name for c in first] == ["a"]
    first.clear()  # the caller's list is its own
    # When the same text is parsed again, then another text, then A again
    again = parse_model_server_config(a)
    other = parse_model_server_config(b)
    back = parse_model_server_config(a)
    # Then equal text gives equal models, and changed text a fresh parse
    assert again == back == parse_model_server_config(str(a))
    assert [(c.name, c.base_path) for c in again] == [("a", "/models/a")]
    assert [(c.name, c.base_path) for c in other] == [("b", "/models/b")]
    # And a broken text is refused every time, never served from the cache
    for _ in range(2):
        with pytest.raises(ValueError):
            parse_model_server_config(a + "\nnot a field\n")


# -- list routes over many rows ----------------------------------------------------------------

SERVES = 50
VERSIONS = 1200


def seed(service: ServeService) -> list[str]:
    """SERVES FAILED serve rows (one model each, inserted in shuffled order) and `big` with
    VERSIONS versions, inserted in bulk; returns the serves' names in their listed order."""
    names = [f"m{i:03d}" for i in range(SERVES)]
    shuffled = random.Random(12).sample(names, len(names))
    numbers = random.Random(12).sample(range(1, VERSIONS + 1), VERSIONS)
    insert_rows(service.store.engine, shuffled, numbers, tag_every=0)
    return names


async def test_list_routes_answer_every_row_of_a_full_page(api: Api, service: ServeService) -> None:
    # Given 50 FAILED serves and a model with 1,200 versions, straight in the registry
    names = seed(service)
    # When the serves are listed in one page
    status, listed = await api("GET", "/api/v1/serve", params={"limit": 1000})
    # Then every row is there, in order, with its proxy URL and without the described-only keys
    assert status == 200
    assert listed["attributes"] == {"limit": 1000, "offset": 0}
    rows = listed["result"]
    assert [(r["modelName"], r["modelVersion"]) for r in rows] == [(n, 1) for n in names]
    for row in rows:
        assert row["state"] == "FAILED", row
        assert row["proxyUrl"].endswith(f"/{PROXY_PREFIX}/{row['modelName']}/versions/1:predict")
        assert row["proxyUrl"].startswith("http://")
        assert not set(DESCRIBED_KEYS) & set(row), row
    # And the registered models list every model, in name order
    _, models = await api("GET", "/api/v1/registered-model", params={"limit": 1000})
    assert [m["name"] for m in models["result"]] == sorted([*names, "big"])
    # When the versions are listed a full page at a time
    path = "/api/v1/model-version/big"
    _, first = await api("GET", path, params={"limit": 1000})
    _, rest = await api("GET", path, params={"limit": 1000, "offset": 1000})
    # Then the first page holds 1,000 of them and the second the other 200, all in order
    assert [v["version"] for v in first["result"]] == list(range(1, 1001))
    assert [v["version"] for v in rest["result"]] == list(range(1001, VERSIONS + 1))
    assert rest["attributes"] == {"limit": 1000, "offset": 1000}
    assert all(v["name"] == "big" for v in first["result"] + rest["result"])


# -- the start-up heap -------------------------------------------------------------------------


def the_app(serverapp: Any) -> ModelServeApp:
    return next(
        a
        for apps in serverapp.extension_manager.extension_apps.values()
        for a in apps
        if isinstance(a, ModelServeApp)
    )


@pytest.mark.parametrize(
    "jp_server_config", [server_config(ModelServeApp={"freeze_startup_heap": True})]
)
def test_the_start_up_heap_is_frozen_when_asked(jp_serverapp: Any, jp_asyncio_loop: Any) -> None:
    # Given a Jupyter server whose extension is set to freeze its start-up heap
    app = the_app(jp_serverapp)
    before = gc.get_freeze_count()
    try:
        # When the extension starts as a running server starts it
        jp_asyncio_loop.run_until_complete(app._start_jupyter_server_extension(jp_serverapp))
        # Then the garbage collector holds the start-up objects in its permanent generation
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()  # the pytest process must not stay frozen
        app.service.backend.stop_server()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "jp_server_config", [server_config(ModelServeApp={"freeze_startup_heap": False})]
)
def test_the_start_up_heap_is_left_alone_when_not(jp_serverapp: Any, jp_asyncio_loop: Any) -> None:
    # Given a Jupyter server whose extension is set not to freeze its heap
    app = the_app(jp_serverapp)
    before = gc.get_freeze_count()
    try:
        # When the extension starts
        jp_asyncio_loop.run_until_complete(app._start_jupyter_server_extension(jp_serverapp))
        # Then nothing more was frozen
        assert gc.get_freeze_count() == before
    finally:
        app.service.backend.stop_server()  # type: ignore[union-attr]
