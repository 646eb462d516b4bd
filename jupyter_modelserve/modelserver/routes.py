"""TF Serving's REST API without the web framework: a path and a body in, a status and JSON out.

The path patterns are TF Serving's own (`http_rest_api_handler.cc`): case-insensitive, a version
is digits only, and anything else is "Malformed request: METHOD PATH".
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ServingError, invalid
from .jsonbody import dumps, parse_object
from .logs import log
from .manager import ModelManager
from .metrics import Metrics

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

    def __init__(self, manager: ModelManager, metrics: Metrics | None = None) -> None:
        self.manager = manager
        self.metrics = metrics if metrics is not None else Metrics()

    def handle(
        self, method: str, path: str, body: bytes = b"", started: float | None = None
    ) -> tuple[int, bytes]:
        """(HTTP status, JSON body) for one request; never raises.

        The request is counted in `metrics`, its latency measured from `started` (a
        `time.perf_counter()` reading: when the HTTP layer received it) or from now.
        """
        started = time.perf_counter() if started is None else started
        call: Route | None = None
        served: list[int] = []  # the version that answered, once one is resolved
        status, code = 200, "OK"
        try:
            call = route(method, path)
            payload = dumps(self.dispatch(call, body, served))
        except ServingError as error:
            status, code = error.http_status, error.code
            payload = json.dumps({"error": error.message}).encode("utf-8")
        except Exception as error:  # a bug here must still answer in TF Serving's error shape
            log.exception("Internal error answering %s %s", method, path)
            message = f"Internal error: {type(error).__name__}: {error}"
            status, code = 500, "INTERNAL"
            payload = json.dumps({"error": message}).encode("utf-8")
        if call is not None:  # TF Serving counts a malformed path under model "", a waste here
            version = served[0] if served else call.version
            micros = (time.perf_counter() - started) * 1e6
            shown = "" if version is None else str(version)
            self.metrics.record(call.name, shown, call.action, code, micros)
        return status, payload

    def all_statuses(self) -> bytes:
        """The body of ALL_STATUSES_PATH: every model's status answer, keyed by name."""
        statuses = self.manager.all_statuses()
        models = {
            name: {"model_version_status": [v.to_json() for v in versions]}
            for name, versions in statuses.items()
        }
        return dumps({"models": models})

    def dispatch(self, call: Route, body: bytes, served: list[int] | None = None) -> dict[str, Any]:
        """The answer to `call`; the version that answers it is appended to `served`."""
        if call.action == "status":
            versions = self.manager.status(call.name, call.version, call.label)
            return {"model_version_status": [v.to_json() for v in versions]}
        servable = self.manager.servable(call.name, call.version, call.label)
        if served is not None:
            served.append(servable.version)
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
