"""Errors that carry their whole HTTP answer, and the one function that renders them.

Every failure a client can see is an ``ApiError``: its status, its ``{"error": message}``
text and the headers that go with that status (``Allow`` on a 405, ``Retry-After`` on a
503 or a 429, the ``WWW-Authenticate`` challenges on a 401). The service layer raises
them without knowing HTTP; ``error_response`` is the only place that turns one into an
answer, and an error is itself a WSGI application (werkzeug's and falcon's way), so the
app, the auth middleware, the mount's 404 and the gunicorn worker's error page all answer
alike. The client rebuilds the same exceptions from an answer (``error_for_status``).
Status texts are werkzeug's (``HTTP_STATUS_CODES``), upper-cased as werkzeug's own
responses, and so Airflow's webserver, write them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.http import HTTP_STATUS_CODES

Header = tuple[str, str]
JSON_TYPE = "application/json"


def status_line(code: int) -> str:
    """The WSGI status line of ``code``: ``"404 NOT FOUND"``."""
    return f"{code} {HTTP_STATUS_CODES.get(code, 'Unknown').upper()}"


class ApiError(Exception):
    """A client-visible failure: ``status``, the ``{"error": message}`` text, and the
    headers its status calls for."""

    status = 400

    def __init__(self, message: str, status: int | None = None,
                 headers: Iterable[Header] = ()) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers: tuple[Header, ...] = tuple((name, str(value)) for name, value in headers)

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

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` this error carries, or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> list[bytes]:
        """The error as a WSGI application (no body for a HEAD request)."""
        status, headers, body = error_response(self)
        start_response(status, headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def error_response(error: ApiError) -> tuple[str, list[Header], bytes]:
    """The answer ``error`` stands for: status line, headers and the compact JSON body."""
    body = json.dumps({"error": error.message}, separators=(",", ":")).encode()
    headers = [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))), *error.headers]
    return status_line(error.status), headers, body


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    """A 401, with a ``WWW-Authenticate`` header for each challenge offered."""

    status = 401

    def __init__(self, message: str = "Unauthorized", status: int | None = None,
                 headers: Iterable[Header] = (), *, challenges: Iterable[str] = ()) -> None:
        super().__init__(message, status,
                         [*(("WWW-Authenticate", c) for c in challenges), *headers])


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    """A 405, with the ``Allow`` header listing the methods the path takes."""

    status = 405

    def __init__(self, message: str, status: int | None = None,
                 headers: Iterable[Header] = (), *, allowed: Iterable[str] = ()) -> None:
        methods = ", ".join(allowed)
        super().__init__(message, status, [*((("Allow", methods),) if methods else ()),
                                           *headers])


class RequestTimeout(ApiError):
    status = 408


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class _RetryLater(ApiError):
    """An error that tells the client when to try again (``Retry-After``, in seconds)."""

    default_retry_after: int | None = None

    def __init__(self, message: str, status: int | None = None,
                 headers: Iterable[Header] = (), *, retry_after: int | None = None) -> None:
        super().__init__(message, status, headers)
        seconds = retry_after if retry_after is not None else self.default_retry_after
        if seconds is not None and self.header("Retry-After") is None:
            self.headers += (("Retry-After", str(seconds)),)


class TooManyRequests(_RetryLater):
    status = 429


class InternalServerError(ApiError):
    status = 500


class ServiceUnavailable(_RetryLater):
    """A 503: the database (or the API itself) cannot answer now; retry in a second."""

    status = 503
    default_retry_after = 1


def _by_status() -> dict[int, type[ApiError]]:
    """Each status's own class, read from the classes themselves (no table kept by hand)."""
    found: dict[int, type[ApiError]] = {}
    pending: list[type[ApiError]] = [ApiError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        # Only this module's own classes: a layer's subclass (the store's
        # DatabaseUnavailable) names one cause of a status, not the status itself.
        if cls is not ApiError and not cls.__name__.startswith("_") \
                and cls.__module__ == __name__:
            found.setdefault(cls.status, cls)
    return found


def error_for_status(status: int, message: str, headers: Iterable[Header] = ()) -> ApiError:
    """The exception an answer stands for (the client rebuilds errors with it)."""
    return _by_status().get(status, ApiError)(message, status, headers)
