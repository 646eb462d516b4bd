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
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

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


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def summarise(latencies_s: list[float], concurrency: int, wall_s: float) -> LoadResult:
    ordered = sorted(latencies_s)
    return LoadResult(
        requests=len(ordered),
        concurrency=concurrency,
        p50_ms=percentile(ordered, 0.5) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        throughput_rps=len(ordered) / wall_s,
    )


def _bounded(requests: int, concurrency: int) -> None:
    if not 1 <= requests <= MAX_REQUESTS or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"requests 1..{MAX_REQUESTS}, concurrency 1..{MAX_CONCURRENCY}")


async def _http_load(
    url: str, body: bytes, requests: int, concurrency: int, check: Callable[[bytes], bool]
) -> LoadResult:
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    remaining = requests

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1  # single-threaded event loop: no race between clients
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                latencies.append(time.perf_counter() - started)
                if response.status != 200 or not check(answer):
                    raise RuntimeError(f"{url} answered {response.status}: {answer[:300]!r}")

        # Warm every connection first, so connect time is not in the figures.
        remaining = concurrency
        await asyncio.gather(*(client() for _ in range(concurrency)))
        latencies.clear()
        remaining = requests
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return summarise(latencies, concurrency, wall)


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

    latencies: list[float] = []
    remaining = requests
    # One channel per client, as one HTTP connection per client above.
    channels = [grpc.aio.insecure_channel(address) for _ in range(concurrency)]
    try:

        async def client(channel: Any) -> None:
            nonlocal remaining
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                answer = await stub.Predict(request, timeout=60)
                latencies.append(time.perf_counter() - started)
                if not check(answer):
                    raise RuntimeError(f"{address} answered {str(answer)[:300]}")

        remaining = concurrency
        await asyncio.gather(*(client(channel) for channel in channels))
        latencies.clear()
        remaining = requests
        started = time.perf_counter()
        await asyncio.gather(*(client(channel) for channel in channels))
        wall = time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()
    return summarise(latencies, concurrency, wall)


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
