"""Copying one file a user names (a `.keras` or `.h5` model) under safe_copy's rules.

The file is treated as hostile, as a model folder is: it must be a regular file (a FIFO would
block, a device would never end), it is opened with O_NOFOLLOW | O_NONBLOCK and checked again
with fstat after the open (a swap between the check and the open is refused), its bytes are
counted while copying against the registration's limit and deadline. A name relative to the
Jupyter server's root_dir may be a link, but never to a file outside root_dir: a relative name
means "in root_dir". An absolute name is the user's choice, resolved once, as for a folder.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from ..errors import InvalidInput, PayloadTooLarge
from .safe_copy import (
    CHUNK_BYTES,
    MAX_BYTES_SETTING,
    CopyLimits,
    CopyTimeout,
    DestinationError,
    human_bytes,
)

_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def resolve_file(source: str, base_dir: Path | None) -> Path:
    """The regular file `source` names, links resolved once; InvalidInput otherwise."""
    try:
        named = Path(source).expanduser()
    except RuntimeError:
        raise InvalidInput(f"source: {source!r} names the home of an unknown user") from None
    relative = base_dir is not None and not named.is_absolute()
    if relative:
        assert base_dir is not None
        named = Path(base_dir) / named
    try:
        resolved = Path(os.path.realpath(named, strict=True))
        mode = os.stat(resolved).st_mode
    except (OSError, ValueError):
        raise InvalidInput(f"source: {source!r} does not exist") from None
    if relative:
        assert base_dir is not None
        root = Path(os.path.realpath(base_dir))
        if not resolved.is_relative_to(root):
            raise InvalidInput(
                f"source: {source!r} is a link to a file outside {str(root)!r}, where relative "
                "paths are read from; copy the file in, or give its absolute path"
            )
    if stat.S_ISDIR(mode):
        raise InvalidInput(
            f"source: {source!r} is a folder; a Keras model folder is registered by exporting "
            "it (model.export(folder)) and naming that SavedModel folder"
        )
    if not stat.S_ISREG(mode):
        raise InvalidInput(f"source: {source!r} is not a regular file")
    return resolved


def copy_file(source: Path, destination: Path, limits: CopyLimits, shown: str) -> None:
    """Copy the resolved regular file `source` to the new file `destination`.

    InvalidInput / PayloadTooLarge name `shown`; DestinationError and CopyTimeout are ours.
    """
    try:
        fd = os.open(source, _FILE_FLAGS)
    except OSError as exc:
        raise InvalidInput(f"source: cannot read {shown!r}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped for something else since resolve_file
            raise InvalidInput(f"source: {shown!r} is not a regular file")
        _count(limits, info.st_size, shown, before=True)
        try:
            out = os.open(destination, _NEW_FILE_FLAGS, 0o600)
        except OSError as exc:
            raise DestinationError(destination, exc) from None
        try:
            _pump(fd, out, limits, shown, destination)
        finally:
            os.close(out)
    finally:
        os.close(fd)


def _pump(fd: int, out: int, limits: CopyLimits, shown: str, destination: Path) -> None:
    while True:
        if limits.deadline is not None and time.monotonic() > limits.deadline:
            raise CopyTimeout(f"copying {shown!r} ran past its deadline")
        try:
            chunk = os.read(fd, CHUNK_BYTES)
        except OSError as exc:
            raise InvalidInput(f"source: cannot read {shown!r}: {exc.strerror}") from None
        if not chunk:
            return
        _count(limits, len(chunk), shown, before=False)
        view = memoryview(chunk)
        while view:
            try:
                view = view[os.write(out, view) :]
            except OSError as exc:
                raise DestinationError(destination, exc) from None


def _count(limits: CopyLimits, size: int, shown: str, before: bool) -> None:
    total = limits.copied_bytes + size
    if total > limits.max_bytes:
        raise PayloadTooLarge(
            f"source: {shown!r} is larger than the {human_bytes(limits.max_bytes)} that "
            f"registration copies; raise {MAX_BYTES_SETTING} to register it"
        )
    if not before:
        limits.copied_bytes = total
