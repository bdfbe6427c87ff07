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

#: Headers a proxy adds to say whom it forwards for. Behind a proxy every client comes
#: from the proxy's (often loopback) address, so the address proves nothing.
PROXY_HEADERS = ("HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP",
                 "HTTP_X_FORWARDED_HOST", "HTTP_TRUE_CLIENT_IP", "HTTP_CF_CONNECTING_IP",
                 "HTTP_X_CLIENT_IP", "HTTP_X_CLUSTER_CLIENT_IP", "HTTP_FORWARDED_FOR")
#: Where werkzeug's ProxyFix keeps the values it replaced (the real peer address).
PROXY_FIX_ORIGINAL = "werkzeug.proxy_fix.orig"


@lru_cache(maxsize=4096)
def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'. An empty host or a unix socket is not:
    a unix socket is how a proxy reaches an app, and then every client looks local.

    Cached: it is asked on every request of the open backend, by the few addresses a
    server sees over and over.
    """
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def why_not_local(environ: Environ) -> str | None:
    """Why a request cannot be shown to come from this host, or None when it can: a
    loopback peer address with no proxy in between."""
    if PROXY_FIX_ORIGINAL in environ or any(environ.get(h) for h in PROXY_HEADERS):
        return "it came through a proxy"
    address = str(environ.get("REMOTE_ADDR") or "")
    if not address:
        return "the server gave no client address (a unix socket?)"
    if not is_loopback(address):
        return f"the client {address} is not on loopback"
    return None


class DefaultBackend:
    """Lets everyone in. Unless the open API is allowed, only requests that provably come
    from this host are let in (a loopback peer, no proxy headers): the guard fails closed
    behind a proxy, on a unix socket or without a client address, so neither a
    misconfigured bind nor a proxy in front exposes an unauthenticated API."""

    name = "default"

    def __init__(self, allow_open_api: bool = False) -> None:
        self.allow_open_api = allow_open_api

    def challenge(self) -> str | None:
        return None

    def authenticate(self, environ: Environ) -> Outcome:
        if self.allow_open_api:
            return Authenticated(None)
        reason = why_not_local(environ)
        if reason is None:
            return Authenticated(None)
        return Denied(403, f"{OPEN_API_REFUSED} ({reason})")


class DenyAllBackend:
    """Refuses every request with 403."""

    name = "deny_all"

    def challenge(self) -> str | None:
        return None

    def authenticate(self, environ: Environ) -> Outcome:
        return Denied(403, "Forbidden")
