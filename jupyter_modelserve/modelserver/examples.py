"""`:classify` and `:regress`: JSON examples -> serialized tf.train.Example, results -> JSON.

Which signatures qualify: TF Serving requires `method_name` to be `tensorflow/serving/classify`
(or `.../regress`). TF2's `tf.saved_model.save` can only write `tensorflow/serving/predict`, so a
predict signature is accepted too when its shape fits the API: exactly one DT_STRING input (the
serialized Examples) and outputs `classes` and/or `scores` (classify) or `outputs` (regress).
Anything else gets a 400 naming the signature and what it lacks. Only imported by the server.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ServingError, invalid
from .jsonbody import preview
from .signatures import CLASSIFY, PREDICT, REGRESS, SignatureInfo
from .tensors import decode_b64, is_b64, to_json, utf8

_INT64 = (-(2**63), 2**63 - 1)
_FLOAT32_MAX = float(np.finfo(np.float32).max)

_WANTED_OUTPUTS = {CLASSIFY: {"classes", "scores"}, REGRESS: {"outputs"}}
_API = {CLASSIFY: "classify", REGRESS: "regress"}


def check_signature(info: SignatureInfo, method: str) -> str:
    """Return the input key of a signature usable for `method` (CLASSIFY or REGRESS)."""
    api = _API[method]
    fits_outputs = bool(set(info.outputs) & _WANTED_OUTPUTS[method])
    string_inputs = [k for k, t in info.inputs.items() if t.dtype == "DT_STRING"]
    fits_inputs = len(info.inputs) == 1 and len(string_inputs) == 1
    if info.method_name in (method, PREDICT) and fits_inputs and fits_outputs:
        return string_inputs[0]
    wanted = " and/or ".join(f"'{o}'" for o in sorted(_WANTED_OUTPUTS[method]))
    raise ServingError(
        "FAILED_PRECONDITION",
        f"Signature '{info.name}' (method_name {info.method_name or 'unset'!r}) does not support "
        f"{api}: a {api} signature has method_name '{method}' (or '{PREDICT}'), one DT_STRING "
        f"input of serialized tf.Example and output {wanted}.",
    )


def _feature(name: str, value: Any) -> Any:
    from tensorflow.core.example import feature_pb2

    values = value if isinstance(value, list) else [value]
    if not values:
        raise invalid(f"Feature '{name}' has an empty list: its type cannot be told")
    feature = feature_pb2.Feature()
    if all(isinstance(v, str) or is_b64(v) for v in values):
        where = f"Feature '{name}'"
        data = [utf8(v, where) if isinstance(v, str) else decode_b64(v, name) for v in values]
        feature.bytes_list.value.extend(data)
    elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        if not all(_INT64[0] <= v <= _INT64[1] for v in values):
            raise invalid(f"Feature '{name}': a value is out of range for int64")
        feature.int64_list.value.extend(values)
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        feature.float_list.value.extend(_float32s(name, values))
    else:
        raise invalid(
            f"Feature '{name}' must be a number, a string, {{\"b64\": ...}} or a list of one of "
            f"these, got {preview(value)}"
        )
    return feature


def _float32s(name: str, values: list[int | float]) -> list[float]:
    """A float_list holds float32: a finite number past its range would become infinity."""
    try:
        floats = [float(v) for v in values]
    except OverflowError:  # an integer past float64
        raise invalid(f"Feature '{name}': a value is out of range for float") from None
    if any(abs(f) > _FLOAT32_MAX and f - f == 0 for f in floats):  # f - f == 0: finite
        raise invalid(f"Feature '{name}': a value is out of range for float")
    return floats


def _example_bytes(value: Any, where: str) -> bytes:
    from tensorflow.core.example import example_pb2

    if not isinstance(value, dict):
        raise invalid(f"{where} must be an object of features, got {preview(value)}")
    example = example_pb2.Example()
    for name, feature in value.items():
        utf8(name, "A feature name")  # a protobuf map key must be UTF-8: check before use
        example.features.feature[name].CopyFrom(_feature(name, feature))
    return bytes(example.SerializeToString())


def serialized_examples(body: dict[str, Any]) -> np.ndarray:
    """The request's examples as serialized protos, each merged with the optional context."""
    examples = body.get("examples")
    if not isinstance(examples, list) or not examples:
        raise invalid("'examples' must be a non-empty list of objects")
    context = b""
    if body.get("context") is not None:
        context = _example_bytes(body["context"], "'context'")
    array = np.empty(len(examples), dtype=object)
    for index, example in enumerate(examples):
        # Concatenated protos merge, and the later one wins per feature: this is how TF Serving
        # combines an ExampleListWithContext into one Example per row.
        array[index] = context + _example_bytes(example, f"Example {index}")
    return array


def classify_results(outputs: dict[str, np.ndarray], count: int) -> list[Any]:
    classes = outputs.get("classes")
    scores = outputs.get("scores")
    if scores is not None and scores.ndim == 1:
        scores = scores.reshape(-1, 1)
    if classes is not None and classes.ndim == 1:
        classes = classes.reshape(-1, 1)
    for name, array in (("classes", classes), ("scores", scores)):
        if array is not None and (array.ndim != 2 or array.shape[0] != count):
            raise invalid(f"Output '{name}' has shape {list(array.shape)}, expected [{count}, k]")
    labels = to_json(classes, "classes") if classes is not None else None
    values = to_json(scores, "scores") if scores is not None else None
    width = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
    return [
        [[labels[i][j] if labels else "", values[i][j] if values else 0.0] for j in range(width)]
        for i in range(count)
    ]


def regress_results(outputs: dict[str, np.ndarray], count: int) -> list[Any]:
    values = outputs["outputs"]
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.reshape(-1)
    if values.shape != (count,):
        raise invalid(f"Output 'outputs' has shape {list(values.shape)}, expected [{count}]")
    result: list[Any] = to_json(values, "outputs")
    return result
