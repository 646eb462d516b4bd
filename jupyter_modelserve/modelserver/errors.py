"""gRPC-style error codes and their HTTP statuses, as TF Serving's REST layer maps them."""

from __future__ import annotations

# TF Serving answers REST errors with the HTTP status mapped from the gRPC status code.
HTTP_STATUS = {
    "OK": 200,
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


class ServingError(Exception):
    """An error with a gRPC code (e.g. "NOT_FOUND"); its message is what the client sees.

    `status` overrides the HTTP status mapped from the code, for HTTP-level refusals (413, 415)
    that have no gRPC code of their own.
    """

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    @property
    def http_status(self) -> int:
        return self.status or HTTP_STATUS.get(self.code, 500)


def invalid(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    return ServingError("NOT_FOUND", message)


def forbidden(message: str) -> ServingError:
    return ServingError("PERMISSION_DENIED", message)


def too_large(message: str) -> ServingError:
    return ServingError("RESOURCE_EXHAUSTED", message, status=413)


def unsupported_media_type(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message, status=415)
