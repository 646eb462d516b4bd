"""Cheap predicts answered on the event-loop thread (modelserver/inline.py): which paths run
inline, that a real server really skips its executor for them and only for them, and that
concurrent inline predicts all answer correctly."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_modelserve.demo import build_half_plus_two
from jupyter_modelserve.modelserver import inline as inline_module
from jupyter_modelserve.modelserver.inline import MAX_INLINE_BODY_BYTES, MAX_PATHS, InlineCalls
from jupyter_modelserve.modelserver.manager import ModelManager

from .modelserver_fixtures import TIMEOUT, loaded, serve

PREDICT = "/v1/models/simple:predict"
CHEAP_S = 0.0001  # a tenth of the default threshold
SLOW_S = 0.050
SMALL = 64  # bytes of a batch-1 body
ALWAYS = 3600.0  # a threshold every call is under: inline from the second call on, whatever the
# machine's speed (the tests assert which way a call went, never how long it took)


class CountingExecutor(ThreadPoolExecutor):
    """A real thread pool that counts the calls handed to it (asyncio's run_in_executor calls
    `submit`)."""

    def __init__(self) -> None:
        super().__init__(2, thread_name_prefix="t2-counting")
        self._count_lock = threading.Lock()
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._count_lock:
            self.submitted += 1
        return super().submit(fn, *args, **kwargs)


# -- InlineCalls on its own -------------------------------------------------------------------


def test_an_unseen_path_goes_to_the_executor_and_one_cheap_call_brings_it_inline() -> None:
    # Given a fresh table
    calls = InlineCalls()
    # When nothing has been recorded for a path
    # Then it is not wanted inline (its cost is unknown)
    assert not calls.wanted(PREDICT, SMALL)
    # When one cheap call is recorded
    calls.record(PREDICT, SMALL, 200, CHEAP_S)
    # Then the path is wanted inline, and another path is still not
    assert calls.wanted(PREDICT, SMALL)
    assert not calls.wanted("/v1/models/other:predict", SMALL)


def test_a_slow_call_sends_a_path_back_to_the_executor_and_cheap_ones_bring_it_back() -> None:
    # Given a path with a history of cheap calls
    calls = InlineCalls()
    for _ in range(20):
        calls.record(PREDICT, SMALL, 200, CHEAP_S)
    assert calls.wanted(PREDICT, SMALL)
    # When one call takes 50 ms (a larger batch, say)
    calls.record(PREDICT, SMALL, 200, SLOW_S)
    # Then the next call goes to the executor
    assert not calls.wanted(PREDICT, SMALL)
    # When cheap calls follow
    cheap_calls_until_inline = 0
    while not calls.wanted(PREDICT, SMALL):
        calls.record(PREDICT, SMALL, 200, CHEAP_S)
        cheap_calls_until_inline += 1
        assert cheap_calls_until_inline < 100, "never came back inline"
    # Then the path comes back inline once the moving average forgets the slow call: with a
    # weight of 0.2 for the newest call, the slow one lifted it to 0.1 + 0.2 * 49.9 = 10.08 ms,
    # and 0.1 + 9.98 * 0.8**n ms is under 1 ms from n = 11
    assert cheap_calls_until_inline == 11


def test_the_table_never_holds_more_than_max_paths() -> None:
    # Given a table, and a client choosing its paths
    calls = InlineCalls()
    # When MAX_PATHS + 1 distinct paths are each recorded once
    sizes = []
    for index in range(MAX_PATHS + 1):
        calls.record(f"/v1/models/m{index}:predict", SMALL, 200, CHEAP_S)
        sizes.append(len(calls._cost))
    # Then the table never grew past MAX_PATHS, and the newest path is known after it was cleared
    assert max(sizes) == MAX_PATHS
    assert sizes[-1] == 1
    assert calls.wanted(f"/v1/models/m{MAX_PATHS}:predict", SMALL)
    assert not calls.wanted("/v1/models/m0:predict", SMALL)


def test_the_default_threshold_is_one_millisecond() -> None:
    # Given the default table
    calls = InlineCalls()
    # When paths record a call just under and just over 1 ms
    calls.record("/under", SMALL, 200, 0.0009)
    calls.record("/over", SMALL, 200, 0.0011)
    # Then only the one under runs inline
    assert inline_module.DEFAULT_THRESHOLD_S == 0.001
    assert calls.wanted("/under", SMALL) and not calls.wanted("/over", SMALL)


def test_refusals_teach_nothing_and_large_bodies_never_run_inline() -> None:
    # Given a fresh table
    calls = InlineCalls()
    # When a path is answered quickly, but only with refusals (a client priming it with `{}`)
    for _ in range(20):
        calls.record(PREDICT, SMALL, 400, CHEAP_S)
    # Then it has learnt nothing: the next call still goes to the executor
    assert not calls.wanted(PREDICT, SMALL)
    # When cheap answers teach it, then a large body comes
    calls.record(PREDICT, SMALL, 200, CHEAP_S)
    assert calls.wanted(PREDICT, SMALL)
    # Then the large body is not wanted inline, and its cost (a large batch) is not learnt
    assert not calls.wanted(PREDICT, MAX_INLINE_BODY_BYTES + 1)
    calls.record(PREDICT, MAX_INLINE_BODY_BYTES + 1, 200, SLOW_S)
    assert calls.wanted(PREDICT, SMALL)


# -- a real model server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelManager]:
    """The `simple` model (the demo half_plus_two, y = 0.5x + 2) loaded and warmed."""
    base: Path = tmp_path_factory.mktemp("inline-models") / "simple"
    build_half_plus_two(base / "1")
    with loaded({"simple": base}) as manager:
        yield manager


def predict(session: requests.Session, url: str, x: float) -> Any:
    response = session.post(url + PREDICT, data=json.dumps({"instances": [x]}), timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_cheap_path_runs_on_the_executor_once_then_inline(manager: ModelManager) -> None:
    # Given a real server whose inline threshold every call is under
    with (
        CountingExecutor() as executor,
        serve(manager, executor=executor, inline=InlineCalls(threshold_s=ALWAYS)) as url,
    ):
        session = requests.Session()
        # When `simple` is asked to predict for the first time
        first = predict(session, url, 1.0)
        # Then that call ran on the executor (its cost was unknown)
        assert executor.submitted == 1
        assert first == {"predictions": [2.5]}
        # When it is asked again several times
        answers = [predict(session, url, float(x)) for x in range(2, 8)]
        # Then none of those went to the executor, and every answer is y = 0.5x + 2
        assert executor.submitted == 1
        assert answers == [{"predictions": [0.5 * x + 2]} for x in range(2, 8)]


def test_a_path_never_cheap_enough_always_uses_the_executor(manager: ModelManager) -> None:
    # Given a real server whose inline threshold no call is under
    with (
        CountingExecutor() as executor,
        serve(manager, executor=executor, inline=InlineCalls(threshold_s=0)) as url,
    ):
        session = requests.Session()
        # When `simple` predicts several times
        answers = [predict(session, url, float(x)) for x in range(6)]
        # Then every call went to the executor, and answered correctly
        assert executor.submitted == 6
        assert answers == [{"predictions": [0.5 * x + 2]} for x in range(6)]


def test_quick_refusals_never_bring_a_path_inline(manager: ModelManager) -> None:
    # Given a real server whose inline threshold every call is under
    with (
        CountingExecutor() as executor,
        serve(manager, executor=executor, inline=InlineCalls(threshold_s=ALWAYS)) as url,
    ):
        session = requests.Session()
        # When a client primes `simple`'s path with bodies it refuses at once (no instances)
        refused = [session.post(url + PREDICT, data="{}", timeout=TIMEOUT) for _ in range(5)]
        # Then each was a 400, each ran on the executor, and a real predict still goes there
        assert {r.status_code for r in refused} == {400}
        assert executor.submitted == 5
        predict(session, url, 1.0)
        assert executor.submitted == 6


def test_without_an_inline_table_as_with_batching_every_predict_uses_the_executor(
    manager: ModelManager,
) -> None:
    # Given a real server with no inline table (what server.py passes with --enable_batching)
    with CountingExecutor() as executor, serve(manager, executor=executor) as url:
        session = requests.Session()
        # When `simple` predicts several times
        answers = [predict(session, url, float(x)) for x in range(6)]
        # Then every call went to the executor, and answered correctly
        assert executor.submitted == 6
        assert answers == [{"predictions": [0.5 * x + 2]} for x in range(6)]


def test_sixteen_concurrent_inline_predicts_all_answer_correctly(manager: ModelManager) -> None:
    # Given a real server where `simple`'s predicts run inline after the first
    with (
        CountingExecutor() as executor,
        serve(manager, executor=executor, inline=InlineCalls(threshold_s=ALWAYS)) as url,
    ):
        predict(requests.Session(), url, 0.0)
        assert executor.submitted == 1
        # When 16 clients predict at once, each its own values, a few times over
        answers: dict[int, list[Any]] = {}
        failures: list[BaseException] = []
        start = threading.Barrier(16)

        def client(index: int) -> None:
            try:
                session = requests.Session()
                start.wait(TIMEOUT)
                answers[index] = [predict(session, url, index + 0.5 * k) for k in range(5)]
            except BaseException as error:  # reported by the main thread
                failures.append(error)

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        # Then every client got its own correct answers, all computed inline
        assert not failures, failures
        assert sorted(answers) == list(range(16))
        for index, got in answers.items():
            assert got == [{"predictions": [0.5 * (index + 0.5 * k) + 2]} for k in range(5)]
        assert executor.submitted == 1
