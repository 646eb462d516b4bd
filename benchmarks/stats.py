"""The one percentile every benchmark reports, with no dependencies of its own."""

from __future__ import annotations


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` 0.5 for p50, 0.99 for p99) of `values`, any order."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
