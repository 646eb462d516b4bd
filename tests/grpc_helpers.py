"""A TF Serving gRPC client as a user writes one, for the gRPC tests.

Only `tensorflow-serving-api`'s generated stubs and messages, and TensorFlow's tensor helpers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import pytest

GRPC_LINE = re.compile(r"Running gRPC ModelServer at 127\.0\.0\.1:(\d+) \.\.\.")
TIMEOUT = 30.0


@contextmanager
def stubs(address: str) -> Iterator[tuple[Any, Any]]:
    """(PredictionServiceStub, ModelServiceStub) on one channel to `address` (host:port)."""
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        yield (
            prediction_service_pb2_grpc.PredictionServiceStub(channel),
            model_service_pb2_grpc.ModelServiceStub(channel),
        )


def predict_request(name: str, inputs: dict[str, Any], **spec: Any) -> Any:
    """A PredictRequest; `inputs` values are arrays/lists or ready TensorProtos."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if "version" in spec:
        request.model_spec.version.value = spec.pop("version")
    for key, value in spec.items():
        setattr(request.model_spec, key, value)
    for key, value in inputs.items():
        proto = value if hasattr(value, "tensor_shape") else tf.make_tensor_proto(value)
        request.inputs[key].CopyFrom(proto)
    return request


def status_request(name: str, version: int | None = None) -> Any:
    from tensorflow_serving.apis import get_model_status_pb2

    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    return request


def rpc_error(call: Any, request: Any) -> grpc.RpcError:
    """The error `call(request)` fails with (failing the test if it succeeds)."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=TIMEOUT)
    return caught.value


def code_and_message(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    return error.code(), error.details() or ""  # type: ignore[attr-defined]
