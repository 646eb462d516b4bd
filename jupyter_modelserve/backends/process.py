"""The local model server as an operating-system process: liveness, ports, stopping."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

HOST = "127.0.0.1"


def is_our_server(pid: int, config_file: Path) -> bool:
    """Alive, not a zombie, and started with our config file (guards against pid reuse)."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
            return str(config_file) in proc.joinpath("cmdline").read_bytes().decode(errors="ignore")
        except (OSError, IndexError):
            return False
    try:  # no /proc (macOS): fall back to "a process with that pid exists"
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def wait_until_started(pid: int, config_file: Path, timeout: float) -> bool:
    """Until a process just started is what `is_our_server` recognises (its command line,
    read from /proc, is empty or its parent's until exec) and SIGHUP no longer kills it
    (ignored, as nohup leaves it, or caught, as the server does). Polled for at most `timeout`;
    returns at once where there is no /proc, or when the process is gone (its log says why).
    False only when the timeout passed."""
    status = Path(f"/proc/{pid}/status")
    hangup = 1 << (signal.SIGHUP - 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            return True
        handled = int(fields.get("SigIgn", "0"), 16) | int(fields.get("SigCgt", "0"), 16)
        if handled & hangup and is_our_server(pid, config_file):
            return True
        if fields.get("State", "").strip().startswith("Z"):
            return True
        time.sleep(0.002)  # polling a start that takes milliseconds, bounded by the deadline
    return False


def terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def wait_until_free(port: int, timeout: float) -> bool:
    """Poll until nothing listens on `port` (a killed server's socket closing); True if free."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while port_in_use(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
    return True
