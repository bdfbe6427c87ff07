"""Kerberos SPNEGO (``Authorization: Negotiate``) through pykerberos.

By default any service principal in the keytab is accepted, so clients asking for
``HTTP/<host>`` (browsers, curl, requests-kerberos) and for ``airflow/<fqdn>`` (Airflow's
own client) both work; a configured ``service`` restricts acceptance to
``service@hostname``. The GSS calls sit behind ``GssAcceptor`` so the backend can be
tested without the C extension. A bad, truncated or replayed token is a 401 or 403,
never an exception.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import socket
from typing import Any, Protocol

from api_plugin.auth.base import (
    Authenticated,
    AuthMiddleware,
    Denied,
    Environ,
    NotAttempted,
    Outcome,
    WSGIApp,
)

log = logging.getLogger(__name__)

#: A SPNEGO token is a few KiB (Windows caps them at 48 KiB); larger ones never reach GSS.
MAX_TOKEN_CHARS = 48 * 1024


class GssAcceptor(Protocol):
    """One server-side GSS handshake step: token in, (principal, mutual token) out."""

    def accept(self, principal_name: str, token_b64: str) -> tuple[str, str | None]:
        """Raise ``GssRefused`` when the token is not good."""


class GssRefused(Exception):
    """The token was rejected by GSS (bad, expired, replayed, wrong service)."""


class PyKerberosAcceptor:
    """``GssAcceptor`` on pykerberos; the context is always cleaned up."""

    def __init__(self) -> None:
        import kerberos

        self._k = kerberos

    def accept(self, principal_name: str, token_b64: str) -> tuple[str, str | None]:
        k = self._k
        context: Any = None
        try:
            result, context = k.authGSSServerInit(principal_name)
            if result != k.AUTH_GSS_COMPLETE:
                raise GssRefused("could not initialise GSS")
            if k.authGSSServerStep(context, token_b64) != k.AUTH_GSS_COMPLETE:
                raise GssRefused("handshake not complete")
            return str(k.authGSSServerUserName(context)), k.authGSSServerResponse(context)
        except (k.GSSError, k.KrbError, ValueError, TypeError) as exc:
            raise GssRefused(str(exc)) from None
        finally:
            if context is not None:
                k.authGSSServerClean(context)


class KerberosBackend:
    """SPNEGO authentication backend."""

    name = "kerberos"

    def __init__(self, keytab: str | None = None, service: str | None = None,
                 hostname: str | None = None, acceptor: GssAcceptor | None = None) -> None:
        if keytab:
            os.environ["KRB5_KTNAME"] = keytab  # where pykerberos's GSS finds the key
        self.principal_name = ""
        if service:
            self.principal_name = f"{service}@{hostname or socket.getfqdn()}"
        self._acceptor = acceptor

    @property
    def acceptor(self) -> GssAcceptor:
        if self._acceptor is None:
            self._acceptor = PyKerberosAcceptor()
        return self._acceptor

    def challenge(self) -> str:
        return "Negotiate"

    def authenticate(self, environ: Environ) -> Outcome:
        header = environ.get("HTTP_AUTHORIZATION")
        if not isinstance(header, str) or header[:10].lower() != "negotiate ":
            return NotAttempted()
        token = header[10:].strip()
        if not token or len(token) > MAX_TOKEN_CHARS:
            return Denied(401, "Malformed Negotiate token")
        try:
            base64.b64decode(token, validate=True)
        except (binascii.Error, ValueError):
            return Denied(401, "Malformed Negotiate token")
        try:
            principal, mutual = self.acceptor.accept(self.principal_name, token)
        except GssRefused as exc:
            log.info("kerberos token refused: %s", exc)
            return Denied(403, "Kerberos authentication failed")
        headers = [("WWW-Authenticate", f"Negotiate {mutual}")] if mutual else []
        return Authenticated(principal, headers)


def kerberos_middleware(app: WSGIApp, **kwargs: Any) -> AuthMiddleware:
    """``app`` behind SPNEGO alone."""
    return AuthMiddleware(app, [KerberosBackend(**kwargs)])
