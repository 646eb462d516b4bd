"""`Serve`: one serve as notebook code holds it, from `api.serve()`, `api.get()` or `%serve`.

It reads the service again only when asked (`refresh()`, `wait()`) or when it is displayed, so
what a notebook shows is current, including the serve's traffic.
"""

from __future__ import annotations

import contextlib
import html
import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from .display import state_badge
from .errors import BackendUnavailable, InvalidInput, ModelServeError, PayloadTooLarge
from .predict_input import is_dataframe, predict_body
from .results import Columns, curl_command, html_rows, metrics_text, signature_lines
from .schemas import (
    ServeState,
    ServeView,
    SignatureView,
    validate_version,
    validate_wait_seconds,
)
from .servestate import not_ready

if TYPE_CHECKING:
    from .service import ServeService

DEFAULT_TIMEOUT = 300.0  # as long as the service's load deadline: waiting less loses serves
PREDICT_TIMEOUT = 60.0
DELETED = "DELETED"  # what `state` says once this notebook's `delete()` removed the serve


class Serve:
    """A serve: `state`, `url`, `signature`, `predict()`, `logs()`, `delete()`..."""

    def __init__(self, view: ServeView, service: ServeService) -> None:
        self._view = view
        self._service = service
        self._deleted = False
        self._signature: SignatureView | None = view.signature

    name = property(lambda self: self._view.model_name)
    version = property(lambda self: self._view.model_version)
    reason = property(lambda self: self._view.reason)
    backend = property(lambda self: self._view.backend)

    @property
    def state(self) -> str:
        """The serve's state by name (notebooks print it); DELETED once `delete()` returned."""
        return DELETED if self._deleted else self._view.state.value

    @property
    def url(self) -> str | None:
        return None if self._deleted else self._view.url

    @property
    def grpc_url(self) -> str | None:
        """`host:port` of TF Serving's gRPC API for this serve (PredictionService, ModelService):
        what a `tensorflow_serving.apis` client dials."""
        return None if self._deleted else self._view.grpc_url

    @property
    def proxy_url(self) -> str | None:
        """The same predict route through the Jupyter server, under its authentication: the
        address to give someone who can reach Jupyter but not the model server."""
        if self._deleted:
            return None
        if self._view.proxy_url:
            return self._view.proxy_url
        from .jupyter_info import proxy_url  # reads Jupyter's runtime files: only when asked

        return proxy_url(self.name, self.version)

    @property
    def signature(self) -> SignatureView | None:
        """The serving signature: inputs and outputs with name, dtype and shape (None when the
        model's source cannot be read until it is served)."""
        if self._signature is None:
            self._signature = self._service.signature(self.name, self.version)
        return self._signature

    @property
    def example_request(self) -> dict[str, Any] | None:
        """A predict body that works: one row of zeros of the signature's shapes and dtypes."""
        if self._view.example_request is None and self.signature is not None:
            self._describe()
        return self._view.example_request

    @property
    def metrics(self) -> Any:
        """Requests, errors and p50/p99 latency, read now from the model server."""
        return self._describe().metrics

    def refresh(self) -> Serve:
        self._view = self._service.describe(self.name, self.version)
        self._deleted = False
        return self

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> Serve:
        """Wait until AVAILABLE; FAILED raises ServeFailed with the reason."""
        timeout = validate_wait_seconds(timeout)
        self._view = available(self._service.wait(self.name, self.version, timeout), timeout)
        return self

    def predict(self, data: Any, signature_name: str | None = None) -> Any:
        """TF Serving's predict: numpy arrays, lists, dicts of named inputs and pandas
        DataFrames are accepted. Returns TF Serving's `predictions` (or `outputs`)."""
        url = self.url
        if not url:
            raise BackendUnavailable(f"model {self.name!r} version {self.version} has no url yet")
        signature = self.signature if is_dataframe(data) else None
        body = predict_body(data, signature)
        if signature_name:
            body["signature_name"] = signature_name
        request = urllib.request.Request(
            url, data=_encode(body), headers={"Content-Type": "application/json"}
        )
        field = "instances" if "instances" in body else "inputs"
        try:
            with urllib.request.urlopen(request, timeout=PREDICT_TIMEOUT) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            message = _error_message(error)
            if error.code == 400:
                raise InvalidInput(f"{field}: {message}") from None
            if error.code == 413:
                raise PayloadTooLarge(f"{field}: {message}") from None
            raise BackendUnavailable(f"predict failed with HTTP {error.code}: {message}") from None
        except OSError as error:
            raise BackendUnavailable(f"cannot reach {url}: {error}") from None
        return answer["predictions"] if "predictions" in answer else answer.get("outputs")

    def logs(self, tail: int = 100) -> list[str]:
        return self._service.logs(self.name, self.version, validate_version(tail, "tail"))

    def delete(self) -> None:
        """Stop serving it; `state` then says DELETED."""
        self._service.delete(self.name, self.version)
        self._deleted = True

    def curl(self) -> str:
        """A copyable command that predicts with this serve, with a correctly shaped body."""
        return curl_command(self.url or "", self.example_request)

    def __repr__(self) -> str:
        view = self._describe()
        reason = f", reason={self.reason!r}" if self.reason else ""
        lines = [
            f"Serve({self.name!r}, {self.version}, state={self.state}{reason}, url={self.url!r})"
        ]
        if view.state is ServeState.AVAILABLE and not self._deleted:
            lines += ["  " + line for line in self._detail_lines(view)]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        view = self._describe()
        badge = state_badge(view.state) if not self._deleted else DELETED
        rows = [("model", _escape(f"{self.name} version {self.version}")), ("state", badge)]
        if self.reason:
            rows.append(("reason", _escape(self.reason)))
        if self.url:
            rows.append(("url", _code(self.url)))
        if view.state is ServeState.AVAILABLE and not self._deleted:
            if self.signature is not None:
                rows.append(
                    ("signature", "<br>".join(map(_escape, signature_lines(self.signature)[1:])))
                )
            rows.append(("traffic", _escape(metrics_text(view.metrics))))
            rows.append(("curl", f"<code style='user-select:all'>{_escape(self.curl())}</code>"))
        return html_rows(rows)

    def _detail_lines(self, view: ServeView) -> list[str]:
        lines = signature_lines(self.signature) if self.signature is not None else []
        lines.append("traffic: " + metrics_text(view.metrics))
        lines.append("try it: " + self.curl())
        return lines

    def _describe(self) -> ServeView:
        """The current view with signature and metrics; the last one known if the service
        cannot say (a display must not raise)."""
        if self._deleted:
            return self._view
        # Deleted elsewhere, or the registry is busy: show what was last known.
        with contextlib.suppress(ModelServeError):
            self._view = self._service.describe(self.name, self.version)
        return self._view


def available(view: ServeView, waited: float) -> ServeView:
    """The view of a finished wait when AVAILABLE; a wait that ran out raises, saying so."""
    if view.state is not ServeState.AVAILABLE:
        # The serve goes on: `Serve.wait()` again, or `%serve status`, keeps watching it.
        raise BackendUnavailable(not_ready(view, waited))
    return view


SERVE_TABLE: Columns[Serve] = Columns(
    "serves",
    [
        ("model", lambda s: s.name, None),
        ("version", lambda s: str(s.version), None),
        ("state", lambda s: s.state, lambda s: state_badge(ServeState(s.state))),
        ("url", lambda s: s.url or "", None),
        ("reason", lambda s: s.reason or "", None),
    ],
)


def _encode(body: dict[str, Any]) -> bytes:
    """The predict body as JSON; what JSON cannot carry is the caller's to fix."""
    try:
        return json.dumps(body, allow_nan=False).encode()
    except ValueError:  # NaN or infinity: TF Serving's JSON has neither
        raise InvalidInput(
            "data: NaN or infinity cannot be sent as JSON; fill or drop them first "
            "(e.g. DataFrame.fillna or dropna)"
        ) from None
    except TypeError as error:  # a value of no JSON type: a Timestamp, a Decimal, bytes...
        raise InvalidInput(
            f"data: {error}; convert it to numbers, strings or lists first"
        ) from None


def _error_message(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(error).get("error", error.reason))
    except (ValueError, AttributeError):
        return str(error.reason)


def _escape(text: str) -> str:
    return html.escape(text)


def _code(text: str) -> str:
    return f"<code>{_escape(text)}</code>"
