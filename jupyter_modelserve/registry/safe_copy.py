"""Copying a user's folder without ever following a link out of it, within a size and time bound.

A registration copies a folder that anyone who can reach the API may name, so the folder is
treated as hostile: a link to /dev/zero would fill the disk, a link to /etc/passwd or to a folder
elsewhere would copy files the model never owned, a link to a parent folder would loop, and a FIFO
would block a thread forever. The rules:

- The folder the user names may itself be a link (their choice): it is resolved once, and
  everything below must stay inside the resolved folder.
- The walk goes through directory file descriptors (`dir_fd`, O_NOFOLLOW, O_DIRECTORY), so an
  entry swapped for a link between the check and the open is refused, not followed.
- Only regular files and folders are copied. A link whose target resolves, inside the folder, to
  a regular file is copied as that file's content; every other link (leaving the folder, to a
  folder, dangling, looping) and every device, FIFO or socket is refused with InvalidInput naming
  the entry relative to the folder and what it is.
- Files are opened with O_NOFOLLOW | O_NONBLOCK (a FIFO swapped in never blocks the open) and
  fstat must then say "regular file". Bytes are counted while copying, not taken from stat alone
  (a file may grow), and the copy stops with PayloadTooLarge past `max_bytes`.
- Failures writing the copy are a `DestinationError`, which the caller turns into a server fault:
  they are never the user's fault.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import InvalidInput, PayloadTooLarge

MAX_BYTES_SETTING = "c.ModelServeApp.max_artifact_bytes"
# A SavedModel has a handful of files two levels deep; these bound hostile trees, not real ones.
MAX_ENTRIES = 100_000
MAX_DEPTH = 64
CHUNK_BYTES = 1024**2

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class DestinationError(Exception):
    """Writing the copy failed (disk full, unwritable folder): a fault on the server's side."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"{path}: {error.strerror or error}")
        self.path = path
        self.error = error


class CopyTimeout(Exception):
    """The copy ran past its deadline (a huge folder or a very slow filesystem)."""


@dataclass
class CopyLimits:
    max_bytes: int
    deadline: float | None = None  # time.monotonic() value
    copied_bytes: int = field(default=0)
    entries: int = field(default=0)


def resolve_folder(source: str | Path) -> Path:
    """The folder the user named, links resolved once; InvalidInput unless it is a folder."""
    try:
        named = Path(source).expanduser()
    except RuntimeError:  # "~nosuchuser/...": no home folder to expand to
        raise InvalidInput(f"source: {str(source)!r} names the home of an unknown user") from None
    try:
        folder = Path(os.path.realpath(named, strict=True))
        is_dir = stat.S_ISDIR(os.stat(folder).st_mode)
    except (OSError, ValueError):  # ValueError: an embedded NUL byte
        raise InvalidInput(f"source: {str(named)!r} is not a folder") from None
    if not is_dir:
        raise InvalidInput(f"source: {str(named)!r} is not a folder")
    return folder


def entry_kind(folder: Path, relative: str) -> str | None:
    """What `relative` inside `folder` is, without following it: 'file', 'folder', 'link',
    'other', or None when missing."""
    try:
        mode = os.lstat(folder / relative).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return "link" if stat.S_ISLNK(mode) else "other"


def copy_folder(folder: Path, destination: Path, limits: CopyLimits) -> None:
    """Copy the resolved `folder` to a new `destination` folder under the rules above.

    On any error the caller removes `destination` (it holds only files and folders we made).
    """
    try:
        root_fd = os.open(folder, _DIR_FLAGS)
    except OSError as exc:
        raise InvalidInput(f"source: cannot open {str(folder)!r}: {exc.strerror}") from None
    try:
        _make_dir(destination)
        _Walk(folder, root_fd, limits).copy_dir(root_fd, PurePosixPath(), destination, 0)
    finally:
        os.close(root_fd)


def _make_dir(path: Path) -> None:
    try:
        os.mkdir(path)
    except OSError as exc:
        raise DestinationError(path, exc) from None


def _describe(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "neither a regular file nor a folder"


class _Walk:
    def __init__(self, root: Path, root_fd: int, limits: CopyLimits) -> None:
        self.root = root
        self.root_fd = root_fd
        self.limits = limits

    def refuse(self, relative: PurePosixPath, what: str) -> InvalidInput:
        return InvalidInput(
            f"source: {relative} in the model folder {str(self.root)!r} is {what}; only regular "
            "files and folders are copied"
        )

    def copy_dir(self, dir_fd: int, relative: PurePosixPath, destination: Path, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise InvalidInput(
                f"source: {relative} in the model folder {str(self.root)!r} is more than "
                f"{MAX_DEPTH} folders deep; a SavedModel is two levels deep"
            )
        try:
            # scandir(fd) works on a duplicate of dir_fd, so dir_fd stays ours to close.
            with os.scandir(dir_fd) as listing:
                names = []
                for entry in listing:
                    self._count_entry(relative)
                    names.append(entry.name)
        except OSError as exc:
            raise InvalidInput(
                f"source: cannot list {relative} in {str(self.root)!r}: {exc.strerror}"
            ) from None
        for name in sorted(names):
            self.copy_entry(dir_fd, name, relative / name, destination / name, depth)

    def copy_entry(
        self, dir_fd: int, name: str, relative: PurePosixPath, destination: Path, depth: int
    ) -> None:
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except OSError as exc:
            raise InvalidInput(f"source: cannot read {relative}: {exc.strerror}") from None
        if stat.S_ISDIR(mode):
            sub_fd = self._open(name, dir_fd, relative, _DIR_FLAGS)
            try:
                _make_dir(destination)
                self.copy_dir(sub_fd, relative, destination, depth + 1)
            finally:
                os.close(sub_fd)
        elif stat.S_ISREG(mode):
            self.copy_file(self._open(name, dir_fd, relative, _FILE_FLAGS), relative, destination)
        elif stat.S_ISLNK(mode):
            self.copy_file(self._open_link_target(dir_fd, name, relative), relative, destination)
        else:
            raise self.refuse(relative, _describe(mode))

    def _open(self, name: str, dir_fd: int, relative: PurePosixPath, flags: int) -> int:
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # it became a link since the stat
                raise self.refuse(
                    relative, "a symbolic link (it changed while being copied)"
                ) from None
            raise InvalidInput(f"source: cannot read {relative}: {exc.strerror}") from None

    def _open_link_target(self, dir_fd: int, name: str, relative: PurePosixPath) -> int:
        """Open the regular file inside the folder that the link `relative` resolves to."""
        try:
            target = os.readlink(name, dir_fd=dir_fd)
        except OSError as exc:
            raise InvalidInput(f"source: cannot read the link {relative}: {exc.strerror}") from None
        try:
            resolved = Path(os.path.realpath(self.root / relative, strict=True))
        except FileNotFoundError:
            raise self.refuse(
                relative, f"a symbolic link to {target}, which does not exist"
            ) from None
        except OSError as exc:  # ELOOP: links that point at each other
            raise self.refuse(
                relative, f"a symbolic link to {target} that cannot be resolved ({exc.strerror})"
            ) from None
        if not resolved.is_relative_to(self.root):
            raise InvalidInput(
                f"source: {relative} is a symbolic link to {resolved}, outside the model folder "
                f"{str(self.root)!r}; copy the file in instead"
            )
        mode = os.lstat(resolved).st_mode
        if stat.S_ISDIR(mode):
            raise InvalidInput(
                f"source: {relative} is a symbolic link to a folder ({target}); links to folders "
                "are not followed (they can loop); copy the folder in instead"
            )
        if not stat.S_ISREG(mode):
            raise self.refuse(relative, f"a symbolic link to {_describe(mode)} ({target})")
        # Open it from the root's descriptor one component at a time, none of them followed:
        # a component swapped for a link after realpath is refused, not followed.
        parts = resolved.relative_to(self.root).parts
        fd = self.root_fd
        try:
            for part in parts[:-1]:
                next_fd = self._open(part, fd, relative, _DIR_FLAGS)
                if fd != self.root_fd:
                    os.close(fd)
                fd = next_fd
            return self._open(parts[-1], fd, relative, _FILE_FLAGS)
        finally:
            if fd != self.root_fd:
                os.close(fd)

    def copy_file(self, fd: int, relative: PurePosixPath, destination: Path) -> None:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):  # swapped in between the stat and the open
                raise self.refuse(relative, _describe(info.st_mode))
            # A sparse or huge file is refused before a byte of it is read.
            self._count_bytes(info.st_size, relative, before=True)
            try:
                out = os.open(destination, _NEW_FILE_FLAGS, (info.st_mode & 0o777) | 0o600)
            except OSError as exc:
                raise DestinationError(destination, exc) from None
            try:
                self._pump(fd, out, relative, destination)
            finally:
                os.close(out)
        finally:
            os.close(fd)

    def _pump(self, fd: int, out: int, relative: PurePosixPath, destination: Path) -> None:
        while True:
            self._check_deadline()
            try:
                chunk = os.read(fd, CHUNK_BYTES)
            except OSError as exc:
                raise InvalidInput(f"source: cannot read {relative}: {exc.strerror}") from None
            if not chunk:
                return
            self._count_bytes(len(chunk), relative, before=False)
            view = memoryview(chunk)
            while view:
                try:
                    written = os.write(out, view)
                except OSError as exc:
                    raise DestinationError(destination, exc) from None
                view = view[written:]

    def _count_bytes(self, size: int, relative: PurePosixPath, before: bool) -> None:
        limits = self.limits
        total = limits.copied_bytes + size
        if total > limits.max_bytes:
            raise PayloadTooLarge(
                f"source: the model folder {str(self.root)!r} is larger than the "
                f"{human_bytes(limits.max_bytes)} that registration copies "
                f"(reached at {relative}); raise {MAX_BYTES_SETTING} to register it"
            )
        if not before:
            limits.copied_bytes = total

    def _count_entry(self, relative: PurePosixPath) -> None:
        self.limits.entries += 1
        if self.limits.entries > MAX_ENTRIES:
            raise PayloadTooLarge(
                f"source: the model folder {str(self.root)!r} has more than {MAX_ENTRIES} files "
                f"and folders (reached in {relative}); a SavedModel has a handful"
            )
        self._check_deadline()

    def _check_deadline(self) -> None:
        if self.limits.deadline is not None and time.monotonic() > self.limits.deadline:
            raise CopyTimeout(f"copying {str(self.root)!r} ran past its deadline")


def human_bytes(size: int) -> str:
    """`1 GiB (1073741824 bytes)`: readable, and exact for whoever sets the limit."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.4g} {unit} ({size} bytes)"
    return f"{size} bytes"
