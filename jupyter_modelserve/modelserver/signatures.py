"""Signature metadata read from a SavedModel's `saved_model.pb`.

`tf.saved_model.load` does not expose a signature's `method_name` nor the graph tensor names, and
TF Serving's `/metadata` answer shows both, so they are read from the SignatureDef protos. Only
imported by the server process (it uses TensorFlow's protobuf modules).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .errors import ServingError

PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
SERVE_TAG = "serve"


@dataclass(frozen=True)
class TensorInfo:
    dtype: str  # a DataType name such as "DT_FLOAT"
    shape: tuple[int, ...] | None  # -1 for an unknown dimension, None for an unknown rank


@dataclass(frozen=True)
class SignatureInfo:
    name: str
    method_name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    json: dict[str, Any]  # this SignatureDef as TF Serving prints it in /metadata


def _read_saved_model(path: str) -> Any:
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    pb, pbtxt = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    if not os.path.isfile(pb) and not os.path.isfile(pbtxt):
        raise ServingError(
            "NOT_FOUND",
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}",
        )
    saved_model = saved_model_pb2.SavedModel()
    try:
        if os.path.isfile(pb):
            with open(pb, "rb") as f:
                saved_model.ParseFromString(f.read())
        else:
            with open(pbtxt, encoding="utf-8") as f:
                text_format.Parse(f.read(), saved_model)
    except Exception as error:  # OSError, or protobuf's DecodeError/ParseError
        raise ServingError("DATA_LOSS", f"Cannot read SavedModel at {path}: {error}") from None
    return saved_model


def _tensor_json(info: Any) -> dict[str, Any]:
    from google.protobuf import json_format
    from tensorflow.core.framework import types_pb2

    shape = info.tensor_shape
    result: dict[str, Any] = {
        "dtype": types_pb2.DataType.Name(info.dtype),
        "tensor_shape": {
            "dim": [{"size": str(d.size), "name": d.name} for d in shape.dim],
            "unknown_rank": shape.unknown_rank,
        },
    }
    encoding = info.WhichOneof("encoding")
    if encoding == "name" or encoding is None:
        result["name"] = info.name
    else:  # sparse and composite tensors: show the encoding as protobuf's JSON does
        result[encoding] = json_format.MessageToDict(
            getattr(info, encoding), preserving_proto_field_name=True
        )
    return result


def _tensor_info(info: Any) -> TensorInfo:
    from tensorflow.core.framework import types_pb2

    shape = info.tensor_shape
    dims = None if shape.unknown_rank else tuple(int(d.size) for d in shape.dim)
    return TensorInfo(types_pb2.DataType.Name(info.dtype), dims)


def read_signatures(path: str) -> dict[str, SignatureInfo]:
    """All SignatureDefs of the `serve` meta graph at `path`, keyed by signature name."""
    saved_model = _read_saved_model(path)
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            break
    else:
        raise ServingError(
            "NOT_FOUND",
            "Could not find meta graph def matching supplied tags: { serve }. "
            f"SavedModel at {path} has no meta graph tagged 'serve'.",
        )
    result: dict[str, SignatureInfo] = {}
    for key in sorted(meta_graph.signature_def):
        sig = meta_graph.signature_def[key]
        inputs = {k: sig.inputs[k] for k in sorted(sig.inputs)}
        outputs = {k: sig.outputs[k] for k in sorted(sig.outputs)}
        result[key] = SignatureInfo(
            name=key,
            method_name=sig.method_name,
            inputs={k: _tensor_info(v) for k, v in inputs.items()},
            outputs={k: _tensor_info(v) for k, v in outputs.items()},
            json={
                "inputs": {k: _tensor_json(v) for k, v in inputs.items()},
                "outputs": {k: _tensor_json(v) for k, v in outputs.items()},
                "method_name": sig.method_name,
            },
        )
    return result
