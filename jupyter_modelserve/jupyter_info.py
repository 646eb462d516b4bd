"""Which Jupyter server this process belongs to: its root_dir, and how to reach it.

A relative model path means "in the Jupyter server's root_dir", where the file browser's paths
live, in every front door that runs inside Jupyter: the REST API (the server itself), and the
Python API and %serve magic in a kernel. A kernel does not know its server's root_dir; its
working folder is the notebook's folder. But every Jupyter server writes a runtime file
`jpserver-<pid>.json` (url, base_url, root_dir, token, pid) into Jupyter's runtime folder, and
the server that launched a kernel is an ancestor process of it. So:

- in the Jupyter server itself, the extension records root_dir at start (`set_server_root`);
- in a kernel, the runtime file whose pid is the nearest ancestor of this process, and which
  that process wrote: a server killed without cleaning up leaves its file behind, and its pid
  may since belong to the user's shell, an ancestor too. A file older than the process that
  now has its pid is such a leftover (Linux: /proc/<pid>/stat's start time);
- else `c.ServerApp.root_dir` from the Jupyter config files; else the working folder.

The runtime file holds the server's token. It is returned by `server_info()` for building
authenticated URLs, but never logged, never put in a message, and hidden from the repr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jupyter_core.paths import jupyter_runtime_dir

# Bounds for reading files that any process of this user could write.
_MAX_RUNTIME_FILE_BYTES = 64 * 1024
_MAX_RUNTIME_FILES = 1000
_MAX_ANCESTORS = 64

# Where the extension's predict proxy lives under a server's base_url (the route in handlers/).
PROXY_PREFIX = "modelserve/v1/models"

_server_root: Path | None = None


class ServerInfo(dict[str, Any]):
    """A Jupyter server's runtime file (url, base_url, root_dir, pid, token...) as a dict whose
    repr never shows the token, so printing or logging it leaks nothing."""

    def __repr__(self) -> str:
        shown = {key: ("<hidden>" if key in ("token", "password") else value)
                 for key, value in self.items()}  # fmt: skip
        return f"ServerInfo({shown!r})"

    __str__ = __repr__


def set_server_root(path: str | Path | None) -> None:
    """Record the root_dir of the Jupyter server this process is (called by the extension when
    it starts; None when it stops)."""
    global _server_root
    _server_root = None if path is None else Path(path).expanduser().resolve()


def root_dir() -> Path:
    """The Jupyter server's root_dir for this process (see the module's docstring)."""
    if _server_root is not None:
        return _server_root
    info = server_info()
    if info is not None and isinstance(info.get("root_dir"), str):
        return Path(info["root_dir"])
    configured = _configured_root_dir()
    return configured if configured is not None else Path.cwd()


def server_info(runtime_dir: str | Path | None = None) -> ServerInfo | None:
    """The runtime file of the Jupyter server this process is or was launched by, else None.

    Holds `url`, `base_url`, `root_dir`, `pid` and the `token` (never log it).
    """
    ancestors = _ancestors()
    best: tuple[int, ServerInfo] | None = None
    for info, written in _running_servers(Path(runtime_dir or jupyter_runtime_dir())):
        pid = info.get("pid")
        if isinstance(pid, int) and pid in ancestors and not _older_than(written, pid):
            rank = ancestors.index(pid)  # the nearest ancestor wins (a server in a server)
            if best is None or rank < best[0]:
                best = (rank, info)
    return best[1] if best is not None else None


def proxy_url(name: str, version: int) -> str | None:
    """The predict URL of a serve through this process's Jupyter server (its authentication in
    front: send the token as `Authorization: token ...`), or None outside Jupyter."""
    info = server_info()
    url = info.get("url") if info is not None else None
    if not isinstance(url, str) or not url:
        return None
    # The runtime file's url already ends in the server's base_url.
    path = f"{PROXY_PREFIX}/{quote(name, safe='')}/versions/{int(version)}:predict"
    return url.rstrip("/") + "/" + path


def _running_servers(runtime_dir: Path) -> list[tuple[ServerInfo, float]]:
    """The readable `jpserver-*.json` files with their mtimes; unlike Jupyter's own listing
    this deletes none."""
    try:
        names = sorted(
            entry.name
            for entry in os.scandir(runtime_dir)
            if entry.name.startswith("jpserver-") and entry.name.endswith(".json")
        )[:_MAX_RUNTIME_FILES]
    except OSError:
        return []
    found = []
    for name in names:
        data, written = _read_json(runtime_dir / name)
        if isinstance(data, dict):
            found.append((ServerInfo(data), written))
    return found


def _read_json(path: Path) -> tuple[Any, float]:
    """The file's JSON (None if unreadable) and its mtime, from the same open file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None, 0.0
    with os.fdopen(fd, "rb") as file:
        written = os.fstat(file.fileno()).st_mtime
        raw = file.read(_MAX_RUNTIME_FILE_BYTES + 1)
    if len(raw) > _MAX_RUNTIME_FILE_BYTES:
        return None, written
    try:
        return json.loads(raw), written
    except ValueError:  # being written right now, or not a runtime file
        return None, written


# Boot time in /proc/stat has whole seconds, and a start time is in clock ticks: a file written
# in the process's first moments may look up to this much older than the process.
_START_SLACK_SECONDS = 2.0


def _older_than(written: float, pid: int) -> bool:
    """Whether a file written at `written` predates the process `pid` (so another process with
    that pid wrote it). Where the start time is unknown (no /proc), the file is believed."""
    started = _start_time(pid)
    return started is not None and written < started - _START_SLACK_SECONDS


def _start_time(pid: int) -> float | None:
    """When process `pid` started, in seconds since the epoch (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as system:
            boot = next(line for line in system if line.startswith(b"btime "))
        # After "pid (comm)", field 22 of the line, starttime, is the 20th.
        ticks = int(fields[19])
        return int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def _ancestors() -> list[int]:
    """This process and its ancestors, nearest first (Linux's /proc; elsewhere the parent)."""
    chain = [os.getpid()]
    while len(chain) < _MAX_ANCESTORS:
        parent = _parent_of(chain[-1])
        if parent is None or parent <= 1 or parent in chain:
            break
        chain.append(parent)
    if len(chain) == 1 and os.getppid() > 1:
        chain.append(os.getppid())
    return chain


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After "pid (comm)": state, then the parent's pid.
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def _configured_root_dir() -> Path | None:
    from .settings import load_config  # settings reads the same config files the server does

    try:
        configured = load_config().ServerApp.get("root_dir")
    except Exception:  # an unreadable config file: the server itself would report it
        return None
    if not isinstance(configured, str) or not configured:
        return None
    return Path(configured).expanduser().resolve()
