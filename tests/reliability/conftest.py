"""Reliability suite fixtures, and the one summary line the suite ends with."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_modelserve.tfserving.model_config import parse_model_config_list

from ..servers import TOKEN, JupyterProcess
from . import tally
from .databases import postgres_db_url, registry_db_url

__all__ = ["postgres_db_url", "registry_db_url"]  # fixtures for every test in this folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the tally once, after the test outcomes (also with -q)."""
    # A conftest below the root is a plugin like any other once collection loads it, and
    # pytest_terminal_summary is not path-filtered, so this runs whenever any test under
    # tests/reliability/ was collected.
    terminalreporter.write_sep("-", "reliability summary")
    terminalreporter.write_line(tally.summary())


# -- a Jupyter server process that counts what it is sent ----------------------------------------

Answer = tuple[int, Any]
# What a request that got no HTTP answer at all (refused, reset, timed out) reports as its code.
NO_ANSWER = 0


class Jupyter(JupyterProcess):
    """A real `jupyter modelserve` process; every request is tallied, and the local backend's
    files (config, server.json, artifacts) are at hand for checking what really runs."""

    @property
    def modelserve_dir(self) -> Path:
        return self.root / "data" / "modelserve"

    @property
    def server_dir(self) -> Path:
        return self.modelserve_dir / "server"

    @property
    def artifact_root(self) -> Path:
        return self.modelserve_dir / "artifacts"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float = 120,
        allowed_5xx: tuple[int, ...] = (),
        **params: Any,
    ) -> Answer:
        """(status, JSON body or text); (NO_ANSWER, error text) when nothing answered.

        A 5xx counts as one seen unless the caller injected the fault that makes it due
        (`allowed_5xx`, e.g. a 503 while the model server is down).
        """
        tally.requests()
        try:
            response = requests.request(
                method,
                self.url + path,
                data=body if isinstance(body, str | bytes) or body is None else json.dumps(body),
                params=params,
                headers={"Authorization": f"token {TOKEN}"},
                timeout=timeout,
            )
        except requests.RequestException as error:
            return NO_ANSWER, str(error)
        if response.status_code >= 500 and response.status_code not in allowed_5xx:
            tally.server_error()
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        """JupyterProcess.call (the rest of the test suite's way in), tallied."""
        tally.requests()
        code, envelope = super().call(method, path, body, **params)
        if code >= 500 and code != 503:  # a 503 says what is down; a 500 is a fault of ours
            tally.server_error()
        return code, envelope

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no cleanup, exactly like a crash or the OOM killer."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    # -- what the local backend wrote -----------------------------------------------------------

    def model_server_info(self) -> dict[str, Any] | None:
        try:
            info: dict[str, Any] = json.loads((self.server_dir / "server.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return info

    def model_server_pid(self) -> int | None:
        info = self.model_server_info()
        return int(info["pid"]) if info else None

    def model_server_port(self) -> int | None:
        info = self.model_server_info()
        return int(info["port"]) if info else None

    def configured(self) -> dict[str, set[int]]:
        """The model server's config file: model name -> versions it is told to serve."""
        try:
            text = (self.server_dir / "models.config").read_text()
        except FileNotFoundError:
            return {}
        return {c.name: set(c.version_policy.versions) for c in parse_model_config_list(text)}

    def loaded(self, name: str, timeout: float = 10) -> dict[int, str]:
        """The model server's own word: version -> state (AVAILABLE, LOADING, END...)."""
        port = self.model_server_port()
        if port is None:
            return {}
        tally.requests()
        try:
            response = requests.get(f"http://127.0.0.1:{port}/v1/models/{name}", timeout=timeout)
        except requests.RequestException:
            return {}
        if response.status_code == 404:
            return {}
        body = response.json()
        return {int(s["version"]): s["state"] for s in body.get("model_version_status", [])}

    def rows(self) -> dict[tuple[str, int], dict[str, Any]]:
        """The serves the REST list reports, by (name, version)."""
        code, envelope = self.request("GET", "/api/v1/serve")
        assert code == 200, envelope
        return {(s["modelName"], s["modelVersion"]): s for s in envelope["result"]}

    def staging_leftovers(self) -> list[Path]:
        staging = self.artifact_root / ".staging"
        return sorted(staging.iterdir()) if staging.is_dir() else []

    def model_server_processes(self) -> list[int]:
        """Every live process started with this data dir's model config (there must be one)."""
        config = str(self.server_dir / "models.config").encode()
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if config in (proc / "cmdline").read_bytes():
                    state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(proc.name))
            except OSError:
                continue
        return found


@pytest.fixture
def make_jupyter(tmp_path: Path) -> Iterator[Callable[..., Jupyter]]:
    """Build Jupyter servers in folders of their own; each is stopped with its model server."""
    made: list[Jupyter] = []

    def make(config: dict[str, Any] | None = None, name: str = "jupyter") -> Jupyter:
        server = Jupyter(tmp_path / name, config)
        made.append(server)
        return server

    yield make
    for server in made:
        stop_everything(server)


@pytest.fixture
def simple_server(make_jupyter: Callable[..., Jupyter], half_plus_two: Path) -> Jupyter:
    """A real `jupyter modelserve` (a free model server port) with `simple` 1 registered."""
    jupyter = make_jupyter({"LocalBackend": {"rest_api_port": 0, "grpc_port": 0}})
    jupyter.start()
    register(jupyter, "simple", half_plus_two)
    return jupyter


def stop_everything(server: Jupyter) -> None:
    """Stop a Jupyter server and its model server, whatever state a test left them in."""
    for pid in server.model_server_processes():  # a SIGSTOPped one cannot obey a SIGTERM
        send(pid, signal.SIGCONT)
    server.stop(timeout=10)
    server.stop_model_server()
    for leftover in server.model_server_processes():
        send(leftover, signal.SIGKILL)


def send(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def register(server: Jupyter, name: str, source: Path) -> dict[str, Any]:
    body = {"name": name, "source": str(source)}
    code, envelope = server.request("POST", "/api/v1/model-version", body)
    assert code == 200, envelope
    result: dict[str, Any] = envelope["result"]
    return result


def poll(check: Callable[[], Any], timeout: float = 60, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


# -- the ping probe -------------------------------------------------------------------------------

# Runs in a process of its own, so the test's own threads (and their GIL) never inflate what it
# measures: only the Jupyter server's answer time counts. Closed loop, as a notebook user's
# requests are: the next ping goes out 1 ms after the previous answer, so a stall of the event
# loop shows as one slow ping per stall, and hundreds of pings a second make the p99 meaningful.
_PINGER = r"""
import json, sys, time, requests
url, token, out = sys.argv[1:4]
session = requests.Session()
session.headers["Authorization"] = "token " + token
latencies = []
errors = 0
sys.stdout.write("ready\n"); sys.stdout.flush()
import select
while not select.select([sys.stdin], [], [], 0.001)[0]:
    start = time.perf_counter()
    try:
        ok = session.get(url, timeout=10).status_code == 200
    except requests.RequestException:
        ok = False
    latencies.append(time.perf_counter() - start)
    errors += not ok
json.dump({"latencies": latencies, "errors": errors}, open(out, "w"))
"""


class Pinger:
    """Pings the Jupyter server continuously until stopped; reports latency percentiles."""

    def __init__(self, server: Jupyter, path: str = "/api/v1/serve/ping") -> None:
        self.out = Path(tempfile.mkstemp(prefix="pings-", suffix=".json")[1])
        self.process = subprocess.Popen(
            [sys.executable, "-c", _PINGER, server.url + path, TOKEN, str(self.out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"
        self.latencies: list[float] = []
        self.errors = 0

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("stop\n")
            self.process.stdin.close()
            self.process.wait(30)
        data = json.loads(self.out.read_text()) if self.out.stat().st_size else {}
        self.out.unlink(missing_ok=True)
        self.latencies = sorted(data.get("latencies", []))
        self.errors = int(data.get("errors", 0))
        tally.requests(len(self.latencies))

    def percentile(self, fraction: float) -> float:
        index = min(len(self.latencies) - 1, int(fraction * len(self.latencies)))
        return self.latencies[index]

    def describe(self) -> str:
        return (
            f"{len(self.latencies)} pings, p50 {self.percentile(0.5) * 1000:.1f} ms, "
            f"p99 {self.percentile(0.99) * 1000:.1f} ms, max {self.latencies[-1] * 1000:.1f} ms, "
            f"{self.errors} failed"
        )


@pytest.fixture
def pinger_for() -> Iterator[Callable[[Jupyter], Pinger]]:
    started: list[Pinger] = []

    def start(server: Jupyter) -> Pinger:
        pinger = Pinger(server)
        started.append(pinger)
        return pinger

    yield start
    for pinger in started:
        if pinger.process.poll() is None:
            pinger.process.kill()
            pinger.process.wait()


# A process of its own that reads the Jupyter server's config files, as a kernel or the CLI does.
_RECONCILE = """
from jupyter_modelserve.settings import load_settings
service = load_settings().build_service()
try:
    service.reconcile()
finally:
    service.close()
"""


def reconcile_once(server: Jupyter) -> None:
    """Run one reconcile over the server's registry and model server, and wait for its end."""
    done = subprocess.run(
        [sys.executable, "-c", _RECONCILE],
        env=server.env,
        cwd=server.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
