"""Bounded GETs of a model server's read-only endpoints (`/metadata`, Prometheus metrics), and
`best_effort`, which keeps what is read from them from ever failing the view it decorates.

Blocking, in the calling thread (the REST handlers already run service calls off the event loop).
Every read is bounded in time and size, and any failure is None: what these reads add to a view
is optional, so a model server that is down, slow or hostile never turns a read into an error.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
# No proxy: the endpoint is where this process reaches the model server directly, as the
# predict proxy does; an http_proxy meant for the internet must not see these reads.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_bounded(url: str, timeout: float, max_bytes: int) -> bytes | None:
    """The body of a 200 answer to GET `url`, or None (any error, `timeout` s, > max_bytes)."""
    deadline = time.monotonic() + timeout
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    log.warning("Not reading %s: its answer passed %d bytes", url, max_bytes)
                    return None
                if time.monotonic() > deadline:  # a slow drip: each read has its own timeout
                    log.warning("Not reading %s: it took more than %.1f s", url, timeout)
                    return None
                chunks.append(chunk)
            return b"".join(chunks)
    except (OSError, ValueError, http.client.HTTPException) as error:
        # URLError (and HTTPError), timeouts and resets are OSErrors; ValueError is a malformed
        # URL; HTTPException a broken status line or a short body.
        log.debug("GET %s failed: %s", url, error)
        return None


_T = TypeVar("_T")
# What has been logged at warning already: one line per kind of failure and serve, not one
# traceback per GET. Bounded: past MAX_WARNED it starts over (a few repeats, never a leak).
MAX_WARNED = 1000
_warned: set[tuple[str, str]] = set()


def best_effort(what: str, read: Callable[[], _T]) -> _T | None:
    """`read()`, or None on any exception, logged (warning the first time, then debug).

    For what GET one adds from another process's output (a signature, metrics): a broken peer,
    or a bug in parsing what it sent, must not turn the serve's own view into a 500.
    """
    try:
        return read()
    except Exception as error:
        seen = (what, type(error).__name__)
        if seen in _warned:
            log.debug("Leaving out %s: %r", what, error)
            return None
        if len(_warned) >= MAX_WARNED:
            _warned.clear()
        _warned.add(seen)
        log.warning("Leaving out %s (logged once): %r", what, error, exc_info=True)
        return None
