"""The contract every authentication backend meets, and the middleware that runs them.

A backend looks at a request's environ and answers with one of three outcomes:
``Authenticated`` (the request goes on as that user), ``NotAttempted`` (the request
carries no credentials of this backend's scheme, so the next backend may try), or
``Denied`` (credentials of this scheme were given and are wrong, or the backend refuses
everyone). ``AuthMiddleware`` tries its backends in order: the first ``Authenticated``
wins; when none authenticates, the answer is 401 with every backend's challenge, or the
status of the first ``Denied`` that is not a 401 (``deny_all`` answers 403); a client that
sent no credentials at all still gets the 401 challenge when a backend offers one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from api_plugin.errors import Unauthorized, error_for_status

log = logging.getLogger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class Authenticated:
    """The request is let through; ``user`` becomes ``REMOTE_USER`` when not None."""

    user: str | None
    response_headers: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class NotAttempted:
    """The request carries no credentials for this backend."""


@dataclass(frozen=True)
class Denied:
    """Credentials were refused (401) or the backend refuses everyone (403)."""

    status: int = 401
    message: str = "Unauthorized"
    response_headers: Sequence[tuple[str, str]] = field(default_factory=tuple)


Outcome = Authenticated | NotAttempted | Denied


class AuthBackend(Protocol):
    """One authentication scheme."""

    #: Name used in logs and configuration (``password``, ``kerberos``...).
    name: str

    def challenge(self) -> str | None:
        """The ``WWW-Authenticate`` value this backend offers on a 401, or None."""

    def authenticate(self, environ: Environ) -> Outcome:
        """Decide on one request; must never raise for bad client input."""


def _no_credentials(environ: Environ) -> bool:
    return not environ.get("HTTP_AUTHORIZATION")


class AuthMiddleware:
    """WSGI middleware that lets a request reach ``app`` only when a backend consents."""

    def __init__(self, app: WSGIApp, backends: Sequence[AuthBackend]) -> None:
        if not backends:
            raise ValueError("AuthMiddleware needs at least one backend")
        self.app = app
        self.backends = tuple(backends)
        self._challenges = tuple(c for b in self.backends if (c := b.challenge()))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        refusal: Denied | None = None  # the first refusal that is not a 401
        message = "Unauthorized"  # or why the first credentials given were refused
        extra: list[tuple[str, str]] = []
        for backend in self.backends:
            try:
                outcome = backend.authenticate(environ)
            except Exception:  # a backend bug must fail closed, never as a 500
                log.exception("auth backend %s failed", backend.name)
                outcome = Denied(401, "Unauthorized")
            if isinstance(outcome, Authenticated):
                return self._let_through(outcome, environ, start_response)
            if isinstance(outcome, Denied):
                if outcome.status != 401 and refusal is None:
                    refusal = outcome
                elif outcome.status == 401 and message == "Unauthorized":
                    message = outcome.message
                extra.extend(outcome.response_headers)
        if refusal is not None and not (self._challenges and _no_credentials(environ)):
            # A client that sent no credentials is told how to send some, when a backend
            # of the chain would take them (``password,deny_all``), before any refusal.
            refused = error_for_status(refusal.status, refusal.message, refusal.response_headers)
            return refused(environ, start_response)
        return Unauthorized(message, challenges=self._challenges, headers=extra)(
            environ, start_response)

    def _let_through(
        self, outcome: Authenticated, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        if outcome.user is not None:
            environ["REMOTE_USER"] = outcome.user
        if not outcome.response_headers:
            return self.app(environ, start_response)
        added = list(outcome.response_headers)

        def start_with_headers(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            return start_response(status, [*headers, *added], exc_info)

        return self.app(environ, start_with_headers)
