"""Helpers for the model server tests: real models on disk and an in-process HTTP server.

Imported explicitly by the test modules (conftest.py belongs to the rest of the project).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import tornado.netutil

from jupyter_modelserve.modelserver.errors import ServingError
from jupyter_modelserve.modelserver.guard import RequestPolicy
from jupyter_modelserve.modelserver.http import make_server
from jupyter_modelserve.modelserver.inline import InlineCalls
from jupyter_modelserve.modelserver.manager import LOADING, START, UNLOADING, ModelManager
from jupyter_modelserve.tfserving.model_config import ModelConfig, VersionPolicy

from . import tf_models

TIMEOUT = 30.0  # generous deadline for anything that should take well under a second

PORT_LINE = re.compile(r"Exporting HTTP/REST API at:127\.0\.0\.1:(\d+) \.\.\.")


class ServerProcess:
    """The model server as a child process, with its stderr collected line by line."""

    def __init__(self, *flags: str) -> None:
        # gRPC on a free port unless the test names one: tests never fight over 8500.
        grpc = [] if any(flag.startswith("--port") for flag in flags) else ["--port=0"]
        command = [sys.executable, "-m", "jupyter_modelserve.modelserver", *flags, *grpc]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.lines.append("<EOF>")
            self.changed.notify_all()

    def wait_for_line(self, pattern: re.Pattern[str]) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found[:] = [m for line in self.lines if (m := pattern.search(line))]
            return bool(found) or "<EOF>" in self.lines

        with self.changed:
            self.changed.wait_for(seen, TIMEOUT)
        assert found, f"no line matching {pattern.pattern!r} in:\n" + "\n".join(self.lines)
        return found[0]

    def base_url(self) -> str:
        """http://127.0.0.1:PORT once the server has printed its port line."""
        return f"http://127.0.0.1:{self.wait_for_line(PORT_LINE).group(1)}"

    def count(self, text: str) -> int:
        with self.changed:
            return sum(text in line for line in self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(TIMEOUT)
            raise
        finally:
            self.reader.join(TIMEOUT)


def build_all(root: Path) -> dict[str, Path]:
    """Build every test model as version 1 under `root/<name>`; returns the base paths."""
    builders = {
        "half_plus_two": tf_models.build_half_plus_two,
        "multi_io": tf_models.build_multi_io,
        "strings": tf_models.build_strings,
        "classify_v1": tf_models.build_classify_regress_v1,
    }
    bases = {}
    for name, build in builders.items():
        build(root / name / "1")
        bases[name] = root / name
    return bases


def config(
    name: str, base: Path, policy: VersionPolicy | None = None, **labels: int
) -> ModelConfig:
    return ModelConfig(
        name=name,
        base_path=str(base),
        version_policy=policy or VersionPolicy.latest(),
        version_labels=dict(labels),
    )


def wait_for(check: Callable[[], Any], timeout: float = TIMEOUT, what: str = "condition") -> Any:
    """Poll `check()` until it returns a truthy value, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)  # the poll interval, not a synchronisation delay


def is_settled(manager: ModelManager, *names: str) -> bool:
    """True when no version of the named models is starting, loading or unloading.

    Read through `status()`, the call the REST API answers from, so the tests wait on what a
    client can see rather than on the manager's internals.
    """
    for name in names:
        try:
            states = {s.state for s in manager.status(name)}
        except ServingError:  # no versions at all: nothing left to settle
            continue
        if states & {START, LOADING, UNLOADING}:
            return False
    return True


def wait_idle(manager: ModelManager, *names: str) -> None:
    """Wait until the named models' loads and unloads have finished."""
    assert names, "name the models to wait for"
    wait_for(lambda: is_settled(manager, *names), what=f"loads of {', '.join(names)}")


@contextmanager
def loaded(bases: dict[str, Path]) -> Iterator[ModelManager]:
    """A ModelManager serving each {name: base path}, every model loaded and idle."""
    manager = ModelManager()
    try:
        manager.apply_config([config(name, base) for name, base in bases.items()])
        wait_idle(manager, *bases)
        yield manager
    finally:
        manager.close()


@contextmanager
def serve(
    manager: ModelManager,
    policy: RequestPolicy | None = None,
    executor: Executor | None = None,
    inline: InlineCalls | None = None,
) -> Iterator[str]:
    """Serve `manager`'s REST API on a free port from a background thread; yields the base URL.

    `policy` sets the allowed hosts and body limit (default: the server's defaults); `executor`
    and `inline` are make_server's (default: its executor, nothing inline).
    """
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
        server = make_server(manager, executor, policy, inline=inline)
        server.add_sockets(sockets)
        state["port"] = sockets[0].getsockname()[1]
        state["loop"] = asyncio.get_running_loop()
        state["stop"] = stop = asyncio.Event()
        ready.set()
        await stop.wait()
        server.stop()
        await server.close_all_connections()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(TIMEOUT), "test server did not start"
    try:
        yield f"http://127.0.0.1:{state['port']}"
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(TIMEOUT)


def status_of(url: str, name: str) -> dict[int, dict[str, Any]]:
    """{version: status entry} of a model, or {} while the model is unknown (404)."""
    response = requests.get(f"{url}/v1/models/{name}", timeout=TIMEOUT)
    if response.status_code == 404:
        return {}
    response.raise_for_status()
    return {int(v["version"]): v for v in response.json()["model_version_status"]}


def state_of(url: str, name: str, version: int) -> str | None:
    entry = status_of(url, name).get(version)
    return entry["state"] if entry else None
