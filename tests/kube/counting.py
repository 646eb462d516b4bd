"""Counting the HTTP requests a kubernetes client sends to the real API server.

A hook on the client's own urllib3 pool: every request still goes to the API server and its
answer comes back unchanged; the hook only writes down (method, path, query) first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Calls:
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, query)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, method: str, url: str) -> None:
        parts = urlsplit(url)
        with self.lock:
            self.seen.append((method.upper(), parts.path, parts.query))

    def matching(self, check: Callable[[str, str, str], bool]) -> list[tuple[str, str, str]]:
        with self.lock:
            return [call for call in self.seen if check(*call)]

    def lists(self, resource: str) -> int:
        """Plain list calls (not watches) of `resource` ("deployments", "pods", ...)."""
        return len(
            self.matching(
                lambda m, p, q: m == "GET" and p.endswith(f"/{resource}") and "watch=" not in q
            )
        )

    def writes(self) -> list[tuple[str, str, str]]:
        return self.matching(lambda m, p, q: m in ("POST", "PUT", "PATCH", "DELETE"))

    def reset(self) -> None:
        with self.lock:
            self.seen.clear()


@contextmanager
def counting(api_client: Any) -> Iterator[Calls]:
    """Count the requests `api_client` (a kubernetes.client.ApiClient) sends meanwhile."""
    pool = api_client.rest_client.pool_manager
    original = pool.request
    calls = Calls()

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        calls.add(method, url)
        return original(method, url, *args, **kwargs)

    pool.request = request
    try:
        yield calls
    finally:
        pool.request = original
