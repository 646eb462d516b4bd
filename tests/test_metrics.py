"""The model server's Prometheus endpoint, and the counts and latencies read from it.

A real model server (in-process, real TensorFlow), real HTTP requests, a real scrape.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jupyter_modelserve.metrics import MAX_PAGE_BYTES, _quantile, parse_metrics, scrape_metrics
from jupyter_modelserve.modelserver import metrics as server_metrics
from jupyter_modelserve.modelserver.manager import ModelManager
from jupyter_modelserve.tfserving.model_config import VersionPolicy
from jupyter_modelserve.upstream import best_effort

from .modelserver_fixtures import TIMEOUT, config, serve, wait_idle
from .tf_models import build_half_plus_two

PAGE = "/monitoring/prometheus/metrics"
APIS = ("predict", "classify", "regress")
STATUSES = ("OK", "NOT_FOUND", "INVALID_ARGUMENT")


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


def test_label_values_and_page_size_are_bounded_in_the_worst_case() -> None:
    # Given a registry, and clients that ask for 3000 different models whose names are 255
    # four-byte characters, with 19-digit versions, each on every API, failing and succeeding;
    # and 3000 versions of a model that calls itself "__other__"
    registry = server_metrics.Metrics()
    recorded = 0
    for index in range(3000):
        name = f"{index:05d}" + "\U0010ffff" * 250
        for api in APIS:
            for status in STATUSES:
                registry.record(name, "9" * 19, api, status, 5.0)
                recorded += 1
        registry.record(server_metrics.OVERFLOW, str(index), "predict", "OK", 5.0)
        recorded += 1
    # When the page is rendered
    text = registry.render()
    # Then it stays well under what the scraper reads (half of it), every request still counted
    assert len(text.encode()) < MAX_PAGE_BYTES / 2
    counts = re.findall(r"^:tensorflow:serving:request_count\{.*\} (\d+)$", text, re.M)
    assert sum(int(c) for c in counts) == recorded
    # And the first models kept their own series, the rest went to "__other__"
    assert 'model_name="00000' in text
    assert 'model_name="__other__",status="OK",API="predict",version=""}' in text


def test_labels_longer_than_any_servables_are_counted_as_other() -> None:
    # Given an empty registry
    registry = server_metrics.Metrics()
    # When a name longer than a model name can be, and a version past int64, are requested
    registry.record("n" * 256, "1", "predict", "OK", 5.0)
    registry.record("m", "1" * 20, "predict", "OK", 5.0)
    registry.record("n" * 255, "1" * 19, "predict", "OK", 5.0)
    # Then those two are counted under "__other__", unrendered; the longest valid ones are not
    text = registry.render()
    assert "n" * 256 not in text and '"' + "1" * 20 + '"' not in text
    assert 'model_name="__other__",status="OK",API="predict",version=""} 2' in text
    assert f'model_name="{"n" * 255}",status="OK",API="predict",version="{"1" * 19}"}} 1' in text


@pytest.mark.parametrize(
    "bad",
    ["+Inf", "NaN", "-3", "2.5", "1e400", "1e30"],
)
def test_sample_values_that_are_no_count_are_skipped(bad: str) -> None:
    # Given a page whose good series are mixed with one broken value of each kind, and a bucket
    # whose bound is not a number
    count = ':tensorflow:serving:request_count{model_name="m",status='
    bucket = ':tensorflow:serving:request_latency_bucket{model_name="m",API="predict",le='
    text = "\n".join(
        [
            f'{count}"OK"}} 5',
            f'{count}"OK"}} {bad}',
            f'{count}"ABORTED"}} {bad}',
            f'{bucket}"10"}} 5',
            f'{bucket}"20"}} {bad}',
            f'{bucket}"x"}} 9',
            f'{bucket}"NaN"}} 9',
            f'{bucket}"+Inf"}} 5',
        ]
    )
    # When it is read / Then only the good samples count, and nothing raises
    read = parse_metrics(text, "m", 1)
    assert (read.request_count, read.error_count) == (5, 0)
    assert read.latency_p50_ms == 0.005 and read.latency_p99_ms == 0.0099


def test_a_model_server_with_a_broken_page_has_sane_metrics() -> None:
    # Given a real HTTP server whose metrics page has +Inf and NaN counts
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = (
        b':tensorflow:serving:request_count{model_name="half",status="OK",API="predict",'
        b'version="1"} +Inf\n'
        b':tensorflow:serving:request_count{model_name="half",status="OK",API="predict",'
        b'version="1"} NaN\n'
    )

    class Broken(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # When it is scraped / Then it reads as no traffic, not an exception
        read = scrape_metrics(f"http://127.0.0.1:{server.server_address[1]}", "half", 1, TIMEOUT)
        assert read is not None and (read.request_count, read.error_count) == (0, 0)
    finally:
        server.shutdown()
        server.server_close()


def test_a_failing_peek_is_none_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    # Given a read of another process's output that fails in a way nobody foresaw
    def broken() -> int:
        raise OverflowError("cannot convert float infinity to integer")

    # When it is peeked at three times
    with caplog.at_level(logging.DEBUG, logger="jupyter_modelserve.upstream"):
        results = [best_effort("the metrics of 'peeked' version 1", broken) for _ in range(3)]
    # Then each is None, with one warning (and its traceback) then debug lines only
    assert results == [None, None, None]
    levels = [r.levelno for r in caplog.records if "'peeked'" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    # And a read that works answers its value
    assert best_effort("the metrics of 'fine' version 1", lambda: 7) == 7
