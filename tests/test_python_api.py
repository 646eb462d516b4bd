"""The Python API as notebook code meets it: real registry, real model server, real TensorFlow."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jupyter_modelserve import errors

from .tf_models import build_multi_io


def test_a_version_reads_in_one_line_and_lists_as_a_table(
    local_api: Any, half_plus_two: Path
) -> None:
    # When a SavedModel folder is registered twice
    first = local_api.register(half_plus_two, "simple", description="half plus two")
    local_api.register(half_plus_two, "simple")

    # Then a version is a short line, not a dataclass repr full of datetimes
    assert repr(first) == f"Version('simple', 1, 'half plus two', source={first.source!r})"
    assert "datetime" not in repr(first) and "<table" in first._repr_html_()
    # And the model and its versions list as tables, text and HTML
    models = local_api.models()
    assert [m.name for m in models] == ["simple"]
    assert re.match(r"model\s+description\s+tags\nsimple", repr(models)), repr(models)
    versions = local_api.versions("simple")
    assert [v.version for v in versions] == [2, 1] or [v.version for v in versions] == [1, 2]
    assert repr(versions).splitlines()[0].split() == [
        "model",
        "version",
        "description",
        "registered",
        "source",
    ]
    assert versions._repr_html_().count("<tr>") == 3
    assert repr(local_api.serves()) == "(no serves)"


def test_serve_shows_its_signature_a_request_that_works_and_its_traffic(
    local_api: Any, half_plus_two: Path
) -> None:
    # Given a served version
    local_api.register(half_plus_two, "simple")
    served = local_api.serve("simple", 1)

    # Then its signature names the input and output with dtype and shape
    signature = served.signature
    assert signature is not None and signature.name == "serving_default"
    assert [(t.name, t.dtype, t.shape) for t in signature.inputs] == [("x", "float", [-1])]
    assert [(t.name, t.dtype, t.shape) for t in signature.outputs] == [("y", "float", [-1])]
    # And the curl line it shows predicts as it is, run by a shell
    command = served.curl()
    assert '{"instances": [0.0]}' in command
    answer = subprocess.run(
        ["sh", "-c", command + " -s"], capture_output=True, text=True, timeout=60
    )
    assert json.loads(answer.stdout) == {"predictions": [2.0]}

    # When it is called three more times
    for _ in range(3):
        assert served.predict(np.array([2.0], dtype="float32")) == [3.0]

    # Then its traffic counts the four requests, and its displays show them
    metrics = served.metrics
    assert metrics is not None and metrics.request_count == 4 and metrics.error_count == 0
    assert (
        metrics.latency_p50_ms is not None and 0 < metrics.latency_p50_ms <= metrics.latency_p99_ms
    )
    text = repr(served)
    assert "input x: float (?)" in text and "traffic: 4 requests, 0 errors, p50" in text, text
    assert "4 requests" in served._repr_html_() and "input x: float (?)" in served._repr_html_()


def test_a_dataframe_feeds_named_inputs_from_its_columns(local_api: Any, tmp_path: Path) -> None:
    import pandas as pd

    # Given a served model with two inputs: a float32 [-1, 2] and b int64 [-1]
    local_api.register(build_multi_io(tmp_path / "multi" / "1"), "multi")
    served = local_api.serve("multi", 1)

    # When a DataFrame with those columns is predicted
    frame = pd.DataFrame({"b": [1, 2], "a": [[1.0, 2.0], [3.0, 4.0]], "unused": ["x", "y"]})
    answer = served.predict(frame)

    # Then each column went to its input, rows batched (a "_bytes" output is base64, as in
    # TF Serving)
    assert answer["total"] == [4.0, 9.0]
    assert answer["label_bytes"] == [{"b64": "MQ=="}, {"b64": "Mg=="}]
    # And a DataFrame missing an input says which, and what the signature takes
    with pytest.raises(errors.InvalidInput, match=r"no column for input\(s\) 'b'"):
        served.predict(frame[["a"]])


def test_delete_and_unregister_finish_the_lifecycle(local_api: Any, half_plus_two: Path) -> None:
    # Given two served versions
    local_api.register(half_plus_two, "simple")
    local_api.register(half_plus_two, "simple")
    first, second = local_api.serve("simple", 1), local_api.serve("simple", 2)
    # (each with the address a TF Serving gRPC client dials)
    assert first.grpc_url and first.grpc_url.startswith("127.0.0.1:")
    assert first.grpc_url == second.grpc_url  # one model server serves both

    # When one is deleted through its Serve and the other through the API
    first.delete()
    local_api.delete("simple", 2)

    # Then the Serve says so, and nothing is served
    assert first.state == "DELETED" and first.url is None and first.grpc_url is None
    assert local_api.serves() == []
    with pytest.raises(local_api.NotFound):
        second.refresh()

    # When a version is unregistered, it is gone from the registry and its copy from disk
    source = Path(local_api.versions("simple")[0].source)
    local_api.unregister("simple", 2)
    assert [v.version for v in local_api.versions("simple")] == [1]
    assert not source.exists() or source.name != "2"
    # And a served version cannot be unregistered: Conflict says why
    local_api.serve("simple", 1)
    with pytest.raises(local_api.Conflict):
        local_api.unregister("simple", 1)


def test_the_error_types_are_the_apis_own() -> None:
    from jupyter_modelserve import api

    for name in (
        "ModelServeError",
        "InvalidInput",
        "NotFound",
        "Conflict",
        "BackendUnavailable",
        "ServeFailed",
    ):
        assert getattr(api, name) is getattr(errors, name)


def test_data_json_cannot_carry_is_refused_before_it_is_sent(
    local_api: Any, half_plus_two: Path
) -> None:
    import pandas as pd

    # Given a served model
    local_api.register(half_plus_two, "simple")
    served = local_api.serve("simple", 1)

    # When the data holds NaN, or values of no JSON type, it is the caller's to fix
    with pytest.raises(errors.InvalidInput, match="NaN or infinity cannot be sent as JSON"):
        served.predict(np.array([1.0, np.nan]))
    with pytest.raises(errors.InvalidInput, match="datetime is not JSON serializable; convert"):
        served.predict(pd.DataFrame({"x": [pd.Timestamp("2026-01-01")]}))
    # And nothing reached the model server: its traffic is still nil
    assert served.metrics.request_count == 0


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0, 3601.0, "10"])
def test_a_wait_is_bounded(local_api: Any, half_plus_two: Path, timeout: Any) -> None:
    local_api.register(half_plus_two, "simple")
    with pytest.raises(errors.InvalidInput, match=r"^timeout: must be"):
        local_api.serve("simple", 1, timeout=timeout)
    assert local_api.serves() == []  # refused before anything started
