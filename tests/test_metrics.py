"""The model server's Prometheus endpoint, and the counts and latencies read from it.

A real model server (in-process, real TensorFlow), real HTTP requests, a real scrape.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jupyter_modelserve.metrics import _quantile, parse_metrics, scrape_metrics
from jupyter_modelserve.modelserver import metrics as server_metrics
from jupyter_modelserve.modelserver.manager import ModelManager
from jupyter_modelserve.tfserving.model_config import VersionPolicy

from .modelserver_fixtures import TIMEOUT, config, serve, wait_idle
from .tf_models import build_half_plus_two

PAGE = "/monitoring/prometheus/metrics"


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """half_plus_two versions 1 and 2, both served."""
    base = tmp_path_factory.mktemp("metrics_models") / "half"
    build_half_plus_two(base / "1")
    build_half_plus_two(base / "2")
    manager = ModelManager()
    manager.apply_config([config("half", base, VersionPolicy(kind="all"))])
    wait_idle(manager, "half")
    with serve(manager) as url:
        yield url
    manager.close()


def predict(url: str, version: int, body: object) -> int:
    path = f"{url}/v1/models/half/versions/{version}:predict"
    return requests.post(path, json=body, timeout=TIMEOUT).status_code


def page(url: str) -> str:
    response = requests.get(url + PAGE, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


def timed(text: str, version: int) -> int:
    """How many predicts of `half` `version` the latency histogram holds."""
    labels = f'model_name="half",API="predict",entrypoint="REST",version="{version}"'
    found = re.search(
        rf"^:tensorflow:serving:request_latency_count\{{{labels}\}} (\d+)$", text, re.M
    )
    return int(found.group(1)) if found else 0


def test_counts_are_exact_per_version_and_status(model_server: str) -> None:
    # Given a scrape before, for a baseline (the module's server is shared)
    before = {v: parse_metrics(page(model_server), "half", v) for v in (1, 2)}
    timed_before = timed(page(model_server), 1)
    # When version 1 gets 7 good predicts and 2 bad ones, version 2 gets 3 good ones, and
    # status and metadata are read (as the backend's own polling does)
    assert [predict(model_server, 1, {"instances": [1.0, 2.0]}) for _ in range(7)] == [200] * 7
    assert [predict(model_server, 1, {"instances": "no"}) for _ in range(2)] == [400] * 2
    assert [predict(model_server, 2, {"instances": [3.0]}) for _ in range(3)] == [200] * 3
    for path in ("/v1/models/half", "/v1/models/half/versions/1/metadata"):
        assert requests.get(model_server + path, timeout=TIMEOUT).status_code == 200
    # Then each version's counts grew by exactly its own requests, errors counted apart
    after = {v: parse_metrics(page(model_server), "half", v) for v in (1, 2)}
    assert after[1].request_count - before[1].request_count == 9
    assert after[1].error_count - before[1].error_count == 2
    assert after[2].request_count - before[2].request_count == 3
    assert after[2].error_count == before[2].error_count
    assert after[1].latency_p50_ms is not None and after[1].latency_p50_ms > 0
    # And, as in TF Serving, only the successful ones are timed
    assert timed(page(model_server), 1) - timed_before == 7


def test_the_page_uses_tf_servings_names_labels_and_buckets(model_server: str) -> None:
    # Given a served model that answered a predict, a failed one and a status read
    assert predict(model_server, 2, {"instances": [1.0]}) == 200
    assert predict(model_server, 2, {"instances": "no"}) == 400
    requests.get(f"{model_server}/v1/models/half/versions/2", timeout=TIMEOUT)
    # When the page is scraped
    text = page(model_server)
    # Then it has TF Serving's metric names, types and labels (plus version)
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    assert re.search(
        r'^:tensorflow:serving:request_count\{model_name="half",status="OK",API="predict",'
        r'version="2"\} \d+$',
        text,
        re.M,
    )
    assert re.search(r'status="INVALID_ARGUMENT",API="predict",version="2"\} \d+$', text, re.M)
    labels = 'model_name="half",API="predict",entrypoint="REST",version="2"'
    limits = re.findall(
        rf"^:tensorflow:serving:request_latency_bucket\{{{labels},le=\"([^\"]+)\"\}} \d+$",
        text,
        re.M,
    )
    # TF Serving's buckets: Exponential(10, 1.8, 33) microseconds, then +Inf
    assert limits[:4] == ["10", "18", "32.4", "58.32"]
    assert len(limits) == 34 and limits[-1] == "+Inf"
    assert re.search(rf"^:tensorflow:serving:request_latency_count\{{{labels}\}} \d+$", text, re.M)


def test_quantiles_fall_within_the_bucket_that_holds_them(model_server: str) -> None:
    # Given some predicts, and the page's cumulative buckets for version 1
    for _ in range(20):
        assert predict(model_server, 1, {"instances": [1.0]}) == 200
    text = page(model_server)
    labels = 'model_name="half",API="predict",entrypoint="REST",version="1"'
    found = re.findall(
        rf"^:tensorflow:serving:request_latency_bucket\{{{labels},le=\"([^\"]+)\"\}} (\d+)$",
        text,
        re.M,
    )
    buckets = [(float(le), int(count)) for le, count in found]
    total = buckets[-1][1]
    read = parse_metrics(text, "half", 1)
    for q, value in ((0.5, read.latency_p50_ms), (0.99, read.latency_p99_ms)):
        # When the bucket holding the q-th observation is found
        index = next(i for i, (_, count) in enumerate(buckets) if count >= q * total)
        lower = buckets[index - 1][0] if index else 0.0
        upper = buckets[index][0]
        # Then the quantile lies within it (ms from µs)
        assert value is not None
        assert lower / 1000 <= value <= upper / 1000


def test_interpolation_within_a_bucket_is_linear() -> None:
    # Given 10 observations up to 10 µs and 10 more in (10, 18]
    buckets = [(10.0, 10.0), (18.0, 20.0), (float("inf"), 20.0)]
    # Then the median is the top of the first, and the 75th percentile the middle of the second
    assert _quantile(buckets, 0.5) == 10.0
    assert _quantile(buckets, 0.75) == 14.0
    # And a rank in the +Inf bucket answers the highest finite limit; none at all, None
    assert _quantile([(10.0, 0.0), (float("inf"), 4.0)], 0.5) == 10.0
    assert _quantile([(10.0, 0.0), (float("inf"), 0.0)], 0.5) is None


def test_a_model_without_requests_has_zero_counts_and_no_latency(model_server: str) -> None:
    # Given a scrape that has no series of model "other"
    read = parse_metrics(page(model_server), "other", 1)
    # Then it reads as no traffic at all
    assert (read.request_count, read.error_count) == (0, 0)
    assert read.latency_p50_ms is None and read.latency_p99_ms is None


def test_tf_servings_unversioned_series_count_for_the_model() -> None:
    # Given a page as TF Serving 2.14 writes it: no version label, no API on the count
    text = "\n".join(
        [
            "# TYPE :tensorflow:serving:request_count counter",
            ':tensorflow:serving:request_count{model_name="m",status="OK"} 5',
            ':tensorflow:serving:request_count{model_name="m",status="NOT_FOUND"} 1',
            ':tensorflow:serving:request_count{model_name="m\\"x",status="OK"} 9',
            "# TYPE :tensorflow:serving:request_latency histogram",
            ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",'
            'entrypoint="REST",le="10"} 5',
            ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",'
            'entrypoint="REST",le="+Inf"} 5',
        ]
    )
    # When it is read for m version 3 / Then the model's counts are the serve's
    read = parse_metrics(text, "m", 3)
    assert (read.request_count, read.error_count) == (6, 1)
    assert read.latency_p50_ms == 0.005
    # And a label value with an escaped quote is its own model
    assert parse_metrics(text, 'm"x', 3).request_count == 9


def test_a_model_server_that_is_down_has_no_metrics() -> None:
    # Given a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # When it is scraped / Then there are no metrics, and no exception
    assert scrape_metrics(f"http://127.0.0.1:{port}", "half", 1, 1.0) is None


def test_a_model_server_that_does_not_answer_in_time_has_no_metrics() -> None:
    # Given a socket that accepts connections but never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        # When it is scraped with a short timeout / Then None, soon
        import time

        started = time.monotonic()
        assert scrape_metrics(f"http://127.0.0.1:{port}", "half", 1, 0.3) is None
        assert time.monotonic() - started < 5.0


def test_series_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a registry that holds at most 3 series
    monkeypatch.setattr(server_metrics, "MAX_SERIES", 3)
    registry = server_metrics.Metrics()
    # When clients ask for 10 different (unknown) models
    for index in range(10):
        registry.record(f"m{index}", "", "predict", "NOT_FOUND", 5.0)
    # Then the rest are counted under one overflow series
    text = registry.render()
    assert text.count(":tensorflow:serving:request_count{") == 4
    assert 'model_name="__other__",status="NOT_FOUND",API="predict",version=""} 7' in text


def test_the_scrape_reads_the_live_server(model_server: str, tmp_path: Path) -> None:
    # Given a predict on version 2
    before = scrape_metrics(model_server, "half", 2, TIMEOUT)
    assert before is not None
    assert predict(model_server, 2, {"instances": [1.0]}) == 200
    # When scraped over HTTP / Then the count went up by one
    after = scrape_metrics(model_server, "half", 2, TIMEOUT)
    assert after is not None and after.request_count == before.request_count + 1
