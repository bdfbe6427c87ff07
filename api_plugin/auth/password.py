"""HTTP Basic against the flavor's user table, with a short cache of good credentials.

Every check costs the same: an unknown user is verified against a dummy hash of the
same kind, so timing does not tell which usernames exist. A success is remembered for
``cache_seconds`` under a keyed digest of the credentials (never the password itself),
so a busy client is not charged one bcrypt per request; a changed password stops
working at most ``cache_seconds`` later. Failures are never cached.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from api_plugin.auth.base import (
    Authenticated,
    AuthMiddleware,
    Denied,
    Environ,
    NotAttempted,
    Outcome,
    WSGIApp,
)
from api_plugin.auth.hashes import is_bcrypt, verify_password

MAX_HEADER = 8192
CACHE_SIZE = 1024
UserLookup = Callable[[str], str | None]
DEFAULT_HASH_KIND = "pbkdf2:sha256:260000"


def hash_kind(stored_hash: str) -> str:
    """The algorithm and cost of a hash (``$2b$12$``, ``pbkdf2:sha256:260000``...)."""
    if is_bcrypt(stored_hash):
        return stored_hash[:7]
    return stored_hash.split("$", 1)[0]


def dummy_hash(kind: str) -> str:
    """A real hash of a random secret with the same algorithm and cost as ``kind``."""
    secret = os.urandom(24).hex()
    if kind.startswith("$2"):
        import bcrypt

        rounds = int(kind[4:6]) if kind[4:6].isdigit() else 12
        return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds, kind[1:3].encode())).decode()
    from werkzeug.security import generate_password_hash

    try:
        return generate_password_hash(secret, method=kind)
    except (ValueError, TypeError):
        return generate_password_hash(secret, method=DEFAULT_HASH_KIND)


class PasswordBackend:
    """Basic credentials checked against ``lookup(username) -> stored hash``."""

    name = "password"

    def __init__(self, lookup: UserLookup, *, realm: str = "api_plugin",
                 cache_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 verify: Callable[[str, str], bool] = verify_password) -> None:
        self.lookup = lookup
        self.realm = realm
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.verify = verify
        self._key = os.urandom(32)
        self._cache: OrderedDict[bytes, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._dummy_kind = DEFAULT_HASH_KIND
        self._dummies: dict[str, str] = {}

    def challenge(self) -> str:
        return f'Basic realm="{self.realm}"'

    def authenticate(self, environ: Environ) -> Outcome:
        header = environ.get("HTTP_AUTHORIZATION")
        if not isinstance(header, str) or header[:6].lower() != "basic ":
            return NotAttempted()
        credentials = _parse_basic(header)
        if credentials is None:
            return Denied(401, "Malformed Basic credentials")
        username, password = credentials
        digest = hmac.new(self._key, f"{username}\0{password}".encode(),
                          hashlib.sha256).digest()
        if self._cached(digest):
            return Authenticated(username)
        stored = self.lookup(username)
        if stored is None:
            # An unknown user costs one check against a hash of the kind real users have.
            self.verify(self._dummy_for(self._dummy_kind), password)
            return Denied(401, "Invalid username or password")
        self._dummy_kind = hash_kind(stored)
        if not self.verify(stored, password):
            return Denied(401, "Invalid username or password")
        self._remember(digest, username)
        return Authenticated(username)

    def _dummy_for(self, kind: str) -> str:
        dummy = self._dummies.get(kind)
        if dummy is None:
            dummy = self._dummies[kind] = dummy_hash(kind)
        return dummy

    def _cached(self, digest: bytes) -> bool:
        if self.cache_seconds <= 0:
            return False
        with self._lock:
            entry = self._cache.get(digest)
            if entry is None:
                return False
            if entry[0] < self.clock():
                del self._cache[digest]
                return False
            self._cache.move_to_end(digest)
            return True

    def _remember(self, digest: bytes, username: str) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            self._cache[digest] = (self.clock() + self.cache_seconds, username)
            self._cache.move_to_end(digest)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)


def _parse_basic(header: str) -> tuple[str, str] | None:
    if len(header) > MAX_HEADER:
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    username, sep, password = text.partition(":")
    if not sep or not username:
        return None
    return username, password


def password_middleware(app: WSGIApp, lookup: UserLookup, **kwargs: Any) -> AuthMiddleware:
    """``app`` behind HTTP Basic alone."""
    return AuthMiddleware(app, [PasswordBackend(lookup, **kwargs)])
