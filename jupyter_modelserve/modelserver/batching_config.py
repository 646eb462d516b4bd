"""TF Serving's `--batching_parameters_file`: its text format, read by protobuf's own parser.

The file is a `BatchingParameters` message (tensorflow_serving/servables/tensorflow/
session_bundle_config.proto) in protobuf text format, e.g.

    max_batch_size { value: 32 }
    batch_timeout_micros { value: 1000 }
    max_enqueued_batches { value: 100 }
    num_batch_threads { value: 4 }

The `tensorflow-serving-api` package does not ship that proto, so the message is declared here
with TF Serving's field names, numbers and wrapper types, and the file is parsed by
`google.protobuf.text_format` exactly as TF Serving parses it: an unknown field or a bad value
is an error naming the line. Fields that tune TF Serving's C++ batcher (thread pool name,
padding, allowed sizes, large batch splitting) are accepted and have no effect here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)

MAX_FILE_BYTES = 64 * 1024  # a parameters file is a few lines


@dataclass(frozen=True)
class BatchingParameters:
    """The knobs this server's batcher uses, with TF Serving's defaults."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 4


_FIELDS = [  # (name, number, wrapper type or None for a plain field, repeated)
    ("max_batch_size", 1, "Int64Value", False),
    ("batch_timeout_micros", 2, "Int64Value", False),
    ("max_enqueued_batches", 3, "Int64Value", False),
    ("num_batch_threads", 4, "Int64Value", False),
    ("thread_pool_name", 5, "StringValue", False),
    ("allowed_batch_sizes", 6, None, True),
    ("pad_variable_length_inputs", 7, None, False),
    ("enable_large_batch_splitting", 8, "BoolValue", False),
    ("max_execution_batch_size", 9, "Int64Value", False),
]


def _message_class() -> Any:
    file = descriptor_pb2.FileDescriptorProto(
        name="jupyter_modelserve/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = file.message_type.add(name="BatchingParameters")
    kinds = descriptor_pb2.FieldDescriptorProto
    for name, number, wrapper, repeated in _FIELDS:
        field = message.field.add(name=name, number=number)
        field.label = kinds.LABEL_REPEATED if repeated else kinds.LABEL_OPTIONAL
        if wrapper is not None:
            field.type = kinds.TYPE_MESSAGE
            field.type_name = f".google.protobuf.{wrapper}"
        else:
            field.type = kinds.TYPE_INT64 if repeated else kinds.TYPE_BOOL
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(
        descriptor_pb2.FileDescriptorProto.FromString(
            wrappers_pb2.DESCRIPTOR.serialized_pb
        ).SerializeToString()
    )
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


def parse_batching_parameters(text: str) -> BatchingParameters:
    """The parameters in `text`; ValueError naming the problem for a bad one."""
    proto = _message_class()()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as error:
        raise ValueError(f"Invalid batching parameters: {error}") from None
    defaults = BatchingParameters()
    values: dict[str, int] = {}
    for name in (
        "max_batch_size",
        "batch_timeout_micros",
        "max_enqueued_batches",
        "num_batch_threads",
    ):
        given = proto.HasField(name)
        values[name] = getattr(proto, name).value if given else getattr(defaults, name)
    if values["max_batch_size"] < 1:
        raise ValueError("Invalid batching parameters: max_batch_size must be positive")
    if values["num_batch_threads"] < 1:
        raise ValueError("Invalid batching parameters: num_batch_threads must be positive")
    if values["batch_timeout_micros"] < 0 or values["max_enqueued_batches"] < 1:
        raise ValueError(
            "Invalid batching parameters: batch_timeout_micros must not be negative and "
            "max_enqueued_batches must be positive"
        )
    return BatchingParameters(**values)


def read_batching_parameters(path: str) -> BatchingParameters:
    """The parameters in the file at `path` (empty path: TF Serving's defaults)."""
    if not path:
        return BatchingParameters()
    with open(path, "rb") as f:
        raw = f.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise ValueError(f"the batching parameters file {path} is larger than {MAX_FILE_BYTES} B")
    return parse_batching_parameters(raw.decode("utf-8", errors="replace"))
