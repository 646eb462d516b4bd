"""The one error hierarchy of jupyter_modelserve.

Every error a user can cause or act on is a `ModelServeError` carrying its HTTP status, so the
REST layer has exactly one place that turns errors into responses (`handlers.base`), and the magic
and the panel can print `str(error)` as a one-line answer.
"""

from __future__ import annotations

from http import HTTPStatus


class ModelServeError(Exception):
    """Base class: a message meant for the user, and the HTTP status it maps to."""

    status: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ModelServeError):
    """The request is malformed or a field has a wrong value; the message names the field."""

    status = HTTPStatus.BAD_REQUEST


class NotFound(ModelServeError):
    """A registered model, model version or serve does not exist; the message names it."""

    status = HTTPStatus.NOT_FOUND


class Conflict(ModelServeError):
    """The request clashes with current state (a served version cannot be deleted, ...)."""

    status = HTTPStatus.CONFLICT


class BackendUnavailable(ModelServeError):
    """The serving backend (model server process, cluster) cannot be reached right now."""

    status = HTTPStatus.SERVICE_UNAVAILABLE


class ServeFailed(ModelServeError):
    """A serve reached FAILED while the caller waited for it; the message carries the reason."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY


class PayloadTooLarge(ModelServeError):
    """A request body or a model artifact is larger than this server accepts; names the limit."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class RegistryUnavailable(ModelServeError):
    """The registry database cannot be used right now (locked, read-only, unreachable).

    A fault on our side, never the client's: a 503 whose message says what is wrong, without
    the SQL or its parameters.
    """

    status = HTTPStatus.SERVICE_UNAVAILABLE


class ServerFault(ModelServeError):
    """Something on the server's side failed (an unwritable folder, a broken install): a 500
    whose message says what, so an operator can fix it."""

    status = HTTPStatus.INTERNAL_SERVER_ERROR
