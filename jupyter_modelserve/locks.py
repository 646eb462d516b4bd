"""Per-key locks that never wait forever: one serve, or one registered model, at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from .errors import BackendUnavailable

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """A lock per key, made on first use; waiting longer than `timeout` is a 503 naming what
    is busy (`describe(key)`), never a request parked for good behind a slow one."""

    def __init__(self, timeout: float, describe: Callable[[K], str]) -> None:
        self.timeout = timeout
        self._describe = describe
        self._locks: dict[K, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: K, timeout: float | None = None) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        wait = self.timeout if timeout is None else timeout
        if not lock.acquire(timeout=wait):
            raise BackendUnavailable(
                f"{self._describe(key)} is busy with another request for more than "
                f"{wait:.0f} s; try again"
            )
        try:
            yield
        finally:
            lock.release()
