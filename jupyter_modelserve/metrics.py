"""A serve's traffic, scraped from its model server's Prometheus endpoint.

The built-in model server and TF Serving (with a `prometheus_config`) answer
`/monitoring/prometheus/metrics` with `:tensorflow:serving:request_count` and the
`:tensorflow:serving:request_latency` histogram (see `modelserver/metrics.py`). The built-in one
labels both with the version; a series without a `version` label (TF Serving's own) counts every
version of the model, and is taken as this serve's when no versioned series exists. The built-in
one also labels the count with the API: only inference (predict, classify, regress) is counted
here, not the status reads the backend itself makes. TF Serving's count has no API label, so
there every request counts.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from .schemas import ServeMetrics
from .upstream import get_bounded

log = logging.getLogger(__name__)

PATH = "/monitoring/prometheus/metrics"
# A page is ~40 lines per model version and API; this is thousands of them.
MAX_PAGE_BYTES = 8 * 1024**2
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
_BUCKET = REQUEST_LATENCY + "_bucket"
# name{labels} value [timestamp]; a label value may hold escaped quotes, commas and braces.
_SAMPLE = re.compile(r'([A-Za-z_:][A-Za-z0-9_:]*)(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?\s+(\S+)')
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = re.compile(r"\\(.)")
INFERENCE = ("predict", "classify", "regress")
# TF Serving's counters are uint64; a larger "count" is not one (and past 2**53 not exact anyway).
MAX_COUNT = 2.0**64


@dataclass
class _Tally:
    requests: int = 0
    errors: int = 0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count


def _samples(page: str) -> Iterator[tuple[str, dict[str, str], float]]:
    for line in page.splitlines():
        if not line.startswith(":tensorflow:serving:request_"):
            continue  # comments, and every metric this reader does not use
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, label_text, value = match.groups()
        labels = {
            k: _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), v)
            for k, v in _LABEL.findall(label_text or "")
        }
        try:
            number = float(value)
        except ValueError:
            continue
        # Only counts are read (requests, cumulative bucket counts): finite whole numbers >= 0.
        # NaN, +Inf (int() raises on both), -5 or 2.5 is a broken page, not traffic.
        if math.isfinite(number) and 0 <= number < MAX_COUNT and number.is_integer():
            yield name, labels, number


def parse_metrics(page: str, name: str, version: int) -> ServeMetrics:
    """Request and error counts and p50/p99 latency (ms) of model `name` version `version`."""
    tallies = {True: _Tally(), False: _Tally()}  # versioned series, and unversioned (TF Serving)
    wanted = str(version)
    for metric, labels, value in _samples(page):
        if labels.get("model_name") != name or labels.get("version", wanted) != wanted:
            continue
        if labels.get("API", "predict").lower() not in INFERENCE:
            continue  # status and metadata reads: the backend's polling, not the serve's use
        tally = tallies["version" in labels]
        if metric == REQUEST_COUNT:
            tally.requests += int(value)
            if labels.get("status") != "OK":
                tally.errors += int(value)
        elif metric == _BUCKET and (limit := _bucket_limit(labels.get("le"))) is not None:
            tally.buckets[limit] = tally.buckets.get(limit, 0.0) + value  # summed over APIs
    tally = tallies[True] if tallies[True].requests or tallies[True].buckets else tallies[False]
    buckets = sorted(tally.buckets.items())
    p50, p99 = (_quantile(buckets, q) for q in (0.5, 0.99))
    return ServeMetrics(
        request_count=tally.requests,
        error_count=tally.errors,
        latency_p50_ms=None if p50 is None else p50 / 1000.0,
        latency_p99_ms=None if p99 is None else p99 / 1000.0,
    )


def _bucket_limit(text: str | None) -> float | None:
    """A bucket's upper bound: a number >= 0 or "+Inf" (latencies); None if it is not one."""
    try:
        limit = float(text) if text is not None else math.nan
    except ValueError:
        return None
    return limit if limit >= 0 else None  # NaN compares False too


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The q-quantile of a cumulative histogram, as Prometheus' histogram_quantile computes it.

    Linear interpolation within the bucket the rank falls in, assuming its observations are
    spread evenly between the bucket's lower bound (the previous limit, 0 for the first) and its
    upper one. The answer is thus only as exact as the buckets: within the bounds of the bucket
    holding the true quantile. A rank in the +Inf bucket answers the highest finite limit.
    None when there are no observations.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for limit, cumulative in buckets:
        if cumulative >= rank:
            if limit == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (limit - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = limit, cumulative
    return lower


def scrape_metrics(endpoint: str, name: str, version: int, timeout: float) -> ServeMetrics | None:
    """The metrics of a serve from the model server at `endpoint`; None if it cannot be read.

    Blocking, in the calling thread, bounded by `timeout` and MAX_PAGE_BYTES.
    """
    body = get_bounded(f"{endpoint}{PATH}", timeout, MAX_PAGE_BYTES)
    if body is None:
        return None
    return parse_metrics(body.decode("utf-8", errors="replace"), name, version)
