"""Model artifacts on disk: checking a SavedModel and placing it in TF Serving's layout.

A SavedModel is checked by reading `saved_model.pb` with a tiny protobuf wire reader instead of
TensorFlow, so the Jupyter server never pays TensorFlow's import time or memory for a registration.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

SERVING_SIGNATURE = "serving_default"
SERVING_TAG = "serve"


@dataclass(frozen=True)
class SavedModelInfo:
    path: Path
    signatures: tuple[str, ...]


def inspect_saved_model(path: str | Path) -> SavedModelInfo:
    """Check that `path` is a servable SavedModel folder; InvalidInput names what is wrong."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InvalidInput(f"source: {str(folder)!r} is not a folder")
    pb = folder / "saved_model.pb"
    if not pb.is_file():
        raise InvalidInput(
            f"source: {str(folder)!r} is not a SavedModel folder: it has no saved_model.pb"
        )
    try:
        signatures = _serving_signatures(pb.read_bytes())
    except (ValueError, IndexError) as exc:
        raise InvalidInput(f"source: {str(pb)!r} is not a readable SavedModel: {exc}") from None
    if SERVING_SIGNATURE not in signatures:
        found = ", ".join(sorted(signatures)) or "none"
        raise InvalidInput(
            f"source: the SavedModel at {str(folder)!r} has no {SERVING_SIGNATURE!r} signature "
            f"(signatures found: {found}); export it with "
            "signatures={'serving_default': ...}"
        )
    return SavedModelInfo(path=folder, signatures=tuple(sorted(signatures)))


def stage_saved_model(source: Path, staging_root: Path) -> Path:
    """Copy a checked SavedModel into a fresh staging folder and return that folder."""
    staging = staging_root / f"{uuid.uuid4().hex}"
    staging_root.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(source, staging)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidInput(f"source: could not copy {str(source)!r}: {exc}") from None
    return staging


def export_keras_model(model: Any, staging_root: Path) -> Path:
    """Export an in-memory Keras model as a SavedModel with a `serving_default` signature."""
    staging = staging_root / f"{uuid.uuid4().hex}"
    staging_root.mkdir(parents=True, exist_ok=True)
    try:
        if hasattr(model, "export"):  # Keras 3 writes an inference-only SavedModel
            model.export(str(staging), format="tf_saved_model", verbose=False)
        else:
            import tensorflow as tf

            tf.saved_model.save(model, str(staging))
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InvalidInput(f"source: could not export the Keras model: {exc}") from None
    return staging


def place_version(staging: Path, destination: Path) -> None:
    """Move a staged SavedModel to its version folder (`<base>/<version>`) in one rename."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():  # a leftover of a version whose row is gone
        shutil.rmtree(destination)
    staging.rename(destination)


def remove_version(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    base = folder.parent
    if base.is_dir() and not any(base.iterdir()):
        base.rmdir()


# -- protobuf wire reading ----------------------------------------------------------------------
# SavedModel.meta_graphs = 2; MetaGraphDef.meta_info_def = 1, .signature_def = 5 (map: key = 1);
# MetaInfoDef.tags = 4.


def _serving_signatures(data: bytes) -> set[str]:
    signatures: set[str] = set()
    graphs = [value for field, value in _fields(data) if field == 2]
    if not graphs:
        raise ValueError("it contains no meta graph")
    for graph in graphs:
        if not isinstance(graph, bytes):
            raise ValueError("its meta graph field has the wrong wire type")
        tags: set[str] = set()
        names: set[str] = set()
        for field, value in _fields(graph):
            if field == 1 and isinstance(value, bytes):
                tags |= {t.decode() for f, t in _fields(value) if f == 4 and isinstance(t, bytes)}
            elif field == 5 and isinstance(value, bytes):
                for key_field, key in _fields(value):
                    if key_field == 1 and isinstance(key, bytes):
                        names.add(key.decode())
        if SERVING_TAG in tags or not tags:
            signatures |= names
    return signatures


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
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")
