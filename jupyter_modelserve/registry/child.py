"""Running one registration step in a child process, bounded in time and bytes.

Loading a Keras file needs TensorFlow and downloading an MLflow model needs MLflow; neither is
imported by the Jupyter server, and a step that hangs or fills the disk must be stoppable,
which a thread is not. So the step runs as `python -m <module> ...` and reports through a small
JSON file (its stdout and stderr carry TensorFlow's chatter, which nobody should parse):

    {"kind": "ok", ...} | {"kind": "invalid", "message": ...} | {"kind": "too_large", ...}
    | {"kind": "unavailable", "message": ...}

A child that exits without that file crashed: a fault on our side (ServerFault), never the
user's. While it runs, the folder it writes is measured, and so is its private scratch folder
(its working folder, its TMPDIR, its log): the child is killed once either holds more than the
registration's byte limit or the deadline passes.

The child runs isolated from the user's files: `python -I` (no PYTHONPATH, no user site, no
working folder on sys.path, so a `keras.py` next to the notebook cannot stand in for Keras) in
its scratch folder, with an environment stripped of secrets (child_env.py). Every message that
leaves it is redacted (redact.py): MLflow quotes URLs that carry credentials.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailable, InvalidInput, PayloadTooLarge, ServerFault
from . import safe_copy
from .artifacts import folder_bytes
from .child_env import Purpose, child_environment
from .redact import redact

# The last lines of a crashed child's stderr that an error message quotes.
_TAIL_BYTES = 2000
_POLL_SECONDS = 0.2
# A result file larger than this is not one the child wrote.
_MAX_RESULT_BYTES = 64 * 1024


class ChildTimeout(Exception):
    """The child ran past the registration's deadline and was killed."""


# A step's time limit when the registration sets none (the registry's copy deadline default).
DEFAULT_STEP_SECONDS = 1800.0


def run_step(
    module: str,
    args: list[str],
    *,
    work: Path,
    watch: Path,
    max_bytes: int,
    deadline: float | None,
    what: str,
    purpose: Purpose,
) -> dict[str, Any]:
    """Run `python -I -m module *args RESULT` and return its "ok" result.

    `work` is a folder of ours, in which the child gets a scratch folder of its own; `watch`
    the folder the child writes, kept under `max_bytes` (so is the scratch folder); `deadline`
    a time.monotonic() value (None: DEFAULT_STEP_SECONDS from now); `what` names the step in
    messages ("exporting the Keras file 'm.keras'"); `purpose` says which secrets the child
    may see (child_env.py). Errors the child reports become InvalidInput / PayloadTooLarge /
    BackendUnavailable; a crash is a ServerFault; running out of time raises ChildTimeout
    (the caller words it).
    """
    if deadline is None:
        deadline = time.monotonic() + DEFAULT_STEP_SECONDS
    what = redact(what)
    scratch = Path(tempfile.mkdtemp(prefix="step-", dir=work))
    temp = scratch / "tmp"
    temp.mkdir()
    result_file = scratch / "result.json"
    log_file = scratch / "child.log"
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            # -I: isolated from PYTHONPATH, user site and the working folder; -u: unbuffered
            # output, so a crash's last lines reach the log (-I ignores PYTHONUNBUFFERED).
            [sys.executable, "-I", "-u", "-m", module, *args, str(result_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_environment(purpose, temp),
            cwd=scratch,
            start_new_session=True,  # killing it kills what it started too
        )
    try:
        _wait(process, watch, scratch, max_bytes, deadline, what)
    finally:
        if process.poll() is None:
            _kill(process)
    return _read_result(result_file, log_file, process.returncode, what)


def _wait(
    process: subprocess.Popen[bytes],
    watch: Path,
    scratch: Path,
    max_bytes: int,
    deadline: float,
    what: str,
) -> None:
    while True:
        try:
            process.wait(timeout=_POLL_SECONDS)
            exited = True
        except subprocess.TimeoutExpired:
            exited = False
        if not exited and time.monotonic() > deadline:
            raise ChildTimeout(what)
        # Measured while it runs (a disk is not filled first) and once more when it has ended.
        for folder, wrote in ((watch, "wrote"), (scratch, "wrote temporary files of")):
            if _bytes_in(folder) > max_bytes:
                raise PayloadTooLarge(
                    f"source: {what} {wrote} more than the "
                    f"{safe_copy.human_bytes(max_bytes)} that registration stores; raise "
                    f"{safe_copy.MAX_BYTES_SETTING} to register it"
                )
        if exited:
            return


def _bytes_in(folder: Path) -> int:
    """The bytes written so far; a file renamed away mid-walk is counted at the next poll."""
    try:
        return folder_bytes(folder) if folder.exists() else 0
    except OSError:
        return 0


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        process.kill()
    process.wait()


def _read_result(result_file: Path, log_file: Path, code: int, what: str) -> dict[str, Any]:
    try:
        if result_file.stat().st_size > _MAX_RESULT_BYTES:
            raise ValueError("too large")
        result = json.loads(result_file.read_text(encoding="utf-8"))
        kind, message = result["kind"], str(result.get("message", ""))
    except (OSError, ValueError, KeyError, TypeError):
        raise ServerFault(
            f"{what} failed: its process exited with status {code} without a result; "
            f"its last output: {_tail(log_file)}"
        ) from None
    if kind == "ok":
        return dict(result)
    message = redact(message)
    if kind == "invalid":
        raise InvalidInput(message)
    if kind == "too_large":
        raise PayloadTooLarge(message)
    if kind == "unavailable":
        raise BackendUnavailable(message)
    raise ServerFault(f"{what} failed: {message}")


def _tail(log_file: Path) -> str:
    try:
        with open(log_file, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - _TAIL_BYTES))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return "(none)"
    lines = [line for line in text.splitlines() if line.strip()]
    return redact(" | ".join(lines[-5:])) or "(none)"


def write_result(result_path: str, kind: str, **fields: Any) -> None:
    """In the child: report how the step ended (written last, so its presence means "ended")."""
    partial = f"{result_path}.partial"
    with open(partial, "w", encoding="utf-8") as out:
        json.dump({"kind": kind, **fields}, out)
    os.replace(partial, result_path)
