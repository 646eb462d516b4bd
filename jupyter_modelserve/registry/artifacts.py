"""Model artifacts on disk: staging a SavedModel, checking it, placing it in TF Serving's layout.

A registration copies the user's folder into `<artifact_root>/.staging/<host>-<pid>-<uuid>` first
(through `safe_copy`: no link is followed out of it, size and time are bounded), then checks the
*copy*: what is checked is then exactly what gets served, however the source changes meanwhile.
The staging folder's name says which process on which host owns it, so a restarted server can
remove what a killed one left without touching another live process's copy in flight.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, PayloadTooLarge
from . import safe_copy
from .quiet import quiet_tensorflow
from .savedmodel_pb import serving_signatures_of

SERVING_SIGNATURE = "serving_default"
# Staging folders older than this are removed whoever made them: no copy runs this long (the
# copy's own deadline is far shorter), so such a folder is a leftover of a process that died.
STALE_STAGING_SECONDS = 24 * 3600

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedModelInfo:
    path: Path
    signatures: tuple[str, ...]


def new_staging_folder(staging_root: Path) -> Path:
    """A fresh, not yet created folder name under `staging_root` (created if missing).

    OSError here means `staging_root` cannot be written: the caller's fault to report.
    """
    staging_root.mkdir(parents=True, exist_ok=True)
    return staging_root / f"{_hostname()}-{os.getpid()}-{uuid.uuid4().hex}"


def stage_saved_model(
    source: str | Path, staging: Path, limits: safe_copy.CopyLimits
) -> SavedModelInfo:
    """Copy the SavedModel folder `source` to `staging` and check the copy.

    InvalidInput names what is wrong with the source, PayloadTooLarge the limit it passed;
    safe_copy.DestinationError and CopyTimeout are faults of ours. `staging` is gone on any error.
    """
    folder = safe_copy.resolve_folder(source)
    shown = str(Path(source).expanduser())
    if safe_copy.entry_kind(folder, "saved_model.pb") is None:
        raise InvalidInput(
            f"source: {shown!r} is not a SavedModel folder: it has no saved_model.pb"
        )
    try:
        safe_copy.copy_folder(folder, staging, limits)
        signatures = check_saved_model(staging, shown)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SavedModelInfo(path=staging, signatures=signatures)


def check_saved_model(folder: Path, shown_as: str) -> tuple[str, ...]:
    """Check that `folder` (a copy of ours) is servable; InvalidInput names `shown_as`."""
    pb = folder / "saved_model.pb"
    if not pb.is_file() or pb.is_symlink():
        raise InvalidInput(
            f"source: {shown_as!r} is not a SavedModel folder: it has no saved_model.pb"
        )
    try:
        signatures = serving_signatures_of(pb)
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"source: {shown_as!r} has no readable saved_model.pb: {exc}") from None
    if SERVING_SIGNATURE not in signatures:
        found = ", ".join(sorted(signatures)) or "none"
        raise InvalidInput(
            f"source: the SavedModel at {shown_as!r} has no {SERVING_SIGNATURE!r} signature "
            f"(signatures found: {found}); export it with "
            "signatures={'serving_default': ...}"
        )
    return tuple(sorted(signatures))


def export_keras_model(model: Any, staging: Path, max_bytes: int) -> SavedModelInfo:
    """Export an in-memory Keras model to `staging` as a SavedModel with `serving_default`.

    `staging` is gone on any error. TensorFlow's chatter about the staging folder stays out of
    the caller's output (see quiet.py).
    """
    try:
        try:
            with quiet_tensorflow():
                if hasattr(model, "export"):  # Keras 3 writes an inference-only SavedModel
                    model.export(str(staging), format="tf_saved_model", verbose=False)
                else:
                    import tensorflow as tf

                    tf.saved_model.save(model, str(staging))
        except Exception as exc:
            raise InvalidInput(f"source: could not export the Keras model: {exc}") from None
        size = folder_bytes(staging)
        if size > max_bytes:
            raise PayloadTooLarge(
                f"source: the exported Keras model is {size} bytes, more than the "
                f"{safe_copy.human_bytes(max_bytes)} that registration stores; raise "
                f"{safe_copy.MAX_BYTES_SETTING} to register it"
            )
        signatures = check_saved_model(staging, "the exported Keras model")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SavedModelInfo(path=staging, signatures=signatures)


def folder_bytes(folder: Path) -> int:
    """The bytes of the regular files under `folder` (one we wrote), links not followed."""
    total = 0
    for directory, _folders, files in os.walk(folder):
        for name in files:
            info = os.lstat(os.path.join(directory, name))
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def place_version(staging: Path, destination: Path) -> None:
    """Move a staged SavedModel to its version folder (`<base>/<version>`) in one rename."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():  # a leftover of a version whose row is gone
        shutil.rmtree(destination)
    staging.rename(destination)


def remove_version(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    base = folder.parent
    try:
        if base.is_dir() and not any(base.iterdir()):
            base.rmdir()
    except OSError:  # another registration just put a version there, or it is not ours
        pass


def clean_staging(staging_root: Path, now: float | None = None) -> list[Path]:
    """Remove the staging folders that no live process is copying into; returns them.

    Removed: folders of this host whose process is gone, and any folder (whichever host, or a
    name from before names carried an owner) untouched for a day. Kept: the folders of live
    processes of this host, and recent ones of other hosts sharing `artifact_root`.
    """
    now = time.time() if now is None else now
    try:
        entries = list(os.scandir(staging_root))
    except FileNotFoundError:
        return []
    except OSError as exc:
        log.warning("cannot list the staging folder %s: %s", staging_root, exc)
        return []
    removed: list[Path] = []
    host = _hostname()
    for entry in entries:
        path = Path(entry.path)
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        owner = _owner(entry.name)
        dead_here = owner is not None and owner[0] == host and not _pid_alive(owner[1])
        if not (dead_here or age > STALE_STAGING_SECONDS):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            log.warning("cannot remove the stale staging folder %s: %s", path, exc)
            continue
        removed.append(path)
    return removed


def _hostname() -> str:
    # A name component, whatever the host calls itself; "-" separates the parts of the name.
    return socket.gethostname().replace("/", "_") or "localhost"


def _owner(name: str) -> tuple[str, int] | None:
    """(host, pid) from a staging folder name `<host>-<pid>-<uuid hex>`, None if not one."""
    parts = name.rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit() or len(parts[2]) != 32:
        return None
    return parts[0], int(parts[1])


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OverflowError:
        return False
    return True
