"""Reading the serving signatures out of `saved_model.pb` without TensorFlow.

A tiny protobuf wire reader: the Jupyter server never pays TensorFlow's import time or memory for
a registration. It streams the file and reads only the two small parts it needs (the meta graph's
tags and its signature map), seeking past the graph itself, so a saved_model.pb of gigabytes costs
a few kilobytes of memory. Every length is checked against its enclosing message and every loop is
bounded, so a hostile file gives a ValueError, never a hang or an IndexError.

Field numbers (tensorflow/core/protobuf): SavedModel.meta_graphs = 2; MetaGraphDef.meta_info_def
= 1, .signature_def = 5 (a map: entry key = 1, value = 2); MetaInfoDef.tags = 4. SignatureDef:
inputs = 1, outputs = 2 (maps of TensorInfo), method_name = 3. TensorInfo: name = 1, dtype = 2
(the DataType enum), tensor_shape = 3. TensorShapeProto: dim = 2 (Dim.size = 1, an int64),
unknown_rank = 3.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO

SERVING_TAG = "serve"
# The parts read into memory (tags, signature map) are small; a larger one is not a SavedModel.
MAX_FIELD_BYTES = 64 * 1024**2
# Fields per message: a SavedModel has a handful per level (a few hundred collections at most).
MAX_FIELDS = 100_000
# TensorFlow's own limit on a tensor's rank (TensorShape::MaxDimensions).
MAX_RANK = 254
# Inputs plus outputs over all signatures: real models have a few; this keeps a hostile map of
# tiny entries from becoming millions of Python objects.
MAX_TENSORS = 10_000

# tensorflow/core/framework/types.proto's DataType, lower case without "DT_" (TF Serving's
# /metadata prints the enum names); a reference type is the value plus 100 ("float_ref").
_DTYPES = (
    "invalid", "float", "double", "int32", "uint8", "int16", "int8", "string", "complex64",
    "int64", "bool", "qint8", "quint8", "qint32", "bfloat16", "qint16", "quint16", "uint16",
    "complex128", "half", "resource", "variant", "uint32", "uint64", "float8_e5m2",
    "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz", "int4", "uint4",
    "int2", "uint2", "float4_e2m1fn",
)  # fmt: skip
_REF = 100


@dataclass(frozen=True)
class TensorInfo:
    key: str  # the signature's name for it: what a predict request names
    name: str  # the graph tensor, e.g. "serving_default_x:0" ("" for sparse/composite ones)
    dtype: str  # e.g. "float", "int64", "string"; "dtype_<n>" for a value this reader lacks
    shape: tuple[int, ...] | None  # -1 for any size; None for an unknown rank


@dataclass(frozen=True)
class SignatureDef:
    key: str
    method_name: str
    inputs: tuple[TensorInfo, ...]  # sorted by key, as TF Serving lists them
    outputs: tuple[TensorInfo, ...]


def serving_signatures_of(path: Path) -> set[str]:
    """The signature names of the meta graphs tagged `serve` (or untagged) in `path`."""
    with open(path, "rb") as stream:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        return {_entry_key(entry) for entry in _signature_entries(stream, size)}


def _serving_signatures(data: bytes) -> set[str]:
    """As `serving_signatures_of`, for the bytes of a saved_model.pb already in memory."""
    return {_entry_key(entry) for entry in _signature_entries(io.BytesIO(data), len(data))}


def serving_signature_defs_of(path: Path) -> dict[str, SignatureDef]:
    """Every SignatureDef of the meta graphs tagged `serve` (or untagged) in `path`, by key.

    ValueError for a file that is not a well-formed SavedModel (or passes a bound).
    """
    with open(path, "rb") as stream:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        return _signature_defs(_signature_entries(stream, size))


def signature_defs_from_bytes(data: bytes) -> dict[str, SignatureDef]:
    """As `serving_signature_defs_of`, for the bytes of a saved_model.pb already in memory."""
    return _signature_defs(_signature_entries(io.BytesIO(data), len(data)))


def _signature_defs(entries: list[bytes]) -> dict[str, SignatureDef]:
    result: dict[str, SignatureDef] = {}
    budget = [MAX_TENSORS]
    for entry in entries:
        key, value = "", b""
        for field, part in _fields(entry):
            if field == 1 and isinstance(part, bytes):
                key = _text(part)
            elif field == 2 and isinstance(part, bytes):
                value = part
        result.setdefault(key, _signature_def(key, value, budget))  # the first graph's wins
    return result


def _signature_def(key: str, data: bytes, budget: list[int]) -> SignatureDef:
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    method = ""
    for field, part in _fields(data):
        if not isinstance(part, bytes):
            continue
        if field in (1, 2):
            budget[0] -= 1
            if budget[0] < 0:
                raise ValueError(f"its signatures have more than {MAX_TENSORS} tensors")
            (inputs if field == 1 else outputs).append(_tensor_entry(part))
        elif field == 3:
            method = _text(part)
    by_key = attrgetter("key")
    return SignatureDef(
        key, method, tuple(sorted(inputs, key=by_key)), tuple(sorted(outputs, key=by_key))
    )


def _tensor_entry(entry: bytes) -> TensorInfo:
    key, name, dtype, shape = "", "", 0, None
    for field, part in _fields(entry):
        if field == 1 and isinstance(part, bytes):
            key = _text(part)
        elif field == 2 and isinstance(part, bytes):
            for inner, value in _fields(part):
                if inner == 1 and isinstance(value, bytes):
                    name = _text(value)
                elif inner == 2 and isinstance(value, int):
                    dtype = value
                elif inner == 3 and isinstance(value, bytes):
                    shape = value
    dims = _shape(shape) if shape is not None else ()  # no shape at all: a scalar
    return TensorInfo(key, name, _dtype_name(dtype), dims)


def _shape(data: bytes) -> tuple[int, ...] | None:
    dims: list[int] = []
    unknown_rank = False
    for field, part in _fields(data):
        if field == 2 and isinstance(part, bytes):
            if len(dims) >= MAX_RANK:
                raise ValueError(f"a tensor shape has more than {MAX_RANK} dimensions")
            size = 0  # proto3: a size left out is 0
            for inner, value in _fields(part):
                if inner == 1 and isinstance(value, int):
                    size = value - 2**64 if value >= 2**63 else value  # int64 two's complement
            dims.append(size)
        elif field == 3 and isinstance(part, int):
            unknown_rank = bool(part)
    return None if unknown_rank else tuple(dims)


def _dtype_name(value: int) -> str:
    if 0 <= value < len(_DTYPES):
        return _DTYPES[value]
    if _REF < value < _REF + len(_DTYPES):
        return _DTYPES[value - _REF] + "_ref"
    return f"dtype_{value}"


def _text(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ValueError("a protobuf string is not UTF-8") from None


def _entry_key(entry: bytes) -> str:
    for field, part in _fields(entry):
        if field == 1 and isinstance(part, bytes):
            return part.decode()
    return ""


def _signature_entries(stream: BinaryIO, size: int) -> list[bytes]:
    """The signature map entries (key, SignatureDef) of the serving meta graphs, as bytes."""
    signatures: list[bytes] = []
    graphs = held = 0
    for field, wire_type, length in _stream_fields(stream, size):
        if field != 2:
            continue
        if wire_type != 2:
            raise ValueError("its meta graph field has the wrong wire type")
        graphs += 1
        start = stream.tell()
        tags: set[str] = set()
        entries: list[bytes] = []
        for inner, inner_type, inner_length in _stream_fields(stream, start + length):
            if inner in (1, 5) and inner_type == 2:
                part = _read_part(stream, inner_length)
                if inner == 1:
                    tags |= {
                        t.decode() for f, t in _fields(part) if f == 4 and isinstance(t, bytes)
                    }
                else:
                    held += len(part)
                    if held > MAX_FIELD_BYTES:
                        raise ValueError(f"its signatures take more than {MAX_FIELD_BYTES} bytes")
                    entries.append(part)  # one map entry per field
        if SERVING_TAG in tags or not tags:
            signatures += entries
    if not graphs:
        raise ValueError("it contains no meta graph")
    return signatures


def _read_part(stream: BinaryIO, length: int) -> bytes:
    if length > MAX_FIELD_BYTES:
        raise ValueError(f"a meta graph part is {length} bytes, more than {MAX_FIELD_BYTES}")
    data = stream.read(length)
    if len(data) != length:
        raise ValueError("truncated protobuf message")
    return data


def _stream_fields(stream: BinaryIO, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (field, wire type, length or value) of the message that ends at offset `end`.

    For a length-delimited field the stream stands at its payload when the caller gets it; the
    caller may read any of it, and the next step seeks past it whatever the caller did.
    """
    position = stream.tell()
    for _ in range(MAX_FIELDS):
        if position >= end:
            return
        key, position = _stream_varint(stream, position, end)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _stream_varint(stream, position, end)
            yield field, wire_type, value
            stream.seek(position)
            continue
        if wire_type == 1:
            length = 8
        elif wire_type == 2:
            length, position = _stream_varint(stream, position, end)
        elif wire_type == 5:
            length = 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type}")
        if position + length > end:
            raise ValueError("truncated protobuf message")
        if wire_type == 2:
            yield field, wire_type, length
        position += length
        stream.seek(position)
    raise ValueError(f"a message has more than {MAX_FIELDS} fields")


def _stream_varint(stream: BinaryIO, position: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= end:
            raise ValueError("truncated protobuf message")
        byte = stream.read(1)
        if not byte:
            raise ValueError("truncated protobuf message")
        position += 1
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


# -- in-memory reading, for the small parts read whole -------------------------------------------


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        field, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            yield field, value
        elif wire_type == 1:
            position += 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ValueError("truncated protobuf message")
            yield field, data[position : position + length]
            position += length
        elif wire_type == 5:
            position += 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type}")


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated protobuf message")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")
