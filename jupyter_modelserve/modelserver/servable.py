"""One loaded model version: the SavedModel's signature functions and their metadata.

Only imported by the server process (and tests): importing it does not import TensorFlow, but
every method does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import batching
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
        # One caller per function, made once: a request pays for no signature introspection.
        self._callers = {id(f): DirectCall(f) for f in self.functions.values()}
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
        return self._caller(function).specs

    def _caller(self, function: Any) -> DirectCall:
        caller = self._callers.get(id(function))
        return caller if caller is not None else DirectCall(function)

    def run(self, function: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The signature's outputs for `inputs`; batched with concurrent requests when the
        server batches (`--enable_batching`) and the inputs can be stacked."""
        batcher = batching.active()
        if batcher is not None:
            key = batching.batch_key((id(self), id(function)), inputs)
            if key is not None:
                return dict(batcher.run(key, inputs, lambda batch: self._run_now(function, batch)))
        return self._run_now(function, inputs)

    def _run_now(self, function: Any, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        caller = self._caller(function)
        try:
            tensors = {k: tf.constant(v, dtype=caller.specs[k].dtype) for k, v in inputs.items()}
            outputs = caller(tensors)
            return {k: v.numpy() for k, v in outputs.items()}
        except tf.errors.OpError as error:
            code = _GRPC_CODES[error.error_code] if 0 < error.error_code < 17 else "UNKNOWN"
            raise ServingError(code, _op_message(error)) from None
        except (TypeError, ValueError) as error:
            raise ServingError("INVALID_ARGUMENT", _op_message(error)) from None


class DirectCall:
    """Calls a loaded signature function with its flat inputs, skipping the argument binding
    (keyword matching, structure checks, casts) a `ConcreteFunction` call does each time.

    That binding costs about as much as running a small model. It is skipped only when the
    function's graph inputs are exactly its keyword inputs (sorted by name, as TensorFlow
    flattens them) followed by its captures, and only for tensors whose shapes fit the specs;
    anything else takes the ordinary call, which raises TensorFlow's own errors.
    """

    def __init__(self, function: Any) -> None:
        self.function = function
        self.specs: dict[str, Any] = dict(function.structured_input_signature[1])
        self.order = sorted(self.specs)
        self._flat = self._flat_call(function, self.order)

    @property
    def direct(self) -> bool:
        """True when calls skip the argument binding."""
        return self._flat is not None

    @staticmethod
    def _flat_call(function: Any, order: list[str]) -> Any:
        call_flat = getattr(function, "_call_flat", None)
        captured = getattr(function, "captured_inputs", None)
        graph_inputs = getattr(function, "inputs", None)
        if call_flat is None or captured is None or graph_inputs is None:
            return None
        if function.structured_input_signature[0] or len(graph_inputs) != len(order) + len(
            captured
        ):
            return None
        names = [t.name.split(":")[0] for t in graph_inputs[: len(order)]]
        return call_flat if names == order else None

    def __call__(self, tensors: Mapping[str, Any]) -> Mapping[str, Any]:
        if self._flat is not None and tensors.keys() == self.specs.keys():
            flat = [tensors[k] for k in self.order]
            if all(
                self.specs[k].shape.is_compatible_with(t.shape)
                for k, t in zip(self.order, flat, strict=True)
            ):
                outputs: Mapping[str, Any] = self._flat(flat, self.function.captured_inputs)
                return outputs
        return self.function(**tensors)


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
