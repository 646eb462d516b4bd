"""Reading the signature names out of `saved_model.pb` without TensorFlow.

A tiny protobuf wire reader: the Jupyter server never pays TensorFlow's import time or memory for
a registration. It streams the file and reads only the two small parts it needs (the meta graph's
tags and its signature map), seeking past the graph itself, so a saved_model.pb of gigabytes costs
a few kilobytes of memory. Every length is checked against its enclosing message and every loop is
bounded, so a hostile file gives a ValueError, never a hang or an IndexError.

Field numbers (tensorflow/core/protobuf): SavedModel.meta_graphs = 2; MetaGraphDef.meta_info_def
= 1, .signature_def = 5 (a map: entry key = 1); MetaInfoDef.tags = 4.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

SERVING_TAG = "serve"
# The parts read into memory (tags, signature map) are small; a larger one is not a SavedModel.
MAX_FIELD_BYTES = 64 * 1024**2
# Fields per message: a SavedModel has a handful per level (a few hundred collections at most).
MAX_FIELDS = 100_000


def serving_signatures_of(path: Path) -> set[str]:
    """The signature names of the meta graphs tagged `serve` (or untagged) in `path`."""
    with open(path, "rb") as stream:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        return _signatures_from_stream(stream, size)


def _serving_signatures(data: bytes) -> set[str]:
    """As `serving_signatures_of`, for the bytes of a saved_model.pb already in memory."""
    return _signatures_from_stream(io.BytesIO(data), len(data))


def _signatures_from_stream(stream: BinaryIO, size: int) -> set[str]:
    signatures: set[str] = set()
    graphs = 0
    for field, wire_type, length in _stream_fields(stream, size):
        if field != 2:
            continue
        if wire_type != 2:
            raise ValueError("its meta graph field has the wrong wire type")
        graphs += 1
        start = stream.tell()
        tags: set[str] = set()
        names: set[str] = set()
        for inner, inner_type, inner_length in _stream_fields(stream, start + length):
            if inner in (1, 5) and inner_type == 2:
                part = _read_part(stream, inner_length)
                if inner == 1:
                    tags |= {
                        t.decode() for f, t in _fields(part) if f == 4 and isinstance(t, bytes)
                    }
                else:
                    names |= {
                        k.decode() for f, k in _fields(part) if f == 1 and isinstance(k, bytes)
                    }
        if SERVING_TAG in tags or not tags:
            signatures |= names
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
