"""Which predicts the REST front end answers on its event-loop thread rather than a worker's.

Handing a request to a worker thread and its answer back costs two thread wake-ups, 0.2-0.3 ms
on a small machine: as much as the whole call of a small model, measured in benchmarks.run. So a
path whose recent calls were cheap runs inline, and anything slower goes to the executor, where
calls run in parallel (TensorFlow releases the interpreter lock) and never hold up status calls.

The cost of a path is a moving average of its handling time, learnt only from answered calls
(200) with small bodies, wherever they ran; only small bodies go inline. So a client cannot
teach a path to be cheap with quick 400s and then send a large batch to it on the loop: what
runs inline is bounded by the body size, and a call that turns slow (a new version's first
call) blocks the loop once, sends the path back to the executor, and the path returns inline
once its calls there are cheap again. A path never seen runs on the executor. Never used with
batching, whose calls wait for a batch to fill.
"""

from __future__ import annotations

DEFAULT_THRESHOLD_S = 0.001
# A batch-1 body of a model with a 784-float input is ~15 KiB.
MAX_INLINE_BODY_BYTES = 16 * 1024
MAX_PATHS = 1024  # a bound on the table: clients choose the paths (aliases only cost misses)
_WEIGHT = 0.2  # of the newest call in the moving average


class InlineCalls:
    """Per request path: the moving average of its handling time, and whether it runs inline.

    Used from the event-loop thread only (the handler records after its await), so no lock.
    """

    def __init__(self, threshold_s: float = DEFAULT_THRESHOLD_S) -> None:
        self.threshold_s = threshold_s
        self._cost: dict[str, float] = {}

    def wanted(self, path: str, body_bytes: int) -> bool:
        if body_bytes > MAX_INLINE_BODY_BYTES:
            return False
        cost = self._cost.get(path)
        return cost is not None and cost < self.threshold_s

    def record(self, path: str, body_bytes: int, status: int, seconds: float) -> None:
        if status != 200 or body_bytes > MAX_INLINE_BODY_BYTES:
            return  # a refusal is no measure of what an answer costs
        cost = self._cost.get(path)
        if cost is None:
            if len(self._cost) >= MAX_PATHS:
                self._cost.clear()  # forget every path; each is re-learnt in one call
            self._cost[path] = seconds
        else:
            self._cost[path] = cost + _WEIGHT * (seconds - cost)
