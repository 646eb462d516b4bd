"""One loaded model version: the SavedModel's signature functions and their metadata.

Only imported by the server process (and tests): importing it does not import TensorFlow, but
every method does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ServingError
from .signatures import SERVE_TAG, SignatureInfo, read_signatures

# tf.errors.OpError.error_code -> gRPC code name, so a failing op keeps its HTTP status.
_GRPC_CODES = [
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
]  # fmt: skip


class Servable:
    """A loaded SavedModel version that can run its signatures."""

    def __init__(
        self,
        name: str,
        version: int,
        path: str,
        signatures: dict[str, SignatureInfo],
        functions: Mapping[str, Any],
        keepalive: Any = None,
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.signatures = signatures
        self.functions = dict(functions)
        # The loaded trackable owns the variables the functions read: keep it alive with them.
        self._keepalive = keepalive

    @classmethod
    def load(cls, name: str, version: int, path: str) -> Servable:
        """The default loader: read metadata, then `tf.saved_model.load` the `serve` graph."""
        signatures = read_signatures(path)
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
        except Exception as error:
            raise ServingError("INVALID_ARGUMENT", _op_message(error)) from None
        functions = dict(loaded.signatures)
        return cls(name, version, path, signatures, functions, keepalive=loaded)

    def metadata(self) -> dict[str, Any]:
        """TF Serving's `signature_def` map: every SignatureDef of the serve graph."""
        return {"signature_def": {k: s.json for k, s in self.signatures.items()}}

    def signature(self, signature_name: str | None) -> tuple[SignatureInfo, Any]:
        key = signature_name or "serving_default"
        function = self.functions.get(key)
        info = self.signatures.get(key)
        if function is None or info is None:
            names = ", ".join(sorted(self.functions)) or "none"
            raise ServingError(
                "FAILED_PRECONDITION",
                f'Serving signature key "{key}" not found. Signatures of model {self.name} '
                f"version {self.version}: {names}",
            )
        return info, function

    def input_specs(self, function: Any) -> dict[str, Any]:
        """{input name: tf.TensorSpec} of a signature function."""
        specs: dict[str, Any] = function.structured_input_signature[1]
        return specs

    def run(self, function: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        specs = self.input_specs(function)
        try:
            tensors = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in inputs.items()}
            outputs = function(**tensors)
            return {k: v.numpy() for k, v in outputs.items()}
        except tf.errors.OpError as error:
            code = _GRPC_CODES[error.error_code] if 0 < error.error_code < 17 else "UNKNOWN"
            raise ServingError(code, _op_message(error)) from None
        except (TypeError, ValueError) as error:
            raise ServingError("INVALID_ARGUMENT", _op_message(error)) from None


def _op_message(error: BaseException) -> str:
    """The cause from a TF error, without the Python traceback and node dump TF wraps it in."""
    message = str(getattr(error, "message", None) or error or type(error).__name__)
    noise = ("Graph execution error", "Detected at node")
    kept = [
        line.strip()
        for line in message.splitlines()
        # Traceback and node lines are indented; the cause is not.
        if line.strip() and not line[:1].isspace() and not line.startswith(noise)
    ]
    text = re.sub(r"\s*\[Op:[^\]]*\]$", "", " ".join(kept) or message.strip())
    return text[:2000]
