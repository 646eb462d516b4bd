"""The one load generator for every server: ours, the peers, the floor's echo server.

Keep-alive connections (one aiohttp session, one connection per client), a fixed number of
requests shared by `concurrency` clients, every answer checked against the expected body, and
per-request latencies from which p50/p99 and throughput are taken. The same code drives every
server so the figures compare. gRPC (TF Serving's PredictionService) has its own driver with the
same shape, for the built-in model server's gRPC port.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from benchmarks.stats import percentile

MAX_REQUESTS = 1_000_000  # bound on a run's size, whatever the command line says
MAX_CONCURRENCY = 256


@dataclass(frozen=True)
class LoadResult:
    requests: int
    concurrency: int
    p50_ms: float
    p99_ms: float
    throughput_rps: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarise(latencies_s: list[float], concurrency: int, wall_s: float) -> LoadResult:
    return LoadResult(
        requests=len(latencies_s),
        concurrency=concurrency,
        p50_ms=percentile(latencies_s, 0.5) * 1000,
        p99_ms=percentile(latencies_s, 0.99) * 1000,
        throughput_rps=len(latencies_s) / wall_s,
    )


def _bounded(requests: int, concurrency: int) -> None:
    if not 1 <= requests <= MAX_REQUESTS or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"requests 1..{MAX_REQUESTS}, concurrency 1..{MAX_CONCURRENCY}")


async def _drive(
    call: Callable[[int], Awaitable[Any]],
    verify: Callable[[Any], None],
    requests: int,
    concurrency: int,
) -> LoadResult:
    """`concurrency` clients share `requests` calls; `call(client)` makes one and returns its
    answer, timed, and `verify(answer)` raises on a wrong one, untimed. Every client's
    connection is warmed with one call first, so connect time is not in the figures."""
    latencies: list[float] = []
    remaining = 0

    async def client(index: int) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1  # single-threaded event loop: no race between clients
            started = time.perf_counter()
            answer = await call(index)
            latencies.append(time.perf_counter() - started)
            verify(answer)

    remaining = concurrency
    await asyncio.gather(*(client(index) for index in range(concurrency)))
    latencies.clear()
    remaining = requests
    started = time.perf_counter()
    await asyncio.gather(*(client(index) for index in range(concurrency)))
    return summarise(latencies, concurrency, time.perf_counter() - started)


async def _http_load(
    url: str, body: bytes, requests: int, concurrency: int, check: Callable[[bytes], bool]
) -> LoadResult:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def call(_: int) -> tuple[int, bytes]:
            async with session.post(url, data=body, headers=headers) as response:
                return response.status, await response.read()

        def verify(answer: tuple[int, bytes]) -> None:
            status, raw = answer
            if status != 200 or not check(raw):
                raise RuntimeError(f"{url} answered {status}: {raw[:300]!r}")

        return await _drive(call, verify, requests, concurrency)


def http_load(
    url: str, body: bytes, requests: int, concurrency: int, check: Callable[[bytes], bool]
) -> LoadResult:
    """POST `body` to `url` `requests` times from `concurrency` keep-alive clients."""
    _bounded(requests, concurrency)
    with collector_paused():
        return asyncio.run(_http_load(url, body, requests, concurrency, check))


async def _grpc_load(
    address: str, request: Any, requests: int, concurrency: int, check: Callable[[Any], bool]
) -> LoadResult:
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    # One channel per client, as one HTTP connection per client above.
    channels = [grpc.aio.insecure_channel(address) for _ in range(concurrency)]
    stubs = [prediction_service_pb2_grpc.PredictionServiceStub(c) for c in channels]

    async def call(index: int) -> Any:
        return await stubs[index].Predict(request, timeout=60)

    def verify(answer: Any) -> None:
        if not check(answer):
            raise RuntimeError(f"{address} answered {str(answer)[:300]}")

    try:
        return await _drive(call, verify, requests, concurrency)
    finally:
        for channel in channels:
            await channel.close()


def grpc_load(
    address: str, request: Any, requests: int, concurrency: int, check: Callable[[Any], bool]
) -> LoadResult:
    """Call PredictionService.Predict on `address` ("host:port"), as `http_load` does."""
    _bounded(requests, concurrency)
    with collector_paused():
        return asyncio.run(_grpc_load(address, request, requests, concurrency, check))


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in the load generator while it measures: a full collection here
    would add its pause to whichever server's request was in flight. Every server gets the same
    client; the few MB a run allocates are freed after."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
