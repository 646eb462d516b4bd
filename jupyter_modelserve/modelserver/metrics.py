"""Request counts and latencies, answered in TF Serving's Prometheus format.

The names, labels and buckets are TF Serving 2.14's (`servables/tensorflow/util.cc`,
`model_servers/http_server.cc`, `util/prometheus_exporter.cc`), so a dashboard or alert written
for TF Serving reads this server unchanged:

- `:tensorflow:serving:request_count{model_name, status}`, a counter of every request, with the
  gRPC code name ("OK", "NOT_FOUND"...) as its status;
- `:tensorflow:serving:request_latency{model_name, API, entrypoint}`, a histogram of the
  wall time of the *successful* requests (TF Serving records no latency for a failed one), in
  microseconds, with buckets 10 * 1.8**i for i < 33 (about 20 minutes) and +Inf; `entrypoint`
  is "REST" or "GRPC", the front end the request came through.

Both carry one more label, `version`: TF Serving counts per model name only, but here each
registered version is its own serve, and one server serves many versions of a model, so only a
version label tells one serve's traffic from another's. The request count also carries `API`:
the backend's own status reads are requests too, and without it a serve nobody used would show
traffic. TF Serving labels a GET (status, metadata) with an empty API; here it is "status" or
"metadata", which is what a reader wants. Sums by TF Serving's labels read the same.
"""

from __future__ import annotations

import threading
from bisect import bisect_left

PATH = "/monitoring/prometheus/metrics"  # TF Serving's default prometheus_config path
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"


def _bucket_limits(scale: float, growth: float, count: int) -> tuple[float, ...]:
    # tensorflow/core/lib/monitoring: Buckets::Exponential multiplies, so do the same (the
    # limits then equal TF's doubles, not 10 * 1.8**i).
    limits = []
    bound = scale
    for _ in range(count):
        limits.append(bound)
        bound *= growth
    return tuple(limits)


BUCKET_LIMITS = _bucket_limits(10.0, 1.8, 33)  # microseconds; a last bucket takes the rest
# Clients choose model names (a request for an unknown model is counted too, as TF Serving
# does), so series are bounded, in number and in the bytes they render to; past either bound new
# ones are counted under OVERFLOW. The page must stay well under what a scraper reads (this
# package's own reads at most 8 MB): a page past it is no metrics at all for every serve.
MAX_SERIES = 2000
MAX_PAGE_BYTES = 2 * 1024**2
OVERFLOW = "__other__"
# A label value longer than a model name can be (TF Serving's and the registry's limit) or an
# int64 version is no servable's: it is counted under OVERFLOW, not rendered.
MAX_NAME_LENGTH = 255
MAX_VERSION_LENGTH = 19
# What a line holds besides its labels, at most: the metric name, `_bucket`, `,le="..."`, the
# braces and a 20-digit count or a float sum.
_LINE_BYTES = len(REQUEST_LATENCY) + 64
_LATENCY_LINES = len(BUCKET_LIMITS) + 3  # the buckets, +Inf, _sum and _count

CountKey = tuple[str, str, str, str]  # model_name, version, API, status
LatencyKey = tuple[str, str, str, str]  # model_name, version, API, entrypoint


class _Histogram:
    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKET_LIMITS) + 1)
        self.total = 0.0


class Metrics:
    """The server's counters: `record` on every request (cheap), `render` on a scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[CountKey, int] = {}
        self._latency: dict[LatencyKey, _Histogram] = {}
        self._bytes = 0  # what the series admitted so far render to, at most

    def record(
        self,
        name: str,
        version: str,
        api: str,
        status: str,
        micros: float,
        entrypoint: str = "REST",
    ) -> None:
        """Count one request; its latency too when it succeeded. `version` is "" if unknown.

        `api`, `status` and `entrypoint` come from the server's own fixed sets; `name` and
        `version` from the request's path, so they are bounded here.
        """
        # The bucket is found outside the lock: only the adds are serialised.
        bucket = bisect_left(BUCKET_LIMITS, micros) if status == "OK" else -1
        if len(name) > MAX_NAME_LENGTH or len(version) > MAX_VERSION_LENGTH:
            name, version = OVERFLOW, ""
        with self._lock:
            key: CountKey = (name, version, api, status)
            if key not in self._counts and not self._admit(
                key, len(self._counts), 1, _labels(model_name=name, status=status, API=api)
            ):
                key = (OVERFLOW, "", api, status)
            self._counts[key] = self._counts.get(key, 0) + 1
            if bucket < 0:
                return
            series: LatencyKey = (name, version, api, entrypoint)
            if series not in self._latency and not self._admit(
                series, len(self._latency), _LATENCY_LINES, _labels(API=api, entrypoint=entrypoint)
            ):
                series = (OVERFLOW, "", api, entrypoint)
            histogram = self._latency.get(series)
            if histogram is None:
                histogram = self._latency[series] = _Histogram()
            histogram.buckets[bucket] += 1
            histogram.total += micros

    def _admit(self, key: tuple[str, ...], count: int, lines: int, labels: str) -> bool:
        """Whether a new series `key` (model, version, ...) fits beside the `count` there are,
        as `lines` lines that also carry `labels`; if so, it is accounted for.

        An OVERFLOW series is always admitted: there is one per API and status, both the
        server's own small sets, and it must take what is left over.
        """
        name, version = key[0], key[1]
        if (name, version) == (OVERFLOW, ""):
            return True
        labels += _labels(model_name=name, version=version)
        cost = lines * (_LINE_BYTES + len(labels.encode()))
        if count >= MAX_SERIES or self._bytes + cost > MAX_PAGE_BYTES:
            return False
        self._bytes += cost
        return True

    def render(self) -> str:
        """The Prometheus text exposition of every series, as TF Serving lays it out."""
        with self._lock:  # copy, then format without holding up requests
            counts = sorted(self._counts.items())
            latency = sorted((k, list(h.buckets), h.total) for k, h in self._latency.items())
        lines = [f"# TYPE {REQUEST_COUNT} counter"]
        for (name, version, api, status), count in counts:
            labels = _labels(model_name=name, status=status, API=api, version=version)
            lines.append(f"{REQUEST_COUNT}{{{labels}}} {count}")
        lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
        for (name, version, api, entrypoint), buckets, total in latency:
            labels = _labels(model_name=name, API=api, entrypoint=entrypoint, version=version)
            cumulative = 0
            for index, count in enumerate(buckets):
                cumulative += count
                limit = f"{BUCKET_LIMITS[index]:.6g}" if index < len(BUCKET_LIMITS) else "+Inf"
                lines.append(f'{REQUEST_LATENCY}_bucket{{{labels},le="{limit}"}} {cumulative}')
            lines.append(f"{REQUEST_LATENCY}_sum{{{labels}}} {total!r}")
            lines.append(f"{REQUEST_LATENCY}_count{{{labels}}} {cumulative}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    # The exposition format escapes backslash, double quote and line feed in label values.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
