"""TF Serving's gRPC messages <-> what the manager and servables speak (numpy arrays, statuses).

Pure conversions, each raising ServingError with TF Serving's code for bad input. Only imported
by the server process once TensorFlow is imported (the generated protos import it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    regression_pb2,
)

from .errors import ServingError, invalid
from .manager import VersionStatus
from .signatures import SERVE_TAG
from .tensors import MAX_RANK

SIGNATURE_DEF = "signature_def"  # the one metadata field TF Serving knows
# An element of a string tensor costs at least a pointer once built, whatever its bytes.
_MIN_ELEMENT_BYTES = 8


def model_key(spec: Any) -> tuple[str, int | None, str | None]:
    """(name, version, label) of a request's ModelSpec; the two last None when not given."""
    if not spec.name:
        raise invalid("Missing ModelSpec name in request")
    choice = spec.WhichOneof("version_choice")
    version = int(spec.version.value) if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return spec.name, version, label


def answered_spec(name: str, version: int, signature_name: str = "") -> Any:
    """The ModelSpec of a response: the version that answered, as TF Serving fills it."""
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
    spec.version.value = version
    return spec


def to_array(name: str, proto: Any, spec: Any, max_bytes: int) -> np.ndarray:
    """One input TensorProto as an array matching `spec` (a tf.TensorSpec).

    The element count is checked before anything is built: a TensorProto holding one value and
    a large shape is filled out to that shape, which a few bytes could make gigabytes.
    """
    import tensorflow as tf

    from .tensors import _shape_text

    want = tf.dtypes.as_dtype(spec.dtype)
    try:
        got = tf.dtypes.as_dtype(proto.dtype)
    except TypeError:
        raise invalid(f"Input '{name}' has an unknown dtype ({proto.dtype})") from None
    if got != want:
        raise invalid(
            f"Input '{name}' expects dtype {_dtype_name(want)}, got {_dtype_name(got)}: "
            "build it with tf.make_tensor_proto(value, dtype=...) of the signature's dtype"
        )
    dims = [d.size for d in proto.tensor_shape.dim]
    if proto.tensor_shape.unknown_rank or len(dims) > MAX_RANK or any(d < 0 for d in dims):
        raise invalid(f"Input '{name}' has no valid shape: a tensor sent needs every dimension")
    elements = math.prod(dims)
    size = want.size if want != tf.string else _MIN_ELEMENT_BYTES
    if elements * max(size, 1) > max_bytes:
        raise ServingError(
            "RESOURCE_EXHAUSTED",
            f"Input '{name}' of shape {dims} would take {elements * size} bytes, more than the "
            f"model server's request limit of {max_bytes} bytes (--rest_api_max_body_bytes)",
        )
    try:
        array = tf.make_ndarray(proto)
    except (TypeError, ValueError) as error:
        raise invalid(f"Input '{name}' is not a valid tensor: {error}") from None
    if not spec.shape.is_compatible_with(array.shape):
        raise invalid(
            f"Input '{name}' has shape {list(array.shape)}, which does not match the "
            f"signature's shape {_shape_text(spec.shape)}"
        )
    return array


def _dtype_name(dtype: Any) -> str:
    from tensorflow.core.framework import types_pb2

    return f"{types_pb2.DataType.Name(dtype.as_datatype_enum)} ({dtype.name})"


def output_names(outputs: Iterable[str], wanted: Iterable[str], signature: str) -> list[str]:
    """The outputs to return: all, or those of a request's `output_filter` (checked)."""
    available = sorted(outputs)
    chosen = list(dict.fromkeys(wanted))
    for alias in chosen:
        if alias not in available:
            raise invalid(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                f"the set {{{','.join(available)}}} of signature '{signature}'"
            )
    return chosen or available


def to_proto(array: np.ndarray) -> Any:
    import tensorflow as tf

    return tf.make_tensor_proto(array)


def serialized_examples(request_input: Any) -> np.ndarray:
    """A ClassificationRequest's or RegressionRequest's Input as serialized tf.Examples.

    Context features are merged into each example as TF Serving does: concatenated protos
    merge, the example's own feature winning over the context's of the same name.
    """
    kind = request_input.WhichOneof("kind")
    context = b""
    if kind == "example_list":
        examples = request_input.example_list.examples
    elif kind == "example_list_with_context":
        examples = request_input.example_list_with_context.examples
        context = request_input.example_list_with_context.context.SerializeToString()
    else:
        raise invalid("Input is empty: set input.example_list or input.example_list_with_context")
    if not examples:
        raise invalid("Input is empty: the example list has no examples")
    array = np.empty(len(examples), dtype=object)
    for index, example in enumerate(examples):
        array[index] = context + example.SerializeToString()
    return array


def classification_result(rows: list[Any]) -> Any:
    """`examples.classify_results` (per example, [label, score] pairs) as a proto."""
    result = classification_pb2.ClassificationResult()
    for row in rows:
        classes = result.classifications.add().classes
        for label, score in row:
            classes.add(label=str(label), score=float(score))
    return result


def regression_result(values: list[Any]) -> Any:
    result = regression_pb2.RegressionResult()
    for value in values:
        result.regressions.add(value=float(value))
    return result


def status_response(statuses: list[VersionStatus]) -> Any:
    from tensorflow.core.protobuf import error_codes_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    states = get_model_status_pb2.ModelVersionStatus.State
    codes = error_codes_pb2.Code
    known_states, known_codes = set(states.keys()), set(codes.keys())
    for status in statuses:
        entry = response.model_version_status.add(version=status.version)
        entry.state = states.Value(status.state) if status.state in known_states else 0
        code = codes.Value(status.error_code) if status.error_code in known_codes else 2
        entry.status.error_code = code
        entry.status.error_message = status.error_message
    return response


def check_metadata_fields(fields: Iterable[str]) -> None:
    fields = list(fields)
    if not fields:
        raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
    for field in fields:
        if field != SIGNATURE_DEF:
            raise invalid(f"Metadata field {field} is not supported")


def metadata_response(name: str, version: int, path: str) -> Any:
    """GetModelMetadataResponse with the SignatureDefMap of the `serve` graph at `path`."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.CopyFrom(answered_spec(name, version))
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in _signature_defs(path).items():
        signature_map.signature_def[key].CopyFrom(signature)
    response.metadata[SIGNATURE_DEF].Pack(signature_map)
    return response


def _signature_defs(path: str) -> Mapping[str, Any]:
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    pb = os.path.join(path, "saved_model.pb")
    try:
        if os.path.isfile(pb):
            with open(pb, "rb") as f:
                saved_model.ParseFromString(f.read())
        else:
            with open(os.path.join(path, "saved_model.pbtxt"), encoding="utf-8") as f:
                text_format.Parse(f.read(), saved_model)
    except Exception as error:  # the folder changed under a loaded version: our side, not theirs
        raise ServingError("DATA_LOSS", f"Cannot read SavedModel at {path}: {error}") from None
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    return {}
