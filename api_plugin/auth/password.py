"""HTTP Basic against the flavor's user table, with a short cache of good credentials.

Every check costs the same: an unknown user is verified against a dummy hash of the
same kind, so timing does not tell which usernames exist. A success is remembered for
``cache_seconds`` under a keyed digest of the credentials (never the password itself),
so a busy client is not charged one bcrypt per request. A remembered login is still
checked on every request against the user's current stored hash (one indexed read):
a deactivated user or a changed password stops working on the next request, while a
good login costs no second hash. Failures are never cached, and are counted per account
and client, per account and per host, across the host's workers (``throttle.py``): past
a budget the answer is 429 without hashing, so guessing passwords cannot tie up the
workers, and an attack on one account never locks out another.

The users come from ``lookup``: the database's user table, or Airflow 3's simple auth
manager (``users.py``), which also brings its own ``verify`` and dummy credential.
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
from pathlib import Path

from api_plugin.auth.base import (
    Authenticated,
    Denied,
    Environ,
    NotAttempted,
    Outcome,
)
from api_plugin.auth.hashes import is_bcrypt, verify_password
from api_plugin.auth.throttle import LoginThrottle, Ticket
from api_plugin.settings.config import DEFAULT_CONFIG

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
    """A hash of the same algorithm and cost as ``kind`` that no password matches.

    It is assembled from random salt and digest rather than computed, so making it costs
    nothing: checking a password against it costs exactly what checking a real hash of
    that kind costs, which is the point.
    """
    if kind.startswith("$2"):
        import bcrypt

        rounds = int(kind[4:6]) if kind[4:6].isdigit() else 12
        salt = bcrypt.gensalt(rounds, kind[1:3].encode()).decode()  # no hashing involved
        alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return salt + "".join(alphabet[b % 64] for b in os.urandom(31))
    method = kind.split(":", 1)[0]
    if method in ("pbkdf2", "scrypt"):
        digest_bytes = 64 if method == "scrypt" else 32
        return f"{kind}${os.urandom(8).hex()}${os.urandom(digest_bytes).hex()}"
    from werkzeug.security import generate_password_hash

    try:
        return generate_password_hash(os.urandom(24).hex(), method=kind)
    except (ValueError, TypeError):
        return generate_password_hash(os.urandom(24).hex(), method=DEFAULT_HASH_KIND)


class PasswordBackend:
    """Basic credentials checked against ``lookup(username) -> stored hash``."""

    name = "password"

    def __init__(self, lookup: UserLookup, *, realm: str = DEFAULT_CONFIG.basic_realm,
                 cache_seconds: float = DEFAULT_CONFIG.password_cache_seconds,
                 clock: Callable[[], float] | None = None,
                 verify: Callable[[str, str], bool] | None = None,
                 failures_per_minute: int = DEFAULT_CONFIG.auth_failures_per_minute,
                 account_failures_per_minute: int =
                 DEFAULT_CONFIG.auth_account_failures_per_minute,
                 host_failures_per_minute: int = DEFAULT_CONFIG.auth_host_failures_per_minute,
                 throttle_path: Path | None = None,
                 throttle_scope: str = "",
                 sample_hash: Callable[[], str | None] | None = None) -> None:
        self.lookup = lookup
        self.realm = realm
        self.cache_seconds = cache_seconds
        self.clock = clock or time.monotonic
        self.verify: Callable[[str, str], bool] = (
            verify or getattr(lookup, "verify", None) or verify_password)
        # Without a path the budgets live in this process alone (tests, one-process hosts).
        self.throttle = LoginThrottle(
            failures_per_minute, account_failures_per_minute, host_failures_per_minute,
            path=throttle_path, scope=throttle_scope, clock=clock or time.time)
        self._key = os.urandom(32)
        # digest of the credentials -> (expiry, digest of the stored hash they matched)
        self._cache: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()
        self._dummy_credential: Callable[[], str] | None = getattr(
            lookup, "dummy_credential", None)
        self._lock = threading.Lock()
        # The kind of hash real users have, so that an unknown user costs the same from
        # the very first request: learnt from one stored hash, then from every lookup.
        self._sample_hash = sample_hash or getattr(lookup, "sample_hash", None)
        self._dummy_kind: str | None = None
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
        digest = self._digest(f"{username}\0{password}")
        remembered = self._cached(digest)
        stored: str | None = None
        if remembered is not None:
            # One indexed read: the hash and active flag as they are now.
            stored = self.lookup(username)
            if stored is not None and hmac.compare_digest(remembered, self._digest(stored)):
                return Authenticated(username)
            self._forget(digest)
            if stored is None:
                return Denied(401, "Invalid username or password")
        ticket = self.throttle.begin(username, str(environ.get("REMOTE_ADDR") or ""))
        if not isinstance(ticket, Ticket):
            seconds = str(int(ticket) + 1)
            return Denied(429, f"Too many failed logins; retry in {seconds} s",
                          (("Retry-After", seconds),))
        try:
            good = self._check(username, password, stored)
        except BaseException:
            self.throttle.cancel(ticket)  # nothing was decided
            raise
        if good is None:  # the reserved failure stays counted
            return Denied(401, "Invalid username or password")
        self.throttle.succeeded(ticket)
        self._remember(digest, self._digest(good))
        return Authenticated(username)

    def _check(self, username: str, password: str, stored: str | None) -> str | None:
        """The stored hash ``password`` matches, or None; one hash either way."""
        if stored is None:
            stored = self.lookup(username)
        if stored is None:
            # An unknown user costs one check against a credential of the kind real users
            # have.
            self.verify(self._unknown_user_credential(), password)
            return None
        if self._dummy_credential is None:
            self._dummy_kind = hash_kind(stored)
        return stored if self.verify(stored, password) else None

    def _digest(self, text: str) -> bytes:
        """A keyed digest: what the cache keeps instead of passwords and hashes."""
        return hmac.new(self._key, text.encode("utf-8", "surrogatepass"),
                        hashlib.sha256).digest()

    def _unknown_user_credential(self) -> str:
        if self._dummy_credential is not None:
            return self._dummy_credential()
        return self._dummy_for(self._users_hash_kind())

    def _users_hash_kind(self) -> str:
        if self._dummy_kind is None:
            sample = self._sample_hash() if self._sample_hash is not None else None
            self._dummy_kind = hash_kind(sample) if sample else DEFAULT_HASH_KIND
        return self._dummy_kind

    def _dummy_for(self, kind: str) -> str:
        dummy = self._dummies.get(kind)
        if dummy is None:
            dummy = self._dummies[kind] = dummy_hash(kind)
        return dummy

    def _cached(self, digest: bytes) -> bytes | None:
        """The digest of the stored hash these credentials matched, while remembered."""
        if self.cache_seconds <= 0:
            return None
        with self._lock:
            entry = self._cache.get(digest)
            if entry is None:
                return None
            if entry[0] < self.clock():
                del self._cache[digest]
                return None
            self._cache.move_to_end(digest)
            return entry[1]

    def _forget(self, digest: bytes) -> None:
        with self._lock:
            self._cache.pop(digest, None)

    def _remember(self, digest: bytes, stored_digest: bytes) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            self._cache[digest] = (self.clock() + self.cache_seconds, stored_digest)
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
    if not sep or not username or "\0" in text:
        # A NUL is refused outright: PBKDF2's HMAC pads its key with zero bytes, so
        # "secret\0" would otherwise match a werkzeug hash of "secret".
        return None
    return username, password

