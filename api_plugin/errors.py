"""Errors that carry their HTTP status: the service raises them, one place renders them.

The service layer knows nothing of HTTP requests, but every failure it can report maps to
exactly one status code, so the code travels with the exception (falcon's and werkzeug's
way). ``local_client`` raises the same exceptions that ``json_client`` rebuilds from a
response, so callers see identical errors whichever client they use.
"""

from __future__ import annotations


class ApiError(Exception):
    """A client-visible failure: ``status`` and the ``{"error": message}`` text."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ApiError)
            and other.status == self.status
            and other.message == self.message
        )

    def __hash__(self) -> int:
        return hash((self.status, self.message))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class ServiceUnavailable(ApiError):
    status = 503


_BY_STATUS: dict[int, type[ApiError]] = {
    cls.status: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict,
                PayloadTooLarge, ServiceUnavailable)
}


def error_for_status(status: int, message: str) -> ApiError:
    """Rebuild the exception a response stands for (used by json_client)."""
    return _BY_STATUS.get(status, ApiError)(message, status)
