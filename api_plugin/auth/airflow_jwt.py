"""``airflow_jwt``: the bearer tokens an Airflow 3 api-server issues, checked as it checks them.

Airflow 3's ``POST /auth/token`` hands out a JWT signed with ``[api_auth] jwt_secret`` (the raw
configured string, HS512 unless ``jwt_algorithm`` says otherwise), or with the private key
at ``jwt_private_key_path``; its api-server validates with PyJWT against the same settings
(audience ``jwt_audience``, issuer ``jwt_issuer`` when set, leeway ``jwt_leeway``, ``exp``,
``iat`` and ``nbf`` required) and then refuses a token whose ``jti`` is in the
``revoked_token`` table (``/api/v2/auth/logout`` puts it there). This backend does the
same, so a token that works against Airflow's own API works here and one Airflow refuses
is refused here. The user is the token's ``sub``. On PostgreSQL the ``revoked_token``
lookup goes out with the request's first query rather than on its own, and is answered
before anything is written or sent (``store/deferred.py``).

The algorithms come from the configuration only: the token's header never chooses one,
so ``alg: none`` and an HMAC token "signed" with a public key are refused like any bad
signature. Without a key the backend refuses to be built: an empty key must never
verify anything.

Where the keys come from, in Airflow's order: ``trusted_jwks_url`` (here only a local JWKS
file; fetching keys over the network is not done), then ``jwt_private_key_path`` (its
public half), then ``jwt_secret``.

A token whose signature and claims were checked once is kept (its exact text, at most
``MAX_VERIFIED`` of them per process), so a client that sends the same token on every
request pays for the signature, the base64 and the JSON once: the same bytes checked
against the same key give the same answer. Only the clock can change that answer, so a
kept token's ``exp``, ``nbf`` and ``iat`` are compared with the time again on every use,
with the same leeway; ``revoked_token`` is read on every request as before.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from api_plugin.auth.base import Authenticated, Denied, Environ, NotAttempted, Outcome
from api_plugin.errors import Unauthorized
from api_plugin.settings.config import Config
from api_plugin.store.boundary import DatabaseFailure, DatabaseUnavailable
from api_plugin.store.deferred import DeferredRead, deferred

log = logging.getLogger(__name__)

#: A longer Authorization header is not a token Airflow made.
MAX_TOKEN = 8192
DEFAULT_AUDIENCE = "apache-airflow"
DEFAULT_LEEWAY = 10
REQUIRED_CLAIMS = ["exp", "iat", "nbf"]
SYMMETRIC = ("HS256", "HS384", "HS512")
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
              "ES256", "ES384", "ES512", "EdDSA")

#: Verified tokens a process keeps (each at most MAX_TOKEN characters): the ones used
#: longest ago go first.
MAX_VERIFIED = 256

RevokedCheck = Callable[[str], bool]


class JwtConfigurationError(ValueError):
    """The ``[api_auth]`` settings cannot verify tokens (no key, unusable key or algorithm)."""


@dataclass(frozen=True)
class JwtSettings:
    """What a token is checked against: one key (secret or public) or a set by ``kid``."""

    algorithms: tuple[str, ...]
    audience: tuple[str, ...]
    issuers: tuple[str, ...] = ()
    leeway: int = DEFAULT_LEEWAY
    key: Any = field(default=None, repr=False)
    keys_by_kid: Mapping[str, Any] = field(default_factory=dict, repr=False)


def _config_list(config: Config, key: str) -> tuple[str, ...]:
    raw = config.get("api_auth", key) or ""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _algorithms(config: Config, default: str | None, allowed: tuple[str, ...]) -> tuple[str, ...]:
    algorithms = _config_list(config, "jwt_algorithm")
    if algorithms == ("GUESS",):  # Airflow's own placeholder for "from the key"
        algorithms = ()
    if not algorithms:
        if default is None:
            raise JwtConfigurationError(
                "[api_auth] jwt_algorithm must be set when keys come from trusted_jwks_url")
        algorithms = (default,)
    for name in algorithms:
        if name not in allowed:
            raise JwtConfigurationError(
                f"[api_auth] jwt_algorithm {name!r} cannot be used with this key; "
                f"use one of {', '.join(allowed)}")
    return algorithms


def _jwk_thumbprint(public_key: Any) -> str:
    """The ``kid`` Airflow gives a key it derived from ``jwt_private_key_path``: SHA-256 of
    the key's JWK (as PyJWT writes it) in compact sorted JSON, base64url without padding."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

    if isinstance(public_key, RSAPublicKey):
        jwk: dict[str, Any] = RSAAlgorithm(RSAAlgorithm.SHA256).to_jwk(public_key, as_dict=True)
    elif isinstance(public_key, Ed25519PublicKey):
        jwk = OKPAlgorithm().to_jwk(public_key, as_dict=True)
    else:
        raise JwtConfigurationError(
            f"[api_auth] jwt_private_key_path holds a {type(public_key).__name__}; "
            "Airflow signs with RSA or Ed25519 keys")
    digest = hashlib.sha256(json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def _from_private_key(config: Config, path: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        private = load_pem_private_key(Path(path).expanduser().read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise JwtConfigurationError(
            f"[api_auth] jwt_private_key_path {path!r} is not a readable PEM private key "
            f"without a passphrase: {exc}") from None
    if isinstance(private, RSAPrivateKey):
        guess = "RS512"
    elif isinstance(private, Ed25519PrivateKey):
        guess = "EdDSA"
    else:
        raise JwtConfigurationError(
            f"[api_auth] jwt_private_key_path holds a {type(private).__name__}; "
            "Airflow signs with RSA or Ed25519 keys")
    public = private.public_key()
    kids = {_jwk_thumbprint(public): public}
    if configured_kid := config.get("api_auth", "jwt_kid"):
        kids[configured_kid] = public  # the kid Airflow's token generator writes when set
    return kids, _algorithms(config, guess, ASYMMETRIC)


def _from_jwks_file(config: Config, location: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    if location.startswith(("http://", "https://")):
        raise JwtConfigurationError(
            f"[api_auth] trusted_jwks_url {location!r}: api_plugin does not fetch keys over "
            "the network; save the JWKS document to a file and set trusted_jwks_url to its path")
    path = Path(location.removeprefix("file://")).expanduser()
    try:
        keyset = jwt.PyJWKSet.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise JwtConfigurationError(
            f"[api_auth] trusted_jwks_url {location!r} is not a readable JWKS file: {exc}"
        ) from None
    kids = {k.key_id: k.key for k in keyset.keys if k.key_id}
    if not kids:
        raise JwtConfigurationError(f"the JWKS file {location!r} holds no key with a 'kid'")
    return kids, _algorithms(config, None, ASYMMETRIC)


def settings_from_config(config: Config) -> JwtSettings:
    """The ``[api_auth]`` settings, as Airflow 3.3's api-server reads them.

    Raises ``JwtConfigurationError`` when no key is configured or the key and the
    algorithm do not go together.
    """
    audience = _config_list(config, "jwt_audience") or (DEFAULT_AUDIENCE,)
    issuers = _config_list(config, "jwt_issuer")
    leeway_text = config.get("api_auth", "jwt_leeway") or str(DEFAULT_LEEWAY)
    try:
        leeway = int(leeway_text)
    except ValueError:
        raise JwtConfigurationError(
            f"[api_auth] jwt_leeway is not a whole number of seconds: {leeway_text!r}") from None
    common: dict[str, Any] = {"audience": audience, "issuers": issuers, "leeway": leeway}
    if jwks := config.get("api_auth", "trusted_jwks_url"):
        kids, algorithms = _from_jwks_file(config, jwks)
        return JwtSettings(algorithms=algorithms, keys_by_kid=kids, **common)
    if private_key_path := config.get("api_auth", "jwt_private_key_path"):
        kids, algorithms = _from_private_key(config, private_key_path)
        return JwtSettings(algorithms=algorithms, keys_by_kid=kids, **common)
    secret = config.get("api_auth", "jwt_secret")
    if not secret:
        raise JwtConfigurationError(
            "the airflow_jwt backend needs Airflow's signing key: set [api_auth] jwt_secret "
            "(the value in Airflow's airflow.cfg, or AIRFLOW__API_AUTH__JWT_SECRET), "
            "jwt_private_key_path or trusted_jwks_url")
    algorithms = _algorithms(config, "HS512", SYMMETRIC)
    if len(secret.encode()) < 32:
        log.warning("[api_auth] jwt_secret is %d bytes long; HMAC keys should be at least as "
                    "long as the hash (64 bytes for HS512)", len(secret.encode()))
    return JwtSettings(algorithms=algorithms, key=secret, **common)


REVOKED = Denied(401, "Token has been revoked")


def _unreadable() -> Denied:
    log.warning("revoked_token could not be read; refusing the token", exc_info=True)
    return Denied(503, "The metadata database is unavailable")


def _refuse_revoked(rows: list[Any]) -> None:
    """The deferred lookup's verdict: a row means the token was revoked. Raised inside a
    write, it stops the write before anything is written."""
    if rows:
        raise Unauthorized(REVOKED.message, challenges=("Bearer",))


class _PendingRevocation:
    """The ``revoked_token`` lookup of an authenticated request, made to travel with the
    request's first query (``auth/base.py``, ``store/deferred.py``)."""

    def __init__(self, read: DeferredRead) -> None:
        self.read = read

    def during(self) -> AbstractContextManager[Any]:
        return deferred(self.read)

    def refusal(self) -> Denied | None:
        try:
            self.read.settle()
        except Unauthorized:
            return REVOKED
        except (DatabaseUnavailable, DatabaseFailure):
            return _unreadable()
        return None


class AirflowJwtBackend:
    """``Authorization: Bearer <JWT>`` checked against Airflow's ``[api_auth]`` settings and,
    when the database has one, its ``revoked_token`` table."""

    name = "airflow_jwt"

    def __init__(self, settings: JwtSettings, is_revoked: RevokedCheck | None = None) -> None:
        if settings.key is None and not settings.keys_by_kid:
            raise JwtConfigurationError("the airflow_jwt backend needs a key")
        self.settings = settings
        self.is_revoked = is_revoked
        self._decoder = jwt.PyJWT({"require": REQUIRED_CLAIMS, "verify_signature": True})
        # token -> (its claims, the first and the last second it is valid in)
        self._verified: OrderedDict[str, tuple[dict[str, Any], float, float]] = OrderedDict()
        self._verified_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, is_revoked: RevokedCheck | None = None
                    ) -> AirflowJwtBackend:
        return cls(settings_from_config(config), is_revoked)

    def challenge(self) -> str:
        return "Bearer"

    def authenticate(self, environ: Environ) -> Outcome:
        header = environ.get("HTTP_AUTHORIZATION")
        if not isinstance(header, str) or header[:7].lower() != "bearer ":
            return NotAttempted()
        token = header[7:].strip()
        if not token or len(token) > MAX_TOKEN:
            return Denied(401, "Malformed bearer token")
        try:
            claims = self._validated_claims(token)
        except jwt.ExpiredSignatureError:
            return Denied(401, "Token expired")
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError, RecursionError):
            return Denied(401, "Invalid token")  # the library's own refusals, or odd JSON
        subject = claims.get("sub")
        jti = claims.get("jti")
        if not isinstance(subject, str) or not subject or (
                jti is not None and not isinstance(jti, str)):
            return Denied(401, "Invalid token")
        if jti and self.is_revoked is not None:
            later = getattr(self.is_revoked, "later", None)
            read = later(jti, _refuse_revoked) if later is not None else None
            if read is not None:  # answered with the request's first query
                return Authenticated(subject, pending=_PendingRevocation(read))
            try:
                revoked = self.is_revoked(jti)
            except (DatabaseUnavailable, DatabaseFailure):
                return _unreadable()
            if revoked:
                return REVOKED
        return Authenticated(subject)

    def _validated_claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, audience, issuer and times check out;
        PyJWT's error otherwise. A token verified before is only checked against the
        clock again."""
        kept = self._verified.get(token)
        if kept is not None:
            claims, valid_from, valid_until = kept
            if valid_from <= time.time() < valid_until:
                with self._verified_lock:
                    if token in self._verified:
                        self._verified.move_to_end(token)
                return claims
            with self._verified_lock:  # out of its window: PyJWT says why, below
                self._verified.pop(token, None)
        claims = self._verified_claims(token)
        leeway = self.settings.leeway
        valid_from = max(int(claims["nbf"]), int(claims["iat"])) - leeway
        valid_until = int(claims["exp"]) + leeway  # PyJWT: expired once exp <= now - leeway
        with self._verified_lock:
            self._verified[token] = (claims, valid_from, valid_until)
            while len(self._verified) > MAX_VERIFIED:
                self._verified.popitem(last=False)
        return claims

    def _verified_claims(self, token: str) -> dict[str, Any]:
        settings = self.settings
        key = settings.key
        if key is None:
            kid = jwt.get_unverified_header(token).get("kid")
            key = settings.keys_by_kid.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise jwt.InvalidTokenError("unknown or missing 'kid'")
        claims: dict[str, Any] = self._decoder.decode(
            token, key, algorithms=list(settings.algorithms),
            audience=list(settings.audience), leeway=settings.leeway)
        if settings.issuers and claims.get("iss") not in settings.issuers:
            raise jwt.InvalidIssuerError("issuer not accepted")
        return claims
