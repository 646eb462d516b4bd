"""JSON values <-> numpy arrays for `:predict`, following TF Serving's REST encoding.

Inputs are checked against the signature's TensorSpecs here so a client gets a 400 naming the
input rather than a TensorFlow stack trace. Only imported by the server process.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import invalid
from .jsonbody import NumpyJson, preview

# numpy arrays have at most 64 dimensions; a deeper list is no tensor this server can build.
MAX_RANK = 64


def is_b64(value: Any) -> bool:
    """`{"b64": "..."}` is a binary value, not an object of named inputs."""
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


def decode_b64(value: Any, name: str) -> bytes:
    text = value["b64"]
    if not isinstance(text, str):
        raise invalid(f"Input '{name}': the value of a 'b64' key must be a string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"Input '{name}': '{text[:40]}' is not valid base64") from None


def utf8(text: str, where: str) -> bytes:
    """A JSON string as UTF-8; a lone surrogate ("\\ud800" in JSON) has no UTF-8 form.

    `where` starts the error message, e.g. "Input 'x'".
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(
            f"{where}: the string {preview(text)} is not valid Unicode (it holds a lone "
            'surrogate); send bytes as {"b64": ...}'
        ) from None


def _nested_shape(value: Any) -> list[int]:
    """The shape implied by the first element at each depth of nested lists."""
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _string_leaves(value: Any, name: str, shape: list[int], depth: int, out: list[bytes]) -> None:
    """Flatten nested lists of strings into `out`, checking that the nesting is rectangular."""
    if depth < len(shape):
        if not isinstance(value, list) or len(value) != shape[depth]:
            raise invalid(f"Input '{name}': nested lists have different lengths or depths")
        for item in value:
            _string_leaves(item, name, shape, depth + 1, out)
    elif isinstance(value, str):
        out.append(utf8(value, f"Input '{name}'"))
    elif is_b64(value):
        out.append(decode_b64(value, name))
    elif isinstance(value, list):
        raise invalid(f"Input '{name}': nested lists have different lengths or depths")
    else:
        raise invalid(f"Input '{name}' expects strings (or {{\"b64\": ...}}), got {preview(value)}")


def _string_array(value: Any, name: str) -> np.ndarray:
    shape = _nested_shape(value)
    if len(shape) > MAX_RANK:
        raise invalid(f"Input '{name}': lists nest {len(shape)} deep, more than {MAX_RANK}")
    leaves: list[bytes] = []
    _string_leaves(value, name, shape, 0, leaves)
    array = np.empty(len(leaves), dtype=object)
    array[:] = leaves
    return array.reshape(shape)


def _out_of_range(name: str, want: str) -> Exception:
    return invalid(f"Input '{name}': a value is out of range for {want}")


def _numeric_array(value: Any, name: str, dtype: Any) -> np.ndarray:
    want = dtype.name  # a tf.DType
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError) as error:
        raise invalid(f"Input '{name}': values do not form a {want} tensor ({error})") from None
    if array.dtype == object and array.size and _all_numbers(array):
        # Integers past uint64 stay Python ints in an object array.
        if not (dtype.is_floating or dtype.is_complex):
            raise _out_of_range(name, want)
        try:
            array = array.astype(np.float64)
        except OverflowError:  # past float64 too
            raise _out_of_range(name, want) from None
    kind = array.dtype.kind
    if array.size == 0:
        pass  # [] has no element type to check
    elif kind == "O" or kind in "USV":
        raise invalid(
            f"Input '{name}' expects {want} numbers; got non-numeric values or lists of "
            "different lengths"
        )
    elif dtype.is_bool and kind != "b":
        raise invalid(f"Input '{name}' expects booleans (dtype {want}), got {array.dtype}")
    elif dtype.is_integer and kind not in "iu":
        raise invalid(f"Input '{name}' expects integers (dtype {want}), got {array.dtype} values")
    elif (dtype.is_floating or dtype.is_complex) and kind not in "iuf":
        raise invalid(f"Input '{name}' expects numbers (dtype {want}), got {array.dtype}")
    if dtype.is_integer and array.size:
        info = np.iinfo(dtype.as_numpy_dtype)
        if array.min() < info.min or array.max() > info.max:
            raise _out_of_range(name, want)
    with np.errstate(over="ignore"):
        converted = array.astype(dtype.as_numpy_dtype)
    if dtype.is_floating and array.size and _overflowed(array, converted):
        raise _out_of_range(name, want)
    return converted


def _overflowed(array: np.ndarray, converted: np.ndarray) -> bool:
    """A finite number became infinite (1e300 as float32): it does not fit, as TF Serving says
    ("without loss of precision"). NaN and Infinity themselves are accepted."""
    return bool(np.any(np.isinf(converted.astype(np.float64)) & np.isfinite(array)))


def _all_numbers(array: np.ndarray) -> bool:
    return all(type(item) in (int, float) for item in array.flat)


def _shape_text(shape: Any) -> str:
    if shape.rank is None:
        return "<unknown rank>"
    dims = shape.as_list()
    return "[" + ", ".join("-1" if d is None else str(d) for d in dims) + "]"


def to_array(value: Any, name: str, spec: Any) -> np.ndarray:
    """Convert one input's JSON value to an array matching `spec` (a tf.TensorSpec)."""
    import tensorflow as tf

    if spec.dtype == tf.string:
        array = _string_array(value, name)
    else:
        array = _numeric_array(value, name, spec.dtype)
    if not spec.shape.is_compatible_with(array.shape):
        got = "[" + ", ".join(str(d) for d in array.shape) + "]"
        raise invalid(
            f"Input '{name}' has shape {got}, which does not match the signature's shape "
            f"{_shape_text(spec.shape)}"
        )
    return array


def rows_to_columns(instances: Any, input_names: list[str]) -> dict[str, Any]:
    """Row form: a list of instances -> {input name: list over the batch}."""
    if not isinstance(instances, list) or not instances:
        raise invalid("'instances' must be a non-empty list")
    named = [isinstance(row, dict) and not is_b64(row) for row in instances]
    if all(named):
        keys = set(instances[0])
        for index, row in enumerate(instances):
            if set(row) != keys:
                raise invalid(
                    f"Instance {index} has keys {sorted(row)} but instance 0 has {sorted(keys)}: "
                    "every instance must name the same inputs"
                )
        return {key: [row[key] for row in instances] for key in instances[0]}
    if any(named):
        raise invalid("'instances' mixes objects of named inputs with plain values")
    if len(input_names) != 1:
        raise invalid(
            "The signature has several inputs (" + ", ".join(input_names) + "): each instance "
            "must be an object naming them"
        )
    return {input_names[0]: instances}


def columnar_inputs(inputs: Any, input_names: list[str]) -> dict[str, Any]:
    """Columnar form: one tensor, or {input name: tensor}."""
    if isinstance(inputs, dict) and not is_b64(inputs):
        return dict(inputs)
    if len(input_names) != 1:
        raise invalid(
            "The signature has several inputs (" + ", ".join(input_names) + "): 'inputs' must "
            "be an object naming them"
        )
    return {input_names[0]: inputs}


def check_input_names(given: Mapping[str, Any], specs: Mapping[str, Any], signature: str) -> None:
    unknown = sorted(set(given) - set(specs))
    missing = sorted(set(specs) - set(given))
    expected = ", ".join(sorted(specs)) or "none"
    if unknown:
        raise invalid(
            f"Input '{unknown[0]}' is not an input of signature '{signature}' (inputs: {expected})"
        )
    if missing:
        raise invalid(f"Signature '{signature}' needs input '{missing[0]}' (inputs: {expected})")


def to_json(array: np.ndarray, name: str) -> Any:
    """Convert one output tensor to JSON values (floats printed as their shortest repr)."""
    if array.dtype == object or array.dtype.kind == "S":
        if name.endswith("_bytes"):
            encode = np.frompyfunc(lambda b: {"b64": base64.b64encode(b).decode("ascii")}, 1, 1)
        else:
            encode = np.frompyfunc(lambda b: b.decode("utf-8", errors="replace"), 1, 1)
        result = encode(array)
        return result.tolist() if isinstance(result, np.ndarray) else result
    if array.dtype.kind == "c":
        raise invalid(f"Output '{name}' has complex dtype {array.dtype}, which JSON cannot carry")
    if (array.dtype.kind == "f" or array.dtype.name == "bfloat16") and array.dtype != np.float64:
        # float32 0.1 would print as 0.10000000149011612; TF Serving prints 0.1.
        return array.astype(np.float32).astype(str).astype(np.float64).tolist()
    return array.tolist()


# dtypes orjson writes straight from an array's memory, as TF Serving prints them.
_DIRECT_KINDS = frozenset("biu")
_DIRECT_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _direct(array: np.ndarray) -> bool:
    """True when orjson may write `array` itself: no Python value per element is needed."""
    if array.ndim == 0:
        return False  # orjson writes arrays, not 0-d scalars
    if array.dtype.kind in _DIRECT_KINDS:
        return array.dtype.itemsize <= 8
    # NaN and infinities must print as TF Serving prints them, which orjson does not.
    return array.dtype in _DIRECT_FLOATS and bool(np.isfinite(array).all())


def predict_response(outputs: Mapping[str, np.ndarray], row_form: bool) -> dict[str, Any]:
    """Build `{"predictions": ...}` (row form) or `{"outputs": ...}` (columnar form).

    When every output can be written by orjson from the array itself, the answer is a
    `NumpyJson` holding the arrays; otherwise plain JSON values.
    """
    names = sorted(outputs)
    if row_form:
        sizes = {n: (outputs[n].shape[0] if outputs[n].ndim else None) for n in names}
        if None in sizes.values() or len(set(sizes.values())) > 1:
            raise invalid(
                "Output tensors do not all have the same size of 0th dimension, so they cannot "
                f"be returned as rows ({sizes}); use the columnar 'inputs' form"
            )
    if (len(names) == 1 or not row_form) and all(_direct(outputs[n]) for n in names):
        arrays = {n: np.ascontiguousarray(outputs[n]) for n in names}
        key = "predictions" if row_form else "outputs"
        return NumpyJson({key: arrays[names[0]] if len(names) == 1 else arrays})
    return _plain_response(outputs, names, row_form)


def _plain_response(
    outputs: Mapping[str, np.ndarray], names: list[str], row_form: bool
) -> dict[str, Any]:
    if not row_form:
        if len(names) == 1:
            return {"outputs": to_json(outputs[names[0]], names[0])}
        return {"outputs": {n: to_json(outputs[n], n) for n in names}}
    if len(names) == 1:
        return {"predictions": to_json(outputs[names[0]], names[0])}
    columns = {n: to_json(outputs[n], n) for n in names}
    count = outputs[names[0]].shape[0]
    return {"predictions": [{n: columns[n][i] for n in names} for i in range(count)]}
