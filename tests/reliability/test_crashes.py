"""Crashes: kill -9 of the Jupyter server mid-work, kill -9 and SIGSTOP of the model server.

Every fault is real (signals to real processes), every check polls with a deadline, and every
stopped process is continued or killed in a `finally`, so a failing test leaves nothing frozen.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from ..servers import TOKEN, free_port
from . import tally
from .conftest import NO_ANSWER, Answer, Jupyter, poll, register, send

PREDICT = {"instances": [1.0, 2.0, 5.0]}
PREDICTED = {"predictions": [2.5, 3.0, 4.5]}
# How long a GET of one serve or of the list may take while the model server is dead or hung:
# one status deadline (5 s by default) and some slack, however many serves there are.
READ_DEADLINE = 10.0
# A predict through the proxy while the model server is down must fail this fast, not hang.
PREDICT_FAILS_WITHIN = 5.0
FILLER_FILES = 1000  # 256 KiB each: a copy that takes a while, so it is caught in flight


@dataclass
class Poller:
    """Calls one route over and over on a thread, keeping (code, seconds) of every answer."""

    call: Callable[[], Answer]
    answers: list[tuple[int, float, Any]]

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            start = time.monotonic()
            code, body = self.call()
            self.answers.append((code, time.monotonic() - start, body))
            stop.wait(0.02)


@pytest.fixture
def polling() -> Iterator[Callable[..., list[Poller]]]:
    """Start pollers on threads; they stop (and are joined) at the end of the test."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(*calls: Callable[[], Answer]) -> list[Poller]:
        pollers = [Poller(call, []) for call in calls]
        for poller in pollers:
            thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
            thread.start()
            threads.append(thread)
        return pollers

    yield start
    stop.set()
    for thread in threads:
        thread.join(60)


@pytest.fixture(scope="module")
def big_saved_model(
    half_plus_two: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """half_plus_two with 250 MB of extra assets: registering it copies for a while."""
    folder = tmp_path_factory.mktemp("big") / "big" / "1"
    shutil.copytree(half_plus_two, folder)
    filler = os.urandom(256 * 1024)  # random, so no file system can store it sparsely
    (folder / "assets").mkdir(exist_ok=True)
    for i in range(FILLER_FILES):
        (folder / "assets" / f"filler-{i:04d}.bin").write_bytes(filler)
    yield folder
    shutil.rmtree(folder.parent, ignore_errors=True)


def serve_body(name: str, version: int) -> dict[str, Any]:
    return {"modelName": name, "modelVersion": version}


def serve_and_wait(server: Jupyter, name: str, version: int) -> dict[str, Any]:
    code, envelope = server.request("POST", "/api/v1/serve", serve_body(name, version), wait=120)
    assert code == 200 and envelope["result"]["state"] == "AVAILABLE", envelope
    result: dict[str, Any] = envelope["result"]
    return result


def settled(rows: dict[tuple[str, int], dict[str, Any]]) -> bool:
    """Every serve AVAILABLE, or FAILED with a reason: nothing left half-way."""
    return all(
        s["state"] == "AVAILABLE" or (s["state"] == "FAILED" and s["reason"]) for s in rows.values()
    )


def predict(url: str, timeout: float = 30) -> Answer:
    tally.requests()
    try:
        response = requests.post(
            url, json=PREDICT, headers={"Authorization": f"token {TOKEN}"}, timeout=timeout
        )
    except requests.RequestException as error:
        return NO_ANSWER, str(error)
    if response.status_code >= 500 and response.status_code != 503:  # 503: "it is down"
        tally.server_error()
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


# -- kill -9 of the Jupyter server --------------------------------------------------------------


def test_a_jupyter_server_killed_mid_work_restarts_with_nothing_half_made(
    make_jupyter: Callable[..., Jupyter], half_plus_two: Path, big_saved_model: Path
) -> None:
    # Given 8 registered versions, 1-4 AVAILABLE
    server = make_jupyter({"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
    server.start()
    for _ in range(8):
        register(server, "crash", half_plus_two)
    for version in range(1, 5):
        serve_and_wait(server, "crash", version)

    # And 5 and 6 just accepted (still loading)
    for version in (5, 6):
        code, envelope = server.request("POST", "/api/v1/serve", serve_body("crash", version))
        assert code == 200, envelope

    # When a registration of a large SavedModel is copying, creates of 7 and 8 (waiting for
    # them to load) and deletes of 1 and 2 are in flight, and the Jupyter server is killed
    pool = ThreadPoolExecutor(8)
    registration = pool.submit(
        server.request,
        "POST",
        "/api/v1/model-version",
        {"name": "big", "source": str(big_saved_model)},
    )
    staging = server.artifact_root / ".staging"
    poll(lambda: copied_files(staging) > 0, 60, "the registration's copy to start")
    creates = {
        v: pool.submit(server.request, "POST", "/api/v1/serve", serve_body("crash", v), wait=120)
        for v in (7, 8)
    }
    deletes = {
        v: pool.submit(server.request, "DELETE", "/api/v1/serve", serve_body("crash", v))
        for v in (1, 2)
    }
    in_flight = copied_files(staging)
    poll(lambda: copied_files(staging) > in_flight + 20, 60, "the copy to go on")
    copying = 0 < copied_files(staging) < FILLER_FILES
    server.kill()
    pool.shutdown(wait=True)
    assert copying, "the registration's copy was not in flight when the server was killed"
    created = {5, 6} | {v for v, answer in creates.items() if answered(answer) == 200}
    deleted = {v for v, answer in deletes.items() if answered(answer) == 200}
    assert answered(registration) in (NO_ANSWER, 200)

    # And the Jupyter server starts again
    server.start()

    # Then every serve comes up AVAILABLE or is FAILED with a reason
    rows = poll(
        lambda: (rows := server.rows()) and settled(rows) and rows,
        120,
        "every serve to be AVAILABLE or FAILED with a reason",
    )
    versions = {v for (name, v) in rows if name == "crash"}
    lost = (created | {3, 4}) - versions
    tally.lost(len(lost))
    assert not lost, f"accepted serves that vanished: {lost}"
    assert not versions & deleted, "a delete that answered 200 came back"
    assert all(rows[("crash", v)]["state"] == "AVAILABLE" for v in (3, 4))
    # And the model server's config and its own status hold exactly the AVAILABLE rows
    available = {v for v in versions if rows[("crash", v)]["state"] == "AVAILABLE"}
    configured = server.configured().get("crash", set())
    assert available <= configured <= versions, (configured, rows)
    poll(
        lambda: (
            {v for v, state in server.loaded("crash").items() if state == "AVAILABLE"} == available
        ),
        60,
        "the model server to serve exactly the AVAILABLE rows",
    )
    # And nothing half-made remains of the registration: no staging leftovers, and a version
    # of "big" exists only with its whole artifact
    assert server.staging_leftovers() == [], "a killed registration's copy stayed in .staging"
    code, envelope = server.request("GET", "/api/v1/model-version/big")
    listed = envelope["result"] if code == 200 else []
    assert code in (200, 404), envelope
    for version in listed:
        assert copied_files(Path(version["source"]) / "assets") == FILLER_FILES
    big = server.artifact_root / "big"
    on_disk = {int(p.name) for p in big.iterdir()} if big.is_dir() else set()
    assert on_disk == {v["version"] for v in listed}, "artifact folders without their row"
    tally.fault()  # counted once survived


def copied_files(folder: Path) -> int:
    """How many files a copy in progress has written below `folder` so far."""
    try:
        return sum(len(files) for _, _, files in os.walk(folder))
    except OSError:
        return 0


def answered(future: Future[Answer]) -> int:
    return future.result()[0]


# -- kill -9 of the model server ------------------------------------------------------------------


@pytest.mark.parametrize("port", ["free", "fixed"])
def test_a_killed_model_server_comes_back_on_its_port_and_predicts_fail_fast_meanwhile(
    make_jupyter: Callable[..., Jupyter],
    half_plus_two: Path,
    polling: Callable[..., list[Poller]],
    port: str,
) -> None:
    # Given simple 1 AVAILABLE, the model server on a port picked for it (0) or configured
    rest_api_port = 0 if port == "free" else free_port()
    server = make_jupyter({"LocalBackend": {"rest_api_port": rest_api_port}})
    server.start()
    register(server, "simple", half_plus_two)
    serve = serve_and_wait(server, "simple", 1)
    url, proxy_url = serve["url"], serve["proxyUrl"]
    first_port = server.model_server_port()
    crashed = server.model_server_pid()
    assert crashed is not None and first_port is not None

    # And clients polling the serve, the list and predictions through the proxy
    get_one, get_list, proxied = polling(
        lambda: server.request("GET", "/api/v1/serve/simple/1", timeout=30),
        lambda: server.request("GET", "/api/v1/serve", timeout=30),
        lambda: predict(proxy_url),
    )
    poll(lambda: all(p.answers for p in (get_one, get_list, proxied)), 30, "first answers")

    # When the model server is killed with SIGKILL
    os.kill(crashed, signal.SIGKILL)
    gap_from = len(proxied.answers)

    # Then it comes back (started by the pollers' reads) and the serve reads AVAILABLE again
    poll(
        lambda: (
            server.model_server_pid() not in (None, crashed)
            and server.request("GET", "/api/v1/serve/simple/1")[1]["result"]["state"] == "AVAILABLE"
        ),
        60,
        "a new model server and the serve AVAILABLE again",
    )
    # And on the same port, so the url the serve was given predicts again
    assert server.model_server_port() == first_port
    code, envelope = server.request("GET", "/api/v1/serve/simple/1")
    assert code == 200 and envelope["result"]["url"] == url, envelope
    poll(lambda: predict(url, timeout=5) == (200, PREDICTED), 30, "the url to predict again")
    # And meanwhile every read answered 200 within its deadline
    for poller in (get_one, get_list):
        assert poller.answers and all(
            code == 200 and seconds < READ_DEADLINE for code, seconds, _ in poller.answers
        ), [(code, round(seconds, 2), body) for code, seconds, body in poller.answers]
    # And every predict through the proxy either predicted or failed fast with 503
    gap = proxied.answers[gap_from:]
    assert gap, "no predict was sent while the model server was down"
    wrong = [
        (code, round(seconds, 2), body)
        for code, seconds, body in gap
        if (code, body) != (200, PREDICTED) and not (code == 503 and seconds < PREDICT_FAILS_WITHIN)
    ]
    assert not wrong, wrong
    tally.fault()  # counted once survived


# -- SIGSTOP of the model server ------------------------------------------------------------------


def test_a_hung_model_server_is_reported_within_a_deadline_and_recovers(
    make_jupyter: Callable[..., Jupyter], half_plus_two: Path
) -> None:
    # Given 10 serves AVAILABLE (a list that asked the model server once per serve, 5 s each,
    # would take 50 s)
    server = make_jupyter({"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
    server.start()
    for version in range(1, 11):
        register(server, "hung", half_plus_two)
        code, envelope = server.request("POST", "/api/v1/serve", serve_body("hung", version))
        assert code == 200, envelope
    poll(
        lambda: (
            (rows := server.rows())
            and len(rows) == 10
            and all(s["state"] == "AVAILABLE" for s in rows.values())
        ),
        120,
        "10 serves AVAILABLE",
    )
    pid = server.model_server_pid()
    assert pid is not None

    # When the model server stops answering (SIGSTOP: alive, port open, silent)
    os.kill(pid, signal.SIGSTOP)
    try:
        # Then GET of one serve and of the list answer within a deadline, saying why
        # (a client gives up at twice the deadline, so a list that hangs fails fast too)
        give_up = 2 * READ_DEADLINE
        one, one_seconds = timed(
            lambda: server.request("GET", "/api/v1/serve/hung/1", timeout=give_up)
        )
        listed, list_seconds = timed(
            lambda: server.request("GET", "/api/v1/serve", timeout=give_up)
        )
    finally:
        send(pid, signal.SIGCONT)
    assert one[0] == 200 and one_seconds < READ_DEADLINE, (one_seconds, one)
    assert "does not answer" in (one[1]["result"]["reason"] or ""), one
    assert listed[0] == 200 and list_seconds < READ_DEADLINE, (list_seconds, listed)
    reasons = [s["reason"] or "" for s in listed[1]["result"]]
    assert len(reasons) == 10 and all("does not answer" in r for r in reasons), listed

    # And once it is continued, every serve reads AVAILABLE again and predicts
    poll(
        lambda: (
            (rows := server.rows())
            and all(s["state"] == "AVAILABLE" and not s["reason"] for s in rows.values())
        ),
        60,
        "the serves to recover",
    )
    assert predict(server.rows()[("hung", 10)]["url"]) == (200, PREDICTED)
    assert server.model_server_pid() == pid  # it recovered; nothing had to restart it
    tally.fault()  # counted once survived


def timed(call: Callable[[], Answer]) -> tuple[Answer, float]:
    start = time.monotonic()
    answer = call()
    return answer, time.monotonic() - start
