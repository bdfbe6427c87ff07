"""The two backends that need no credentials: open (``default``) and ``deny_all``."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from api_plugin.auth.base import Authenticated, Denied, Environ, Outcome

OPEN_API_REFUSED = (
    "The open API (auth backend 'default') only answers loopback clients; "
    "set [api] allow_open_api = True to serve it to the network, or configure "
    "[api] auth_backend = password or kerberos"
)


@lru_cache(maxsize=4096)
def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1, 'localhost' and a unix socket (empty host).

    Cached: it is asked on every request of the open backend, by the few addresses a
    server sees over and over.
    """
    host = host.strip().strip("[]")
    if host in ("", "localhost") or host.startswith("unix:"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DefaultBackend:
    """Lets everyone in. Unless the open API is allowed, only loopback clients are let
    in, so a misconfigured bind never exposes an unauthenticated API to the network."""

    name = "default"

    def __init__(self, allow_open_api: bool = False) -> None:
        self.allow_open_api = allow_open_api

    def challenge(self) -> str | None:
        return None

    def authenticate(self, environ: Environ) -> Outcome:
        if self.allow_open_api or is_loopback(str(environ.get("REMOTE_ADDR") or "")):
            return Authenticated(None)
        return Denied(403, OPEN_API_REFUSED)


class DenyAllBackend:
    """Refuses every request with 403."""

    name = "deny_all"

    def challenge(self) -> str | None:
        return None

    def authenticate(self, environ: Environ) -> Outcome:
        return Denied(403, "Forbidden")
