"""The serving signature read without TensorFlow, and the example request built from it.

Checked against TensorFlow's own parse of the same saved_model.pb, against the built-in model
server's /metadata, and by really POSTing each example request to the model server.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_modelserve.modelserver.manager import ModelManager
from jupyter_modelserve.registry.savedmodel_pb import (
    serving_signature_defs_of,
    signature_defs_from_bytes,
)
from jupyter_modelserve.schemas import SignatureView, TensorSpecView
from jupyter_modelserve.signature import (
    example_request,
    signature_from_metadata,
    signature_of_folder,
    signatures_from_metadata,
    signatures_of_folder,
)

from .modelserver_fixtures import TIMEOUT, build_all, config, loaded, serve, wait_idle

MODELS = ("half_plus_two", "multi_io", "strings", "classify_v1", "keras_mlp")


def build_keras_mlp(export_dir: Path) -> Path:
    """A Keras MLP with two named inputs (floats [-1, 3] and ints [-1, 2, 2]), exported for
    TF Serving as a data scientist exports one."""
    import keras

    keras.utils.set_random_seed(7)
    numbers = keras.Input(shape=(3,), name="numbers")
    grid = keras.Input(shape=(2, 2), name="grid", dtype="int64")
    flat = keras.layers.Flatten()(keras.ops.cast(grid, "float32"))
    hidden = keras.layers.Dense(4, activation="relu")(keras.layers.Concatenate()([numbers, flat]))
    model = keras.Model({"numbers": numbers, "grid": grid}, keras.layers.Dense(1)(hidden))
    model.export(str(export_dir), verbose=False)
    return export_dir


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("signature_models")
    found = build_all(root)
    found["keras_mlp"] = build_keras_mlp(root / "keras_mlp" / "1").parent
    return found


@pytest.fixture(scope="module")
def model_server(bases: dict[str, Path]) -> Iterator[str]:
    with loaded(bases) as manager, serve(manager) as url:
        yield url


def tensorflow_signatures(pb: Path) -> dict[str, Any]:
    """What TensorFlow's own protobuf classes read from `pb`, in the reader's terms."""
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(pb.read_bytes())
    graph = next(g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags)

    def tensors(infos: Any) -> list[tuple[Any, ...]]:
        rows = []
        for key in sorted(infos):
            info = infos[key]
            shape = info.tensor_shape
            dims = None if shape.unknown_rank else tuple(d.size for d in shape.dim)
            dtype = types_pb2.DataType.Name(info.dtype).removeprefix("DT_").lower()
            rows.append((key, info.name, dtype, dims))
        return rows

    return {
        key: (sig.method_name, tensors(sig.inputs), tensors(sig.outputs))
        for key, sig in graph.signature_def.items()
    }


@pytest.mark.parametrize("model", MODELS)
def test_the_reader_reads_what_tensorflow_reads(bases: dict[str, Path], model: str) -> None:
    # Given a real SavedModel
    pb = bases[model] / "1" / "saved_model.pb"
    # When the pure-Python reader and TensorFlow both read its serving signatures
    ours = serving_signature_defs_of(pb)
    # Then they agree on every key, method, tensor name, dtype and shape (-1 included)
    theirs = tensorflow_signatures(pb)
    assert {
        key: (
            d.method_name,
            [(t.key, t.name, t.dtype, t.shape) for t in d.inputs],
            [(t.key, t.name, t.dtype, t.shape) for t in d.outputs],
        )
        for key, d in ours.items()
    } == theirs
    assert any(-1 in (t.shape or ()) for d in ours.values() for t in d.inputs)


def test_every_tensorflow_dtype_has_its_name() -> None:
    # Given TensorFlow's DataType enum
    from tensorflow.core.framework import types_pb2

    from jupyter_modelserve.registry.savedmodel_pb import _dtype_name

    # When each value is named by the reader / Then the name is TF's without DT_, lower case
    for value in types_pb2.DataType.DESCRIPTOR.values:
        assert _dtype_name(value.number) == value.name.removeprefix("DT_").lower()


def test_views_skip_tensorflows_own_signatures_and_put_serving_default_first(
    bases: dict[str, Path],
) -> None:
    # Given the multi-signature model (TF2 also writes __saved_model_init_op)
    assert "__saved_model_init_op" in serving_signature_defs_of(
        bases["multi_io"] / "1" / "saved_model.pb"
    )
    # When it is read as views
    views = signatures_of_folder(bases["multi_io"] / "1")
    # Then the "__" one is gone and serving_default leads
    assert [v.name for v in views] == [
        "serving_default",
        "parse_classify",
        "parse_regress",
        "scale",
    ]
    default = views[0]
    assert default.method == "tensorflow/serving/predict"
    assert [(t.name, t.dtype, t.shape) for t in default.inputs] == [
        ("a", "float", [-1, 2]),
        ("b", "int64", [-1]),
    ]
    assert [(t.name, t.dtype) for t in default.outputs] == [
        ("label_bytes", "string"),
        ("total", "float"),
    ]


@pytest.mark.parametrize("model", MODELS)
def test_the_metadata_route_and_the_file_give_the_same_signatures(
    bases: dict[str, Path], model_server: str, model: str
) -> None:
    # Given a model served by the built-in model server
    # When its /metadata is read as views
    answer = requests.get(f"{model_server}/v1/models/{model}/metadata", timeout=TIMEOUT).json()
    # Then they are the views read from the file
    assert signatures_from_metadata(answer) == signatures_of_folder(bases[model] / "1")
    assert signature_from_metadata(model_server, model, 1, TIMEOUT) == signature_of_folder(
        bases[model] / "1"
    )


def predict(url: str, model: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}/v1/models/{model}:predict", json=body, timeout=TIMEOUT)


@pytest.mark.parametrize("model", MODELS)
def test_every_signatures_example_request_predicts(
    bases: dict[str, Path], model_server: str, model: str
) -> None:
    # Given every public signature of a served model whose method is predict (but those that
    # parse serialized tf.Examples: no zeros make a valid Example, and "" is not one)
    views = signatures_of_folder(bases[model] / "1")
    predicting = [
        v
        for v in views
        if v.method == "tensorflow/serving/predict" and not v.name.startswith("parse_")
    ]
    assert predicting or model == "classify_v1"
    for view in predicting:
        # When its example request is POSTed to the model server
        body = example_request(view)
        assert body is not None
        response = predict(model_server, model, body)
        # Then it predicts
        assert response.status_code == 200, (view.name, body, response.text)


def test_example_requests_have_the_documented_form(bases: dict[str, Path]) -> None:
    # Given the single-input, string, multi-input and Keras models' default signatures
    def default(model: str) -> Any:
        view = signature_of_folder(bases[model] / "1")
        assert view is not None
        return example_request(view)

    # Then one input is a row of zeros; strings are ""; several inputs make a dict per row
    assert default("half_plus_two") == {"instances": [0.0]}
    assert default("strings") == {"instances": [""]}
    assert default("multi_io") == {"instances": [{"a": [0.0, 0.0], "b": 0}]}
    assert default("keras_mlp") == {
        "instances": [{"grid": [[0, 0], [0, 0]], "numbers": [0.0, 0.0, 0.0]}]
    }
    # And a signature other than serving_default is named in the body
    scale = next(v for v in signatures_of_folder(bases["multi_io"] / "1") if v.name == "scale")
    assert example_request(scale) == {"signature_name": "scale", "instances": [0.0]}
    # And a signature without inputs, or with a huge one, gets {"inputs": {}} or none at all
    bare = scale.model_copy(update={"name": "serving_default", "inputs": []})
    assert example_request(bare) == {"inputs": {}}
    huge = TensorSpecView(name="x", dtype="float", shape=[-1, 10**6, 10**6])
    assert example_request(bare.model_copy(update={"inputs": [huge]})) is None


def test_a_bool_input_and_a_scalar_input_get_a_body_that_predicts(tmp_path: Path) -> None:
    # Given a model with a bool input [-1, -1] and one with a scalar (rank 0) input
    import tensorflow as tf

    class Flags(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.bool, name="on")])
        def __call__(self, on: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"count": tf.reduce_sum(tf.cast(on, tf.int32), axis=1)}

    class Scalar(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([], tf.float32, name="x")])
        def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": x + 1.0}

    for name, module in (("flags", Flags()), ("scalar", Scalar())):
        tf.saved_model.save(module, str(tmp_path / name / "1"), signatures=module.__call__)
    manager = ModelManager()
    manager.apply_config([config(n, tmp_path / n) for n in ("flags", "scalar")])
    wait_idle(manager, "flags", "scalar")
    with serve(manager) as url:
        for name, expected in (
            ("flags", {"instances": [[False]]}),
            ("scalar", {"inputs": 0.0}),  # no batch dimension: the columnar form
        ):
            # When its example request is built and POSTed
            view = signature_of_folder(tmp_path / name / "1")
            assert view is not None
            body = example_request(view)
            # Then it is zeros of the right dtype, and it predicts
            assert body == expected
            response = predict(url, name, body)
            assert response.status_code == 200, response.text
    manager.close()


# -- hostile files -------------------------------------------------------------------------------


def reads_or_refuses(data: bytes) -> None:
    """The reader answers in bounded time: signatures or a ValueError, nothing else."""
    started = time.monotonic()
    with contextlib.suppress(ValueError):
        signature_defs_from_bytes(data)
    assert time.monotonic() - started < 2.0


def test_truncated_files_are_refused(bases: dict[str, Path]) -> None:
    # Given a real saved_model.pb cut short at many places
    data = (bases["multi_io"] / "1" / "saved_model.pb").read_bytes()
    # When each is read / Then every cut inside the only meta graph is a ValueError
    for cut in range(1, len(data), max(1, len(data) // 200)):
        with pytest.raises(ValueError):
            signature_defs_from_bytes(data[:cut])


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def saved_model_with(signature_entry: bytes) -> bytes:
    meta_graph = field(1, field(4, b"serve")) + field(5, signature_entry)
    return field(2, meta_graph)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "no meta graph"),
        (varint(2 << 3 | 2) + b"\xff" * 11, "malformed varint"),
        (varint(2 << 3 | 2) + varint(2**40), "truncated"),
        (varint(2 << 3 | 7), "wire type"),
        (
            saved_model_with(
                field(1, b"s") + field(2, field(1, field(1, b"x") + field(2, field(3, b"".join(
                    field(2, field(1, b"")) for _ in range(300)
                )))))
            ),
            "more than 254 dimensions",
        ),
        (saved_model_with(field(1, b"\xff\xfe")), "not UTF-8"),
    ],
)  # fmt: skip
def test_hostile_files_are_a_value_error_naming_the_problem(data: bytes, problem: str) -> None:
    # Given a hand-made hostile saved_model.pb / When it is read / Then a ValueError says why
    with pytest.raises(ValueError, match=problem):
        signature_defs_from_bytes(data)


def test_random_bytes_never_hang_or_crash(bases: dict[str, Path]) -> None:
    # Given a real file with bytes flipped at random (seeded), and pure noise
    import random

    rng = random.Random(10)
    data = bytearray((bases["half_plus_two"] / "1" / "saved_model.pb").read_bytes())
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        # When each is read / Then it is signatures or a ValueError, quickly
        reads_or_refuses(bytes(mutated))
        reads_or_refuses(rng.randbytes(rng.randint(1, 4096)))


def test_an_unreadable_artifact_has_no_signature(tmp_path: Path) -> None:
    # Given a folder whose saved_model.pb is garbage, and one without any
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "saved_model.pb").write_bytes(b"\x12\xff")
    # When their signature is asked for / Then it is None (logged), never an exception
    assert signature_of_folder(tmp_path / "bad") is None
    assert signature_of_folder(tmp_path / "missing") is None


# -- bounds on what an example request and a /metadata answer may cost ----------------------------


def test_an_example_of_zero_sized_dimensions_still_counts_its_lists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a real SavedModel whose input is [-1, 5000, 0]: no values, but 5000 lists to build,
    # and an example limit of 1000
    import tensorflow as tf

    class Empty(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 5000, 0], tf.float32, name="x")])
        def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": tf.reduce_sum(x, axis=[1, 2])}

    module = Empty()
    tf.saved_model.save(module, str(tmp_path / "1"), signatures=module.__call__)
    monkeypatch.setattr("jupyter_modelserve.signature.MAX_EXAMPLE_VALUES", 1000)
    view = signature_of_folder(tmp_path / "1")
    assert view is not None and view.inputs[0].shape == [-1, 5000, 0]
    # When its example request is built / Then there is none: the lists count, though empty
    assert example_request(view) is None
    # And [-1, 10, 0] (11 lists) is still built, as TF Serving takes it
    small = TensorSpecView(name="x", dtype="float", shape=[-1, 10, 0])
    assert example_request(view.model_copy(update={"inputs": [small]})) == {
        "instances": [[[] for _ in range(10)]]
    }


def test_an_example_of_a_rank_past_tensorflows_limit_is_left_out() -> None:
    # Given an input of rank 5000, every size 1 (one value: no size limit stops it)
    deep = TensorSpecView(name="x", dtype="float", shape=[1] * 5000)
    view = SignatureView(name="serving_default", method="m", inputs=[deep], outputs=[])
    # When its example is built / Then it is None, not a RecursionError
    assert example_request(view) is None


def metadata(dims: Any = None, inputs: int = 1, tensor: Any = None) -> dict[str, Any]:
    """A TF Serving /metadata answer with `inputs` tensors of `tensor` (default: shape `dims`)."""
    info = tensor if tensor is not None else {"dtype": "DT_FLOAT", "tensor_shape": {"dim": dims}}
    signature = {"inputs": {f"x{i}": info for i in range(inputs)}, "method_name": "m"}
    return {"metadata": {"signature_def": {"signature_def": {"serving_default": signature}}}}


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (metadata([{"size": "1"}] * 5000), "more than 254 dimensions"),
        (metadata([{"size": "1"}], inputs=10_001), "more than 10000 tensors"),
        (metadata([{"size": float("inf")}]), "dimension size is inf"),
        (metadata([{"size": float("nan")}]), "dimension size is nan"),
        (metadata([{"size": str(2**70)}]), "not an int64"),
        (metadata(tensor=["not", "a", "tensor"]), "not a TF Serving metadata answer"),
        (
            {
                "metadata": {
                    "signature_def": {"signature_def": {f"s{i}": {} for i in range(10_001)}}
                }
            },
            "more than 10000 signatures",
        ),
    ],
)
def test_hostile_metadata_answers_are_a_value_error_naming_the_problem(
    answer: Any, problem: str
) -> None:
    # Given a /metadata answer past a limit, or of the wrong form
    # When it is read / Then a ValueError says why (signature_from_metadata logs it: None)
    with pytest.raises(ValueError, match=problem):
        signatures_from_metadata(answer)


def test_a_hostile_metadata_server_gives_no_signature() -> None:
    # Given a real HTTP server whose /metadata has a rank-5000 shape (json writes -1 unquoted)
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps(metadata([{"size": "1"}] * 5000)).encode()

    class Hostile(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        # When the signature is read from it / Then there is none, and no exception
        assert signature_from_metadata(endpoint, "m", 1, TIMEOUT) is None
    finally:
        server.shutdown()
        server.server_close()
