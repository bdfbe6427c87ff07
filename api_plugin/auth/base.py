"""The contract every authentication backend meets, and the middleware that runs them.

A backend looks at a request's environ and answers with one of three outcomes:
``Authenticated`` (the request goes on as that user), ``NotAttempted`` (the request
carries no credentials of this backend's scheme, so the next backend may try), or
``Denied`` (credentials of this scheme were given and are wrong, or the backend refuses
everyone). ``AuthMiddleware`` tries its backends in order: the first ``Authenticated``
wins; when none authenticates, the answer is 401 with every backend's challenge, or the
status of the first ``Denied`` that is not a 401 (``deny_all`` answers 403); a client that
sent no credentials at all still gets the 401 challenge when a backend offers one.

An ``Authenticated`` may leave one check for later (``pending``): ``airflow_jwt``'s
``revoked_token`` lookup, which then travels with the request's first query instead of
costing a round trip of its own (``store/deferred.py``). The middleware holds the
application's status and headers back until that check is answered; when it refuses,
the answer is dropped unsent and the request is refused as if the backend had said
``Denied`` in the first place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
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
    #: A check still to be made before the answer goes out (see the module's text).
    pending: PendingCheck | None = None


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


class PendingCheck(Protocol):
    """What an ``Authenticated`` leaves to be decided once the application has run."""

    def during(self) -> AbstractContextManager[Any]:
        """Around the application's call: where the check may ride along."""

    def refusal(self) -> Denied | None:
        """The check's answer (made now unless a query brought it): the refusal, or None
        when the request may be answered."""


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

    def __init__(self, app: WSGIApp, backends: Sequence[AuthBackend], *,
                 app_settles_checks: bool = False) -> None:
        """``app_settles_checks``: ``app`` answers a pending check itself before it
        writes anything (the plugin's own API does, in its store), so the check may wait
        for ``app``'s first query. Any other application (a PasteDeploy pipeline may put
        these filters in front of anything) is called only once the check has been
        answered."""
        if not backends:
            raise ValueError("AuthMiddleware needs at least one backend")
        self.app = app
        self.app_settles_checks = app_settles_checks
        self.backends = tuple(backends)
        self._challenges = tuple(c for b in self.backends if (c := b.challenge()))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return self._decide(environ, start_response, 0, None)

    def _decide(self, environ: Environ, start_response: StartResponse, first: int,
                denied: Denied | None) -> Iterable[bytes]:
        """The backends from index ``first`` on, ``denied`` being what the ones before
        said (a pending check that refused)."""
        refusal: Denied | None = None  # the first refusal that is not a 401
        message = "Unauthorized"  # or why the first credentials given were refused
        extra: list[tuple[str, str]] = []
        for index in range(first, len(self.backends)):
            outcome: Outcome
            if index == first and denied is not None:
                outcome = denied
            else:
                outcome = _ask(self.backends[index], environ)
            if isinstance(outcome, Authenticated):
                if outcome.pending is None:
                    return self._let_through(outcome, environ, start_response)
                if self.app_settles_checks:
                    return self._let_through_pending(outcome, index, environ, start_response)
                if (late := outcome.pending.refusal()) is not None:
                    return self._decide(environ, start_response, index, late)
                return self._let_through(replace(outcome, pending=None), environ,
                                         start_response)
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

    def _let_through_pending(self, outcome: Authenticated, index: int, environ: Environ,
                             start_response: StartResponse) -> Iterable[bytes]:
        """The application's answer, held back until ``outcome.pending`` is answered;
        on a refusal the answer is dropped and the chain goes on from the next backend
        with that refusal (as though backend ``index`` had said it)."""
        check = outcome.pending
        assert check is not None
        held: list[tuple[str, list[tuple[str, str]], Any]] = []
        decided = False

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if decided:  # an application that starts its answer late, while iterated
                return start_response(status, headers, exc_info)
            held[:] = [(status, headers, exc_info)]
            return _no_write

        body: Iterable[bytes] | None = None
        try:
            with check.during():
                body = self._let_through(replace(outcome, pending=None), environ, hold)
                refusal = check.refusal()
        except BaseException:
            _close(body)
            raise
        if refusal is not None:
            _close(body)
            environ.pop("REMOTE_USER", None)
            return self._decide(environ, start_response, index, refusal)
        decided = True
        if held:
            start_response(*held[0])
        return body

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


def _ask(backend: AuthBackend, environ: Environ) -> Outcome:
    try:
        return backend.authenticate(environ)
    except Exception:  # a backend bug must fail closed, never as a 500
        log.exception("auth backend %s failed", backend.name)
        return Denied(401, "Unauthorized")


def _no_write(_data: bytes) -> None:
    """The ``write`` callable of a held-back ``start_response``: the plugin's application
    never writes that way."""
    raise RuntimeError("write() is not supported while a check is pending")


def _close(body: Iterable[bytes] | None) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()
