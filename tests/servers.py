"""A real `jupyter modelserve` process in isolated Jupyter folders, for restart tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

TOKEN = "test-token"
# What the `jupyter-modelserve` script runs, with this very Python (`-m ...app` would load the
# module twice, as __main__ and as jupyter_modelserve.app).
_LAUNCH = "import sys; from jupyter_modelserve.command import main; main(sys.argv[1:])"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class JupyterProcess:
    def __init__(self, root: Path, config: dict[str, Any] | None = None) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "JUPYTER_DATA_DIR": str(root / "data"),
            "JUPYTER_CONFIG_DIR": str(root / "config"),
            "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "0",
        }
        (root / "config").mkdir(parents=True, exist_ok=True)
        (root / "config" / "jupyter_server_config.json").write_text(json.dumps(config or {}))
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra_args: str, timeout: float = 120) -> None:
        self.port = free_port()
        log = self.root / f"jupyter-{self.port}.log"
        command = [
            sys.executable, "-c", _LAUNCH, f"--port={self.port}",
            f"--IdentityProvider.token={TOKEN}", "--ServerApp.port_retries=0", *extra_args,
        ]  # fmt: skip
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=output, stderr=subprocess.STDOUT, cwd=self.root
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter modelserve exited: see {log}")
            try:
                if self.call("GET", "/api/v1/serve/ping")[0] == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"jupyter modelserve did not answer within {timeout} s")

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> tuple[int, Any]:
        response = requests.request(
            method,
            self.url + path,
            data=body if isinstance(body, str) or body is None else json.dumps(body),
            params=params,
            headers={"Authorization": f"token {TOKEN}"},
            timeout=120,
        )
        return response.status_code, response.json()

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `jupyter modelserve ARGS` against the same Jupyter folders."""
        return subprocess.run(
            [sys.executable, "-c", _LAUNCH, *args],
            env=self.env, check=False, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def stop_model_server(self) -> None:
        self.command("stop-server")


# What another program holding a port runs: listen on 127.0.0.1:PORT (0: any free one), say which
# port on stdout, and hold it until stdin closes or the process is killed.
_HOLD_PORT = (
    "import socket, sys\n"
    "sock = socket.socket()\n"
    "sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "sock.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "sock.listen()\n"
    "print(sock.getsockname()[1], flush=True)\n"
    "sys.stdin.read()\n"
)


class PortHolder:
    """Another program listening on a port of 127.0.0.1 (a second user's server, say)."""

    def __init__(self, port: int = 0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLD_PORT, str(port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until it listens, or exits
        if not line.strip():
            self.release()
            raise OSError(f"could not hold port {port} on 127.0.0.1")
        self.port = int(line)

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def model_server_pid(state_dir: str | Path) -> int | None:
    """The pid of the local model server of a state folder (its server.json), if it runs."""
    try:
        pid = int(json.loads((Path(state_dir) / "server.json").read_text())["pid"])
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, KeyError, ProcessLookupError):
        return None
    stat = Path(f"/proc/{pid}/stat")
    if stat.is_file() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
        return None  # exited, not reaped yet
    return pid


def model_server_processes(data_dir: str | Path) -> list[int]:
    """Live processes started with the model config of a Jupyter data dir's local backend."""
    config = str(Path(data_dir) / "modelserve" / "server" / "models.config").encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and config in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, IndexError):
            continue
    return found


def kill_model_server(data_dir: str | Path, timeout: float = 10) -> None:
    """Teardown: end the local model server of a Jupyter data dir, stopped (SIGSTOP) or not.

    Signals the process directly rather than running `jupyter modelserve stop-server`, so a
    process stopped with SIGSTOP, which cannot act on the CLI's SIGTERM, ends too.
    """
    pids = model_server_processes(data_dir)
    for pid in pids:
        _signal(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if pid in model_server_processes(data_dir)]
        time.sleep(0.05)
    for pid in pids:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, signum)
