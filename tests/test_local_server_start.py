"""The local model server's start (issue 12): back-to-back and concurrent applies start one
server, a reload SIGHUP sent the moment apply returns never kills it, and TF Serving's batching
flags reach its command line (with news of a running server started with other flags).

Real parts throughout: LocalBackend on free ports in a tmp data folder, the built-in model
server as the detached process it starts, and the real half_plus_two SavedModel. Every server
started here is stopped (and any process naming the tmp config file is ended by its pid).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_modelserve.backends.base import Observed, ServeSpec
from jupyter_modelserve.backends.local import LocalBackend
from jupyter_modelserve.backends.process import pid_alive, terminate, wait_until_started
from jupyter_modelserve.errors import BackendUnavailable

START_LINE = "--- starting model server"
LOAD_TIMEOUT = 120.0  # TensorFlow's import on 2 shared CPUs, then the model's load
PREDICT = {"instances": [1.0, 2.0, 5.0]}
PREDICTED = {"predictions": [2.5, 3.0, 4.5]}

Make = Callable[..., LocalBackend]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)  # polling a condition, bounded by the deadline


def processes_naming(path: Path) -> list[int]:
    """Pids of the live processes whose command line names `path` (only ours: it is tmp)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if str(path).encode() in (entry / "cmdline").read_bytes() and pid_alive(
                int(entry.name)
            ):
                found.append(int(entry.name))
    return found


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    """LocalBackend(tmp data folder, free ports, **settings); every server stopped afterwards,
    and any process left naming the config file (a second, unrecorded server) ended."""
    made: list[LocalBackend] = []

    def build(**settings: Any) -> LocalBackend:
        backend = LocalBackend(data_dir=tmp_path, rest_api_port=0, grpc_port=0, **settings)
        made.append(backend)
        return backend

    yield build
    for backend in made:
        backend.stop_server()
        backend.close()
    for pid in processes_naming(tmp_path / "server" / "models.config"):
        terminate(pid, 10)


def spec(model: Path, name: str) -> ServeSpec:
    return ServeSpec(name, 1, str(model))


def starts(backend: LocalBackend) -> int:
    return backend.log_file.read_text(errors="replace").count(START_LINE)


def all_available(backend: LocalBackend, specs: list[ServeSpec]) -> None:
    """Poll statuses() until every serve reads AVAILABLE (the deadline fails the test)."""
    seen: dict[Any, Any] = {}

    def available() -> bool:
        seen.update(backend.statuses(specs, 10))
        states = {seen[s.key].state for s in specs}
        # Nothing here restarts a server: ABSENT (it died) or FAILED is final.
        if states & {Observed.ABSENT, Observed.FAILED}:
            raise AssertionError("a serve is ABSENT or FAILED")
        return states == {Observed.AVAILABLE}

    try:
        wait_for(available, LOAD_TIMEOUT, "every serve to be AVAILABLE")
    except AssertionError:
        log = backend.log_file.read_text(errors="replace")[-3000:]
        raise AssertionError(f"states {seen}; server log ends:\n{log}") from None


def at_once(calls: list[Callable[[], None]]) -> None:
    """Run every call from its own thread, released together; re-raise the first error."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as error:  # reported to the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,), daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LOAD_TIMEOUT)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)


# -- a. one server, however the applies arrive -------------------------------------------------


def test_back_to_back_applies_start_exactly_one_server(make: Make, half_plus_two: Path) -> None:
    # Given a local backend with no model server running
    backend = make()
    specs = [spec(half_plus_two, f"m{i}") for i in range(4)]

    # When four serves are applied in a row, as fast as they can be
    for one in specs:
        backend.apply(one)

    # Then one server was started, it is the recorded one, and every serve loads on it
    assert starts(backend) == 1
    info = backend._running_info()
    assert info is not None
    all_available(backend, specs)
    assert starts(backend) == 1
    assert processes_naming(backend.config_file) == [info["pid"]]


def test_applies_from_four_threads_at_once_start_exactly_one_server(
    make: Make, half_plus_two: Path
) -> None:
    # Given a local backend with no model server running
    backend = make()
    specs = [spec(half_plus_two, f"t{i}") for i in range(4)]

    # When four threads apply a serve each at the same moment
    at_once([lambda one=one: backend.apply(one) for one in specs])

    # Then one server was started and every serve loads on it
    assert starts(backend) == 1
    info = backend._running_info()
    assert info is not None
    all_available(backend, specs)
    assert processes_naming(backend.config_file) == [info["pid"]]


def test_two_backends_on_one_data_folder_start_exactly_one_server(
    make: Make, half_plus_two: Path
) -> None:
    # Given two local backends on the same data folder, as two processes (a Jupyter server and
    # a kernel) have: they share only the file lock and the files beside it
    first, second = make(), make()
    specs = [spec(half_plus_two, f"p{i}") for i in range(4)]

    # When both apply two serves each, all at the same moment
    backends = [first, second] * 2
    at_once([lambda b=b, one=one: b.apply(one) for b, one in zip(backends, specs, strict=True)])

    # Then one server was started, both see it, and every serve loads on it
    assert starts(first) == 1
    info = first._running_info()
    assert info is not None and second._running_info() == info
    all_available(second, specs)
    assert processes_naming(first.config_file) == [info["pid"]]


# -- b. a reload signal during start-up ---------------------------------------------------------


def test_a_sighup_right_after_the_start_does_not_kill_the_server(
    make: Make, half_plus_two: Path
) -> None:
    # Given a serve just applied, which started the model server
    backend = make()
    one = spec(half_plus_two, "hup")
    backend.apply(one)

    # When SIGHUP (the reload signal) reaches the recorded pid at once
    pid = int(json.loads(backend.info_file.read_text())["pid"])
    os.kill(pid, signal.SIGHUP)

    # Then the server lives on and the serve loads
    all_available(backend, [one])
    assert pid_alive(pid) and backend._running_info() is not None
    assert int(backend._running_info()["pid"]) == pid  # type: ignore[index]
    assert starts(backend) == 1


def test_every_fresh_start_is_safe_to_signal(make: Make, half_plus_two: Path) -> None:
    # Given a model server started and stopped several times (each start a fresh exec chain)
    backend = make()
    one = spec(half_plus_two, "again")
    for attempt in range(8):
        backend.apply(one)
        pid = int(json.loads(backend.info_file.read_text())["pid"])
        # When SIGHUP reaches it the moment apply returns
        os.kill(pid, signal.SIGHUP)
        # Then it is still our server once it has had time to act on the signal: it goes on to
        # listen (its REST port line), which a process killed by SIGHUP never does
        wait_for(
            lambda pid=pid: (
                "Exporting HTTP/REST API" in backend.log_file.read_text() or not pid_alive(pid)
            ),
            60,
            "the server to listen or die",
        )
        assert pid_alive(pid), f"start {attempt + 1} was killed by SIGHUP"
        assert backend.stop_server()
        backend.log_file.write_text("")  # each start's port line is its own
    assert processes_naming(backend.config_file) == []


# -- c. wait_until_started's bounds --------------------------------------------------------------


def test_wait_until_started_returns_at_once_for_a_process_that_exits(tmp_path: Path) -> None:
    # Given a process that exits at once (left unreaped: a zombie, as a crashed server is)
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # When the start is awaited with a long timeout
        began = time.monotonic()
        wait_until_started(process.pid, tmp_path / "models.config", 20.0)
        # Then it returns long before the timeout
        assert time.monotonic() - began < 10.0
    finally:
        process.kill()
        process.wait()


def test_wait_until_started_gives_up_after_its_timeout(tmp_path: Path) -> None:
    # Given a process that never handles SIGHUP nor names our config file
    process = subprocess.Popen(["sleep", "30"])
    try:
        # When the start is awaited for 0.3 s
        began = time.monotonic()
        wait_until_started(process.pid, tmp_path / "models.config", 0.3)
        took = time.monotonic() - began
        # Then it returns, without raising, once the timeout has passed (and not much later)
        assert 0.3 <= took < 5.0
        assert process.poll() is None  # and leaves the process alone
    finally:
        process.kill()
        process.wait()


# -- d. batching flags ---------------------------------------------------------------------------


def predict(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = requests.post(url, json=body, timeout=60)
    return response.status_code, response.json()


def test_batching_flags_reach_the_server_and_batch_concurrent_predicts(
    make: Make, half_plus_two: Path, tmp_path: Path
) -> None:
    # Given enable_batching with a TF Serving batching parameters file (max_batch_size 8)
    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 8 }\nbatch_timeout_micros { value: 2000 }\n")
    backend = make(enable_batching=True, batching_parameters_file=str(parameters))
    one = spec(half_plus_two, "batched")

    # When a serve starts the model server
    backend.apply(one)
    all_available(backend, [one])

    # Then its recorded command ends with TF Serving's batching flags
    command = json.loads(backend.info_file.read_text())["command"]
    assert command[-2:] == ["--enable_batching", f"--batching_parameters_file={parameters}"]
    # And 8 concurrent predicts all answer right
    url = backend.url_for(one)
    answers: dict[int, tuple[int, Any]] = {}

    def ask(i: int) -> None:
        answers[i] = predict(url, {"instances": [float(i), float(i + 1)]})

    at_once([lambda i=i: ask(i) for i in range(8)])
    assert answers == {i: (200, {"predictions": [i / 2 + 2, (i + 1) / 2 + 2]}) for i in range(8)}
    # And batching is on with those parameters: as in TF Serving, a request of more rows than
    # max_batch_size is refused (unbatched, 9 rows answer)
    status, body = predict(url, {"instances": [1.0] * 9})
    assert status == 400
    assert "larger than maximum input batch size 8" in body["error"]


def test_a_missing_batching_parameters_file_is_named_and_nothing_starts(
    make: Make, half_plus_two: Path, tmp_path: Path
) -> None:
    # Given enable_batching with a parameters file that does not exist
    backend = make(enable_batching=True, batching_parameters_file=str(tmp_path / "no-such"))

    # When a serve is applied
    with pytest.raises(BackendUnavailable) as raised:
        backend.apply(spec(half_plus_two, "nofile"))

    # Then the error names the setting, and no server was started (nor recorded)
    assert "batching_parameters_file" in str(raised.value)
    assert raised.value.status == 503
    assert not backend.log_file.exists() or starts(backend) == 0
    assert not backend.info_file.exists()
    assert backend._running_info() is None
    assert processes_naming(backend.config_file) == []


# -- e. a running server started with other flags ------------------------------------------------


def test_a_server_started_with_other_batching_flags_is_news(
    make: Make, half_plus_two: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a model server started without batching, though a parameters file is configured
    parameters = tmp_path / "batching.txt"
    parameters.write_text("max_batch_size { value: 8 }\n")
    logger = logging.getLogger("test_local_server_start")
    plain = make(batching_parameters_file=str(parameters), log=logger)
    one = spec(half_plus_two, "plain")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        plain.apply(one)
    wait_for(lambda: plain._running_info() is not None, 30, "the server to run")
    # (the file adds nothing without enable_batching)
    command = json.loads(plain.info_file.read_text())["command"]
    assert not [arg for arg in command if "batching" in arg], command
    assert "stop-server" not in caplog.text

    # When a backend on the same folder, with the same flags, checks the running server (as
    # the Jupyter server does at start)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=logger.name):
        make(log=logger).check_running_server()
    # Then it says nothing
    assert "stop-server" not in caplog.text

    # When one with enable_batching on checks it
    with caplog.at_level(logging.WARNING, logger=logger.name):
        batching = make(enable_batching=True, batching_parameters_file=str(parameters), log=logger)
        assert "stop-server" not in caplog.text  # (building one says nothing: the CLI builds one)
        batching.check_running_server()
    # Then it warns that the flags wait for the next start, naming how to get there
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "stop-server" in warnings[0].getMessage()
    assert str(plain._running_info()["pid"]) in warnings[0].getMessage()  # type: ignore[index]
