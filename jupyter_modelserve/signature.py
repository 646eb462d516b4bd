"""A model's serving signature, and a predict request that fits it.

Read from the registered artifact's saved_model.pb (`registry.savedmodel_pb`, no TensorFlow), or,
for an artifact only the model server can read (s3://, gs://), from TF Serving's `/metadata`.
Signatures whose key starts with "__" (`__saved_model_init_op`) are TensorFlow's own, not an API,
and are left out; `serving_default`, what a predict without `signature_name` runs, comes first.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .registry.savedmodel_pb import (
    MAX_RANK,
    MAX_TENSORS,
    SignatureDef,
    TensorInfo,
    serving_signature_defs_of,
)
from .schemas import SignatureView, TensorSpecView
from .upstream import get_bounded

log = logging.getLogger(__name__)

DEFAULT_SIGNATURE = "serving_default"
MAX_METADATA_BYTES = 4 * 1024**2  # a /metadata answer is kilobytes; larger is not one
# An example larger than this many values and lists is left out (None): it would be megabytes of
# zeros in every GET and repr. A 224x224 RGB image (150,528 values) still gets one.
MAX_EXAMPLE_VALUES = 1_000_000
_INT64 = 2**63
_ZERO: dict[str, Any] = {"string": "", "bool": False}


def ordered(views: Iterable[SignatureView]) -> list[SignatureView]:
    """Public signatures only, `serving_default` first, the rest by key."""
    public = [v for v in views if not v.name.startswith("__")]
    return sorted(public, key=lambda v: (v.name != DEFAULT_SIGNATURE, v.name))


def _tensor_view(info: TensorInfo) -> TensorSpecView:
    shape = list(info.shape) if info.shape is not None else None
    return TensorSpecView(name=info.key, dtype=info.dtype, shape=shape)


def view_of(definition: SignatureDef) -> SignatureView:
    return SignatureView(
        name=definition.key,
        method=definition.method_name,
        inputs=[_tensor_view(t) for t in definition.inputs],
        outputs=[_tensor_view(t) for t in definition.outputs],
    )


def signatures_of_folder(folder: Path) -> list[SignatureView]:
    """The public serving signatures of the SavedModel in `folder`.

    OSError if saved_model.pb cannot be read, ValueError if it is not a well-formed SavedModel.
    """
    found = serving_signature_defs_of(folder / "saved_model.pb")
    return ordered(view_of(d) for d in found.values())


def signature_of_folder(folder: Path) -> SignatureView | None:
    """The signature a predict runs by default (or the first public one); None if unreadable."""
    try:
        views = signatures_of_folder(folder)
    except (OSError, ValueError) as error:
        # Checked at registration: a file that no longer reads is worth a log line, not a 500.
        log.warning("Cannot read the signatures of %s: %s", folder, error)
        return None
    return views[0] if views else None


# -- TF Serving's /metadata ----------------------------------------------------------------------


def signatures_from_metadata(answer: Any) -> list[SignatureView]:
    """The public signatures of a TF Serving `/metadata` answer (its protobuf JSON form).

    ValueError if `answer` does not have that form, or passes the limits the saved_model.pb
    reader keeps (MAX_RANK dimensions a shape, MAX_TENSORS tensors and signatures in all): the
    answer comes from another process, and what it holds ends up in every GET of the serve.
    """
    try:
        defs = answer["metadata"]["signature_def"]["signature_def"]
        budget = [MAX_TENSORS - len(defs)]
        if budget[0] < 0:
            raise ValueError(f"more than {MAX_TENSORS} signatures")
        views = [_metadata_signature(key, value, budget) for key, value in defs.items()]
    except (KeyError, TypeError, AttributeError, ValidationError, OverflowError) as error:
        raise ValueError(f"not a TF Serving metadata answer ({error!r})") from None
    return ordered(views)


def _metadata_signature(key: str, value: dict[str, Any], budget: list[int]) -> SignatureView:
    def tensors(part: str) -> list[TensorSpecView]:
        found = value.get(part) or {}
        budget[0] -= len(found)
        if budget[0] < 0:
            raise ValueError(f"its signatures have more than {MAX_TENSORS} tensors")
        return [_metadata_tensor(name, found[name]) for name in sorted(found)]

    return SignatureView(
        name=key,
        method=value.get("method_name", ""),
        inputs=tensors("inputs"),
        outputs=tensors("outputs"),
    )


def _metadata_tensor(name: str, info: dict[str, Any]) -> TensorSpecView:
    dtype = str(info.get("dtype", "DT_INVALID")).removeprefix("DT_").lower()
    shape_json = info.get("tensor_shape") or {}
    shape: list[int] | None = None
    if not shape_json.get("unknown_rank", False):
        dims = shape_json.get("dim", [])
        # Checked before the walk: the example request recurses once per dimension, and
        # TensorFlow itself refuses a rank above MAX_RANK.
        if len(dims) > MAX_RANK:
            raise ValueError(f"a tensor shape has more than {MAX_RANK} dimensions")
        # protobuf's JSON writes int64 as strings, and leaves out a size of 0 and an empty list
        shape = [_dim_size(dim.get("size", 0)) for dim in dims]
    return TensorSpecView(name=name, dtype=dtype, shape=shape)


def _dim_size(value: Any) -> int:
    if not isinstance(value, (int, str)):  # a float (1e300, Infinity) is no int64
        raise ValueError(f"a dimension size is {value!r}")
    size = int(value)
    if not -_INT64 <= size < _INT64:
        raise ValueError(f"a dimension size {size} is not an int64")
    return size


def signature_from_metadata(
    endpoint: str, name: str, version: int, timeout: float
) -> SignatureView | None:
    """The default signature that the model server at `endpoint` reports; None if it cannot."""
    quoted = urllib.parse.quote(name, safe="")
    url = f"{endpoint}/v1/models/{quoted}/versions/{version}/metadata"
    body = get_bounded(url, timeout, MAX_METADATA_BYTES)
    if body is None:
        return None
    try:
        views = signatures_from_metadata(json.loads(body))
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        log.warning("The metadata of %s version %s does not read: %s", name, version, error)
        return None
    return views[0] if views else None


# -- an example request --------------------------------------------------------------------------


def _zero(dtype: str) -> Any:
    if dtype in _ZERO:
        return _ZERO[dtype]
    return 0.0 if "float" in dtype or dtype in ("double", "half") else 0


def _zeros(shape: list[int], zero: Any) -> Any:
    """A nested list of `zero` of `shape` (each a fresh list: the caller may change it)."""
    if not shape:
        return zero
    return [_zeros(shape[1:], zero) for _ in range(shape[0])]


def _cost(shape: list[int], limit: int) -> int:
    """The values and lists `_zeros(shape)` builds, counting a size of 0 as 1; > limit if more.

    A 0 must count: [100000, 0] holds no values but is still 100,000 lists to build.
    """
    cost, lists = 1, 1  # the value (or the outer list), and the lists at the current level
    for size in shape:
        lists *= max(size, 1)
        cost += lists
        if cost > limit:  # stop early: a product over 254 int64 dims is a needless bignum
            return limit + 1
    return cost


def example_request(signature: SignatureView) -> dict[str, Any] | None:
    """A TF Serving predict body of zeros ("" for strings, false for bools) that fits.

    The row form, `{"instances": [...]}`, with one row (a value; a dict by input name when there
    are several inputs) and any size (-1) after the batch dimension taken as 1. When the inputs
    have no batch dimension in common (a scalar input, or fixed leading sizes that differ), the
    columnar form `{"inputs": ...}` of whole tensors instead. A signature other than
    `serving_default` is named in the body. None when the zeros would be more than
    MAX_EXAMPLE_VALUES values and lists, or a shape has more than MAX_RANK dimensions.
    """
    inputs = signature.inputs
    if any(t.shape is not None and len(t.shape) > MAX_RANK for t in inputs):
        return None  # no TensorFlow model has one; building it would recurse that deep
    # An unknown rank takes anything: a batch of one scalar.
    shapes = {
        t.name: [1 if d < 0 else d for d in (t.shape if t.shape is not None else [-1])]
        for t in inputs
    }
    leading = {t.shape[0] for t in inputs if t.shape}
    cost = 0
    for shape in shapes.values():
        cost += _cost(shape, MAX_EXAMPLE_VALUES)
        if cost > MAX_EXAMPLE_VALUES:
            return None
    body: dict[str, Any]
    by_rows = all(shapes[t.name] for t in inputs) and (len(leading - {-1}) <= 1)
    if by_rows and inputs:
        rows = max(leading - {-1}, default=1)
        values = [
            {t.name: _zeros(shapes[t.name][1:], _zero(t.dtype)) for t in inputs}
            for _ in range(rows)
        ]
        body = {"instances": [v[inputs[0].name] for v in values] if len(inputs) == 1 else values}
    else:  # also a signature without inputs: {"inputs": {}}
        columns = {t.name: _zeros(shapes[t.name], _zero(t.dtype)) for t in inputs}
        body = {"inputs": columns[inputs[0].name] if len(inputs) == 1 else columns}
    if signature.name != DEFAULT_SIGNATURE:
        body = {"signature_name": signature.name, **body}
    return body
