"""Dynamic batching (`--enable_batching`): batched answers equal unbatched ones, concurrent
requests really share one signature call, and TF Serving's limits and parameters file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_modelserve.modelserver import batching
from jupyter_modelserve.modelserver.batching_config import (
    BatchingParameters,
    parse_batching_parameters,
)
from jupyter_modelserve.modelserver.routes import Api

from .modelserver_fixtures import TIMEOUT, build_all, loaded, wait_for

# Longer than any test waits: a batch here forms only by filling up, never by a timer.
NEVER_MICROS = 600 * 1_000_000


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    bases: dict[str, Path] = build_all(tmp_path_factory.mktemp("batching-models"))
    with loaded(bases) as manager:
        yield Api(manager)


@pytest.fixture
def batcher() -> Iterator[batching.Batcher]:
    parameters = BatchingParameters(
        max_batch_size=4, batch_timeout_micros=NEVER_MICROS, max_enqueued_batches=2,
        num_batch_threads=1,
    )  # fmt: skip
    yield batching.enable(parameters)
    batching.disable()


def post(api: Api, model: str, body: dict[str, Any]) -> tuple[int, Any]:
    status, answer = api.handle("POST", f"/v1/models/{model}:predict", json.dumps(body).encode())
    return status, json.loads(answer)


def concurrently(api: Api, calls: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, Any]]:
    """Post every call from its own thread; the answers in call order."""
    answers: list[tuple[int, Any] | None] = [None] * len(calls)

    def one(index: int) -> None:
        answers[index] = post(api, *calls[index])

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not any(t.is_alive() for t in threads), "requests still waiting for their batch"
    return [a for a in answers if a is not None]


CALLS = [  # 1 + 2 + 1 rows of half_plus_two: one full batch of 4
    ("half_plus_two", {"instances": [1.0]}),
    ("half_plus_two", {"instances": [2.0, 3.0]}),
    ("half_plus_two", {"inputs": [-4.0]}),
]


def test_batching_is_off_by_default() -> None:
    # Given a model server process that was not started with --enable_batching
    # Then no batcher exists
    assert batching.active() is None


def test_concurrent_requests_share_one_call_and_get_their_own_rows(
    api: Api, batcher: batching.Batcher
) -> None:
    # Given the answers without batching
    batching.disable()
    unbatched = [post(api, model, body) for model, body in CALLS]
    batcher = batching.enable(batcher.parameters)
    # When the same requests arrive together at a batcher of max_batch_size 4
    batched = concurrently(api, CALLS)
    # Then one signature call answered all three, and each got exactly its unbatched answer
    assert batcher.batch_sizes == [3]
    assert batched == unbatched
    assert [a for _, a in batched] == [
        {"predictions": [2.5]},
        {"predictions": [3.0, 3.5]},
        {"outputs": [0.0]},
    ]


def test_a_model_with_several_inputs_and_string_outputs_batches_too(
    api: Api, batcher: batching.Batcher
) -> None:
    # Given multi_io (float `a` [-1, 2], int64 `b` [-1] -> `total`, `label_bytes`)
    calls = [
        ("multi_io", {"instances": [{"a": [1, 2], "b": 3}]}),
        ("multi_io", {"inputs": {"a": [[0.5, 0.5], [1, 1]], "b": [-1, 7]}}),
        ("multi_io", {"instances": [{"a": [0, 0], "b": 10}]}),
    ]
    # When three requests of 1 + 2 + 1 rows arrive together
    answers = concurrently(api, calls)
    # Then they shared one call and each has its rows of both outputs
    assert batcher.batch_sizes == [3]
    assert answers == [
        (200, {"predictions": [{"label_bytes": {"b64": "Mw=="}, "total": 6.0}]}),
        (
            200,
            {"outputs": {"label_bytes": [{"b64": "LTE="}, {"b64": "Nw=="}], "total": [0.0, 9.0]}},
        ),
        (200, {"predictions": [{"label_bytes": {"b64": "MTA="}, "total": 10.0}]}),
    ]


def test_a_request_larger_than_max_batch_size_is_invalid(
    api: Api, batcher: batching.Batcher
) -> None:
    # Given a batcher of max_batch_size 4
    # When one request holds 5 rows
    [(status, answer)] = concurrently(api, [("half_plus_two", {"instances": [1.0] * 5})])
    # Then TF Serving's error says so, and nothing ran
    assert status == 400
    assert answer["error"] == "Task size 5 is larger than maximum input batch size 4"
    assert batcher.batch_sizes == []


def test_a_full_queue_is_unavailable_and_the_waiting_requests_still_answer(api: Api) -> None:
    # Given a batcher holding at most one batch of 4 rows, with 3 rows already waiting
    batcher = batching.enable(
        BatchingParameters(4, NEVER_MICROS, max_enqueued_batches=1, num_batch_threads=1)
    )
    try:
        first: list[tuple[int, Any]] = []
        waiting = threading.Thread(
            daemon=True,
            target=lambda: first.append(post(api, "half_plus_two", {"instances": [0.0] * 3})),
        )
        waiting.start()
        wait_for(lambda: batcher.queued_rows() == 3, what="the first request to be queued")
        # When 2 more rows arrive (5 rows would need a second batch), then 1 row
        [(full_status, full)] = concurrently(api, [("half_plus_two", {"instances": [1.0, 1.0]})])
        [last] = concurrently(api, [("half_plus_two", {"instances": [2.0]})])
        waiting.join(TIMEOUT)
        # Then the 2 rows are refused as TF Serving refuses them, the 1 row fills the batch,
        # and both waiting requests get their answers from one call
        assert full_status == 503
        assert full["error"] == (
            "The batch scheduling queue to which this task was submitted is full"
        )
        assert last == (200, {"predictions": [3.0]})
        assert first == [(200, {"predictions": [2.0, 2.0, 2.0]})]
        assert batcher.batch_sizes == [2]
    finally:
        batching.disable()


def test_the_parameters_file_is_read_as_tf_serving_reads_it() -> None:
    # Given TF Serving's text format, with fields this server accepts and ignores
    text = """
        max_batch_size { value: 32 }
        batch_timeout_micros { value: 1000 }
        num_batch_threads { value: 2 }
        thread_pool_name { value: "model_server_batch_threads" }
        allowed_batch_sizes: 8
        allowed_batch_sizes: 32
        pad_variable_length_inputs: true
    """
    # When it is parsed
    parameters = parse_batching_parameters(text)
    # Then the given values are used and the missing one has TF Serving's default
    assert parameters == BatchingParameters(32, 1000, 10, 2)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("max_batch_size: 32", 'Expected "{"'),
        ("bogus { value: 3 }", 'no field named "bogus"'),
        ("max_batch_size { value: 0 }", "max_batch_size must be positive"),
        ("num_batch_threads { value: -1 }", "num_batch_threads must be positive"),
    ],
)
def test_a_bad_parameters_file_is_an_error_naming_the_problem(text: str, words: str) -> None:
    # Given a parameters file TF Serving would refuse
    # When it is parsed
    with pytest.raises(ValueError) as raised:
        parse_batching_parameters(text)
    # Then the error names the field or the syntax at fault
    assert words in str(raised.value)
    assert str(raised.value).startswith("Invalid batching parameters")
