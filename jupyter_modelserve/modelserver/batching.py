"""Server-side dynamic batching of concurrent predicts, as TF Serving's `--enable_batching`.

Requests for the same servable and signature whose inputs can be stacked (every input an array
with the same first dimension, equal dtypes and equal inner shapes across the requests) wait in
one queue. A batch thread takes a queue's requests as one batch once they fill
`max_batch_size`, or once the oldest has waited `batch_timeout_micros` (0: at once, so batches
form only while every batch thread is busy, as in TF Serving); it concatenates their inputs on
the first dimension, calls the signature once, and hands each request its rows of the outputs.

Like TF Serving: a request larger than `max_batch_size` is INVALID_ARGUMENT, a full queue
(`max_enqueued_batches` batches waiting) is UNAVAILABLE, and an error of the batched call is
every batch member's error. Unlike TF Serving, a request that cannot be stacked (a scalar input,
inputs of different first dimensions) runs on its own instead of failing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .batching_config import BatchingParameters
from .errors import ServingError
from .logs import log

Run = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclass(eq=False)
class _Task:
    inputs: Mapping[str, np.ndarray]
    size: int
    run: Run
    enqueued: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    outputs: Mapping[str, np.ndarray] | None = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Queue:
    tasks: deque[_Task] = field(default_factory=deque)
    rows: int = 0  # the sum of the queued tasks' sizes


def batch_key(owner: Hashable, inputs: Mapping[str, Any]) -> tuple[Hashable, ...] | None:
    """The queue for `inputs` of `owner` (a servable's signature), or None: not stackable."""
    sizes = set()
    parts: list[Hashable] = [owner]
    for name in sorted(inputs):
        value = inputs[name]
        if not isinstance(value, np.ndarray) or value.ndim == 0:
            return None
        sizes.add(value.shape[0])
        parts.append((name, value.dtype.str, value.shape[1:]))
    if len(sizes) != 1 or 0 in sizes:
        return None
    return tuple(parts)


class Batcher:
    """The batch threads and queues of one model server process."""

    def __init__(self, parameters: BatchingParameters) -> None:
        self.parameters = parameters
        self.timeout = parameters.batch_timeout_micros / 1e6
        self._changed = threading.Condition()
        self._queues: dict[Hashable, _Queue] = {}
        self._stopped = False
        # What ran, for tests and metrics: batch sizes in requests, one entry per signature call.
        self.batch_sizes: list[int] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"modelserver-batch-{i}", daemon=True)
            for i in range(parameters.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(
        self, key: Hashable, inputs: Mapping[str, np.ndarray], run: Run
    ) -> Mapping[str, np.ndarray]:
        """`run(inputs)`, possibly as part of a batch with other requests of the same `key`."""
        size = next(iter(inputs.values())).shape[0]
        limit = self.parameters.max_batch_size
        if size > limit:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Task size {size} is larger than maximum input batch size {limit}",
            )
        task = _Task(inputs, size, run)
        with self._changed:
            if self._stopped:
                raise ServingError("UNAVAILABLE", "The batch scheduler is shutting down")
            queue = self._queues.setdefault(key, _Queue())
            if -(-(queue.rows + size) // limit) > self.parameters.max_enqueued_batches:
                raise ServingError(
                    "UNAVAILABLE",
                    "The batch scheduling queue to which this task was submitted is full",
                )
            queue.tasks.append(task)
            queue.rows += size
            self._changed.notify()
        task.done.wait()  # a batch thread always sets it: see _work
        if task.error is not None:
            raise task.error
        assert task.outputs is not None
        return task.outputs

    def queued_rows(self) -> int:
        """Rows waiting in every queue (requests not yet taken by a batch thread)."""
        with self._changed:
            return sum(queue.rows for queue in self._queues.values())

    def close(self) -> None:
        """Stop the batch threads once the queued requests are answered."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()

    # -- batch threads ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._changed:
                batch = self._take()
            if batch is None:
                return
            try:
                self._execute(batch)
            except BaseException as error:  # never leave a caller waiting
                log.exception("A batch of %d requests failed", len(batch))
                for task in batch:
                    if not task.done.is_set():
                        task.error = error
                        task.done.set()

    def _take(self) -> list[_Task] | None:
        """The next ready batch (the lock held), waiting until one is; None once stopped."""
        limit = self.parameters.max_batch_size
        while True:
            now = time.monotonic()
            wake: float | None = None
            for key, queue in list(self._queues.items()):
                if not queue.tasks:
                    del self._queues[key]  # queues come and go with the keys in use
                    continue
                due = queue.tasks[0].enqueued + self.timeout
                if queue.rows >= limit or now >= due or self._stopped:
                    batch: list[_Task] = []
                    rows = 0
                    while queue.tasks and rows + queue.tasks[0].size <= limit:
                        task = queue.tasks.popleft()
                        rows += task.size
                        batch.append(task)
                    queue.rows -= rows
                    # The next thread starts from another queue: no signature starves.
                    self._queues[key] = self._queues.pop(key)
                    return batch
                wake = due if wake is None else min(wake, due)
            if self._stopped:
                return None
            self._changed.wait(None if wake is None else max(0.0, wake - now))

    def _execute(self, batch: list[_Task]) -> None:
        self.batch_sizes.append(len(batch))
        if len(batch) == 1:
            task = batch[0]
            task.outputs = task.run(task.inputs)
            task.done.set()
            return
        names = list(batch[0].inputs)
        merged = {n: np.concatenate([t.inputs[n] for t in batch]) for n in names}
        try:
            outputs = batch[0].run(merged)
            parts = _split(outputs, [t.size for t in batch])
        except ServingError as error:
            for task in batch:
                task.error = error
                task.done.set()
            return
        for task, part in zip(batch, parts, strict=True):
            task.outputs = part
            task.done.set()


def _split(outputs: Mapping[str, np.ndarray], sizes: list[int]) -> list[dict[str, np.ndarray]]:
    """Each request's rows of the batched outputs."""
    total = sum(sizes)
    for name, value in outputs.items():
        if value.ndim == 0 or value.shape[0] != total:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Batched output tensor '{name}' has 0th dimension "
                f"{value.shape[0] if value.ndim else 'none (a scalar)'}, which does not equal "
                f"the sum of the 0th dimension sizes of the input tensors ({total}); the model "
                "cannot be served with --enable_batching",
            )
    bounds = np.cumsum(sizes)[:-1]
    split = {n: np.split(v, bounds) for n, v in outputs.items()}
    return [{n: split[n][i] for n in outputs} for i in range(len(sizes))]


_active: Batcher | None = None


def enable(parameters: BatchingParameters) -> Batcher:
    """Batch every servable's stackable requests from now on (`--enable_batching`)."""
    global _active
    if _active is not None:
        _active.close()
    _active = Batcher(parameters)
    return _active


def disable() -> None:
    global _active
    if _active is not None:
        _active.close()
    _active = None


def active() -> Batcher | None:
    """The process's batcher, or None when batching is off (the default, as in TF Serving)."""
    return _active
