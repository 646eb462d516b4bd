"""TF Serving's REST API without the web framework: a path and a body in, a status and JSON out.

The path patterns are TF Serving's own (`http_rest_api_handler.cc`): case-insensitive, a version
is digits only, and anything else is "Malformed request: METHOD PATH".
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ServingError, invalid
from .jsonbody import parse_object
from .logs import log
from .manager import ModelManager

if TYPE_CHECKING:
    from .servable import Servable

_PREDICT = re.compile(
    r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_STATUS = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:/versions/(\d+)|/labels/([^/:]+))?(?:/(metadata))?",
    re.IGNORECASE,
)
_VERSION_AND_LABEL = re.compile(r"/(versions/[^/:]+/labels|labels/[^/:]+/versions)/", re.I)


@dataclass(frozen=True)
class Route:
    action: str  # "status", "metadata", "predict", "classify" or "regress"
    name: str
    version: int | None
    label: str | None


def route(method: str, path: str) -> Route:
    """Match a request to an API call; ServingError (400) for anything TF Serving rejects."""
    groups: tuple[str | None, ...] | None = None
    if method == "POST" and (match := _PREDICT.fullmatch(path)):
        groups = match.groups()
        action = (groups[3] or "").lower()
    elif method == "GET" and (match := _STATUS.fullmatch(path)):
        groups = match.groups()
        action = "metadata" if groups[3] else "status"
    if groups is None:
        malformed = f"Malformed request: {method} {path}"
        if _VERSION_AND_LABEL.search(path):
            malformed += " (a request names a version or a label, not both)"
        raise invalid(malformed)
    name, version, label = groups[0], groups[1], groups[2]
    if not name:
        raise invalid("Missing model name in request.")
    return Route(
        action=action,
        name=urllib.parse.unquote(name),
        version=int(version) if version is not None else None,
        label=urllib.parse.unquote(label) if label is not None else None,
    )


class Api:
    """Answers REST calls from a ModelManager's servables."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    def handle(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """(HTTP status, JSON body) for one request; never raises."""
        try:
            answer = self.dispatch(route(method, path), body)
            return 200, json.dumps(answer).encode("utf-8")
        except ServingError as error:
            return error.http_status, json.dumps({"error": error.message}).encode("utf-8")
        except Exception as error:  # a bug here must still answer in TF Serving's error shape
            log.exception("Internal error answering %s %s", method, path)
            message = f"Internal error: {type(error).__name__}: {error}"
            return 500, json.dumps({"error": message}).encode("utf-8")

    def dispatch(self, call: Route, body: bytes) -> dict[str, Any]:
        if call.action == "status":
            versions = self.manager.status(call.name, call.version, call.label)
            return {"model_version_status": [v.to_json() for v in versions]}
        servable = self.manager.servable(call.name, call.version, call.label)
        if call.action == "metadata":
            return {
                "model_spec": {
                    "name": call.name,
                    "signature_name": "",
                    "version": str(servable.version),
                },
                "metadata": {"signature_def": servable.metadata()},
            }
        request = parse_object(body)
        signature_name = request.get("signature_name")
        if signature_name is not None and not isinstance(signature_name, str):
            raise invalid("'signature_name' must be a string")
        info, function = servable.signature(signature_name)
        if call.action == "predict":
            return self._predict(servable, function, request, info.name)
        from . import examples
        from .signatures import CLASSIFY, REGRESS

        method = CLASSIFY if call.action == "classify" else REGRESS
        input_key = examples.check_signature(info, method)
        serialized = examples.serialized_examples(request)
        outputs = servable.run(function, {input_key: serialized})
        if method == CLASSIFY:
            return {"results": examples.classify_results(outputs, len(serialized))}
        return {"results": examples.regress_results(outputs, len(serialized))}

    def _predict(
        self, servable: Servable, function: Any, request: dict[str, Any], signature: str
    ) -> dict[str, Any]:
        from . import tensors

        if "instances" in request and "inputs" in request:
            raise invalid(
                "Invalid request: expecting only one of 'inputs' or 'instances' keys to exist, "
                "got both"
            )
        specs = servable.input_specs(function)
        names = sorted(specs)
        if "instances" in request:
            columns = tensors.rows_to_columns(request["instances"], names)
        elif "inputs" in request:
            columns = tensors.columnar_inputs(request["inputs"], names)
        else:
            raise invalid("Missing 'inputs' or 'instances' key")
        tensors.check_input_names(columns, specs, signature)
        arrays = {k: tensors.to_array(v, k, specs[k]) for k, v in columns.items()}
        outputs = servable.run(function, arrays)
        return tensors.predict_response(outputs, row_form="instances" in request)
