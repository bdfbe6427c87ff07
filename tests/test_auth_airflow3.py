"""Authentication against Airflow 3: the ``airflow_jwt`` backend (tokens as Airflow 3.3.2's
api-server issues and validates them, revocation through ``revoked_token``) and the
``password`` backend over the simple auth manager's users and passwords file.

Tokens are minted with PyJWT with the claims and header Airflow's ``/auth/token`` gives
(``sub``, ``role``, ``jti``, ``aud``, ``nbf``, ``exp``, ``iat``; ``kid: not-used``); the
database is SQLite made from Airflow 3.3.2's own DDL (tests/data).
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm
from werkzeug.test import Client

from api_plugin.auth import airflow_jwt
from api_plugin.auth.airflow_jwt import (
    DEFAULT_LEEWAY,
    MAX_VERIFIED,
    AirflowJwtBackend,
    JwtConfigurationError,
    _jwk_thumbprint,
)
from api_plugin.auth.base import Authenticated, AuthMiddleware, Denied
from api_plugin.auth.loader import build_backends
from api_plugin.auth.users import (
    SimpleAuthManagerUsers,
    UserSourceError,
    default_passwords_file,
    parse_simple_users,
    user_source,
)
from api_plugin.serving.mount import build_api, json_not_found, mount_into
from api_plugin.settings.config import Config
from api_plugin.store import Store
from api_plugin.store.users import UserTable
from conftest import DATA, PREFIX
from tests.test_auth import basic

SECRET = "s" * 64  # long enough for HS512 (PyJWT warns below 64 bytes)
AUDIENCE = "apache-airflow"


def airflow3_database(folder: Path) -> str:
    """An empty Airflow 3.3.2 metadata database, from the DDL Airflow itself created."""
    path = folder / f"airflow3-{uuid.uuid4().hex[:6]}.db"
    ddl = (DATA / "airflow-3.3.2-schema.sql").read_text()
    conn = sqlite3.connect(path)
    try:  # sqlite_sequence is SQLite's own: it appears in a dump but cannot be created
        conn.executescript(ddl.replace("CREATE TABLE sqlite_sequence(name,seq);", ""))
        conn.commit()
    finally:
        conn.close()
    return f"sqlite:///{path}"


@pytest.fixture
def airflow3_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(airflow3_database(tmp_path))
    yield store
    store.dispose()


def claims(**overrides: Any) -> dict[str, Any]:
    """What Airflow 3.3.2's SimpleAuthManager puts in a token (airflow3.md §6)."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": "admin", "role": "admin", "teams": [],
                            "jti": uuid.uuid4().hex, "aud": AUDIENCE,
                            "nbf": now, "exp": now + 86400, "iat": now}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(key: Any = SECRET, algorithm: str = "HS512", headers: dict[str, Any] | None = None,
         **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=algorithm,
                      headers={"kid": "not-used", **(headers or {})})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def jwt_client(store: Store, backends: str = "airflow_jwt", **settings: str) -> Client:
    config = Config.load(environ={}, database__sql_alchemy_conn=str(store.engine.url),
                         api__auth_backends=backends,
                         **{"api_auth__jwt_secret": SECRET, **settings})
    return Client(mount_into(json_not_found, build_api(config, store), PREFIX))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(alg: str) -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "not-used"}).encode())
    return f"{header}.{_b64(json.dumps(claims()).encode())}."


def test_an_airflow_token_is_accepted_and_names_the_user(airflow3_store: Store) -> None:
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen.append(environ.get("REMOTE_USER"))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    config = Config.load(environ={}, api__auth_backends="airflow_jwt",
                         api_auth__jwt_secret=SECRET)
    client = Client(AuthMiddleware(app, build_backends(config, store=airflow3_store)))
    assert client.get("/", headers=bearer(mint(sub="viewer1", role="viewer"))).status_code == 200
    assert client.get("/", headers={"Authorization": "bearer " + mint()}).status_code == 200
    assert seen == ["viewer1", "admin"]
    through_api = jwt_client(airflow3_store).get(PREFIX + "/test", headers=bearer(mint()))
    assert through_api.status_code == 200, through_api.get_data(as_text=True)


def _hs256_token() -> str:
    return jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "not-used"})


def _tampered() -> str:
    head, _claims, signature = mint().split(".")
    forged = _b64(json.dumps(claims(sub="someone-else")).encode())
    return f"{head}.{forged}.{signature}"


REFUSED: list[tuple[str, Callable[[], str], str]] = [
    ("expired", lambda: mint(exp=int(time.time()) - 60, iat=int(time.time()) - 3600,
                             nbf=int(time.time()) - 3600), "Token expired"),
    ("not yet valid", lambda: mint(nbf=int(time.time()) + 600), "Invalid token"),
    ("issued in the future", lambda: mint(iat=int(time.time()) + 600), "Invalid token"),
    ("wrong audience", lambda: mint(aud="someone-else"), "Invalid token"),
    ("no audience", lambda: mint(aud=None), "Invalid token"),
    ("wrong key", lambda: mint(key="x" * 64), "Invalid token"),
    ("tampered claims", _tampered, "Invalid token"),
    ("alg none", lambda: _unsigned("none"), "Invalid token"),
    ("alg None", lambda: _unsigned("None"), "Invalid token"),
    ("another HMAC than configured", _hs256_token, "Invalid token"),
    ("no exp", lambda: mint(exp=None), "Invalid token"),
    ("no iat", lambda: mint(iat=None), "Invalid token"),
    ("no nbf", lambda: mint(nbf=None), "Invalid token"),
    ("no sub", lambda: mint(sub=None), "Invalid token"),
    ("empty sub", lambda: mint(sub=""), "Invalid token"),
    ("numeric jti", lambda: mint(jti=12), "Invalid token"),
    ("truncated", lambda: mint()[:-20], "Invalid token"),
    ("two segments", lambda: ".".join(mint().split(".")[:2]), "Invalid token"),
    ("garbage", lambda: "not-a-token", "Invalid token"),
    ("base64 junk", lambda: "e30.e30.e30", "Invalid token"),
    ("empty", lambda: "", "Malformed bearer token"),
    ("oversized", lambda: "a" * 9000, "Malformed bearer token"),
]


@pytest.mark.parametrize("name,make,message", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_tokens_get_401_with_a_bearer_challenge(airflow3_store: Store, name: str,
                                                       make: Callable[[], str],
                                                       message: str) -> None:
    client = jwt_client(airflow3_store)
    response = client.get(PREFIX + "/dags/etl_nightly/paused", headers=bearer(make()))
    assert response.status_code == 401, name
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == {"error": message}


def test_leeway_audience_list_and_issuer_follow_the_settings(airflow3_store: Store) -> None:
    now = int(time.time())
    just_expired = mint(exp=now - 5, iat=now - 100, nbf=now - 100)
    client = jwt_client(airflow3_store)
    assert client.get(PREFIX + "/test", headers=bearer(just_expired)).status_code == 200
    strict = jwt_client(airflow3_store, api_auth__jwt_leeway="0")
    assert strict.get(PREFIX + "/test", headers=bearer(just_expired)).status_code == 401
    listed = jwt_client(airflow3_store, api_auth__jwt_audience="other, apache-airflow")
    assert listed.get(PREFIX + "/test", headers=bearer(mint())).status_code == 200
    assert listed.get(PREFIX + "/test", headers=bearer(mint(aud="other"))).status_code == 200
    assert listed.get(PREFIX + "/test", headers=bearer(mint(aud="third"))).status_code == 401
    issuer = jwt_client(airflow3_store, api_auth__jwt_issuer="https://airflow.example")
    assert issuer.get(PREFIX + "/test", headers=bearer(
        mint(iss="https://airflow.example"))).status_code == 200
    for wrong in (mint(), mint(iss="https://evil.example")):
        assert issuer.get(PREFIX + "/test", headers=bearer(wrong)).status_code == 401
    hs256 = jwt_client(airflow3_store, api_auth__jwt_algorithm="HS256")
    assert hs256.get(PREFIX + "/test", headers=bearer(_hs256_token())).status_code == 200
    assert hs256.get(PREFIX + "/test", headers=bearer(mint())).status_code == 401


def test_a_revoked_token_is_refused_on_the_next_request(airflow3_store: Store) -> None:
    client = jwt_client(airflow3_store)
    jti = uuid.uuid4().hex
    token = mint(jti=jti)
    assert client.get(PREFIX + "/test", headers=bearer(token)).status_code == 200
    with airflow3_store.engine.begin() as conn:  # what /api/v2/auth/logout writes
        conn.exec_driver_sql("INSERT INTO revoked_token (jti, exp) VALUES (?, ?)",
                             (jti, "2099-01-01 00:00:00.000000"))
    refused = client.get(PREFIX + "/test", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.get_json() == {"error": "Token has been revoked"}
    assert client.get(PREFIX + "/test", headers=bearer(mint())).status_code == 200


def _backend(store: Store, **settings: str) -> AirflowJwtBackend:
    config = Config.load(environ={}, api__auth_backends="airflow_jwt",
                         **{"api_auth__jwt_secret": SECRET, **settings})
    (backend,) = build_backends(config, store=store)
    assert isinstance(backend, AirflowJwtBackend)
    return backend


def _shift_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Move the clock both the backend and PyJWT read ``seconds`` ahead."""
    real_time, real_datetime = time.time, datetime

    class Shifted(real_datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real_datetime.now(tz) + timedelta(seconds=seconds)

    monkeypatch.setattr(airflow_jwt.time, "time", lambda: real_time() + seconds)
    monkeypatch.setattr(jwt.api_jwt, "datetime", Shifted)


def test_a_token_is_verified_once_and_its_times_on_every_request(
        airflow3_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The signature and claims of a token used again are not checked again (one PyJWT
    decode for five requests), but a kept token still expires, and revocation is still
    read on every request."""
    backend = _backend(airflow3_store)
    decodes: list[str] = []
    real_decode = backend._decoder.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decodes.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(backend._decoder, "decode", counting_decode)
    reads: list[str] = []
    revoked = {"r" * 32}

    def is_revoked(jti: str) -> bool:
        reads.append(jti)
        return jti in revoked

    backend.is_revoked = is_revoked
    now = int(time.time())
    token = mint(jti="k" * 32, exp=now + 100, iat=now, nbf=now)
    environ = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    for _ in range(5):
        assert backend.authenticate(environ) == Authenticated("admin")
    assert decodes == [token]
    assert reads == ["k" * 32] * 5
    revoked.add("k" * 32)
    assert backend.authenticate(environ) == Denied(401, "Token has been revoked")
    revoked.discard("k" * 32)
    _shift_clock(monkeypatch, 100 + DEFAULT_LEEWAY - 1)  # inside the leeway: still good
    assert backend.authenticate(environ) == Authenticated("admin")
    _shift_clock(monkeypatch, 100 + DEFAULT_LEEWAY)  # PyJWT: expired once exp <= now - leeway
    assert backend.authenticate(environ) == Denied(401, "Token expired")
    assert decodes == [token, token]
    assert token not in backend._verified


def test_a_kept_token_changed_by_one_character_is_verified_afresh(
        airflow3_store: Store) -> None:
    backend = _backend(airflow3_store)
    token = mint()
    assert backend.authenticate({"HTTP_AUTHORIZATION": f"Bearer {token}"}) == \
        Authenticated("admin")
    head, body, signature = token.split(".")
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    for forged in (f"{head}.{body}.{flipped}", token + "A", token[:-1]):
        assert backend.authenticate({"HTTP_AUTHORIZATION": f"Bearer {forged}"}) == \
            Denied(401, "Invalid token"), forged
    for other_sub in ("viewer", "admin "):  # same header and signature, other claims
        forged_body = _b64(json.dumps(claims(sub=other_sub)).encode())
        assert backend.authenticate(
            {"HTTP_AUTHORIZATION": f"Bearer {head}.{forged_body}.{signature}"}) == \
            Denied(401, "Invalid token")


def test_kept_tokens_are_bounded(airflow3_store: Store) -> None:
    backend = _backend(airflow3_store)
    tokens = [mint() for _ in range(MAX_VERIFIED + 20)]
    for token in tokens:
        assert backend.authenticate({"HTTP_AUTHORIZATION": f"Bearer {token}"}) == \
            Authenticated("admin")
    assert len(backend._verified) == MAX_VERIFIED
    assert list(backend._verified) == tokens[20:]  # the ones used longest ago went first
    assert backend.authenticate({"HTTP_AUTHORIZATION": f"Bearer {tokens[0]}"}) == \
        Authenticated("admin")
    assert next(reversed(backend._verified)) == tokens[0]


def test_revocation_on_every_database_server(backend: str,
                                            make_database: Callable[[str, str], str]) -> None:
    """The revoked_token read on SQLite and PostgreSQL (the table as Airflow creates it)."""
    store = Store.open(make_database("airflow2", backend))
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE revoked_token (jti VARCHAR(32) NOT NULL, "
                                 "exp TIMESTAMP NOT NULL, CONSTRAINT revoked_token_pkey "
                                 "PRIMARY KEY (jti))")
        client = jwt_client(store)
        token = mint(jti="f" * 32)
        assert client.get(PREFIX + "/test", headers=bearer(token)).status_code == 200
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO revoked_token (jti, exp) VALUES ('" + "f" * 32 + "', "
                "'2099-01-01 00:00:00')")
        assert client.get(PREFIX + "/test", headers=bearer(token)).status_code == 401
        assert client.get(PREFIX + "/test", headers=bearer(mint())).status_code == 200
    finally:
        store.dispose()


def test_without_a_revoked_token_table_tokens_are_only_checked_cryptographically(
        tmp_path: Path, make_database: Callable[[str, str], str]) -> None:
    store = Store.open(make_database("airflow2", "sqlite"))
    try:
        client = jwt_client(store)
        assert client.get(PREFIX + "/test", headers=bearer(mint())).status_code == 200
        assert client.get(PREFIX + "/test", headers=bearer(mint(key="k" * 64))).status_code == 401
    finally:
        store.dispose()


@pytest.mark.parametrize("settings,complaint", [
    ({}, "needs Airflow's signing key"),
    ({"api_auth__jwt_secret": ""}, "needs Airflow's signing key"),
    ({"api_auth__jwt_secret": SECRET, "api_auth__jwt_algorithm": "none"}, "'none'"),
    ({"api_auth__jwt_secret": SECRET, "api_auth__jwt_algorithm": "RS256"}, "'RS256'"),
    ({"api_auth__jwt_secret": SECRET, "api_auth__jwt_leeway": "soon"}, "jwt_leeway"),
    ({"api_auth__trusted_jwks_url": "https://idp.example/jwks.json"}, "does not fetch keys"),
    ({"api_auth__jwt_private_key_path": "/nonexistent/key.pem"}, "not a readable PEM"),
])
def test_a_backend_without_a_usable_key_is_not_built(settings: dict[str, str],
                                                    complaint: str) -> None:
    config = Config.load(environ={}, api__auth_backends="airflow_jwt", **settings)
    with pytest.raises(JwtConfigurationError, match=complaint):
        build_backends(config)


@pytest.mark.filterwarnings("ignore::jwt.InsecureKeyLengthWarning")
def test_airflow_generated_short_secret_is_used_as_the_raw_string(airflow3_store: Store) -> None:
    """Airflow writes a short random jwt_secret and signs with the string itself."""
    short = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    client = jwt_client(airflow3_store, api_auth__jwt_secret=short)
    assert client.get(PREFIX + "/test", headers=bearer(mint(key=short))).status_code == 200
    decoded_bytes = base64.urlsafe_b64decode(short + "==")
    assert client.get(PREFIX + "/test",
                      headers=bearer(mint(key=decoded_bytes))).status_code == 401


def test_private_key_path_validates_with_the_public_half(airflow3_store: Store,
                                                         tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    (tmp_path / "jwt.pem").write_bytes(pem)
    kid = _jwk_thumbprint(private.public_key())
    client = jwt_client(airflow3_store, api_auth__jwt_private_key_path=str(tmp_path / "jwt.pem"))
    good = mint(key=private, algorithm="RS512", headers={"kid": kid})
    assert client.get(PREFIX + "/test", headers=bearer(good)).status_code == 200
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    refused = [
        mint(key=private, algorithm="RS512", headers={"kid": "someone-else"}),
        mint(key=private, algorithm="RS256", headers={"kid": kid}),  # not the configured alg
        _hmac_with_public_key(public_pem, kid),  # the classic confusion
        mint(key=SECRET, headers={"kid": kid}),  # the secret no longer counts
    ]
    for token in refused:
        assert client.get(PREFIX + "/test", headers=bearer(token)).status_code == 401
    configured_kid = jwt_client(airflow3_store, api_auth__jwt_kid="mine",
                                api_auth__jwt_private_key_path=str(tmp_path / "jwt.pem"))
    assert configured_kid.get(PREFIX + "/test", headers=bearer(
        mint(key=private, algorithm="RS512", headers={"kid": "mine"}))).status_code == 200


def _hmac_with_public_key(public_pem: bytes, kid: str) -> str:
    """An HS512 token keyed with the PEM text of the public key, built by hand (PyJWT
    itself refuses to use a PEM as an HMAC key)."""
    import hashlib
    import hmac

    header = _b64(json.dumps({"alg": "HS512", "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(claims()).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha512).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def test_a_local_jwks_file_gives_the_keys_by_kid(airflow3_store: Store, tmp_path: Path) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    jwk = OKPAlgorithm().to_jwk(private.public_key(), as_dict=True)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    with pytest.raises(JwtConfigurationError, match="jwt_algorithm must be set"):
        build_backends(Config.load(environ={}, api__auth_backends="airflow_jwt",
                                   api_auth__trusted_jwks_url=str(tmp_path / "jwks.json")))
    client = jwt_client(airflow3_store, api_auth__trusted_jwks_url=str(tmp_path / "jwks.json"),
                        api_auth__jwt_algorithm="EdDSA")
    good = mint(key=private, algorithm="EdDSA", headers={"kid": "k1"})
    assert client.get(PREFIX + "/test", headers=bearer(good)).status_code == 200
    no_kid = jwt.encode(claims(), private, algorithm="EdDSA")
    other = mint(key=ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA",
                 headers={"kid": "k1"})
    for token in (no_kid, other, mint(headers={"kid": "k1"})):
        assert client.get(PREFIX + "/test", headers=bearer(token)).status_code == 401


def test_chained_with_password_and_deny_all(airflow3_store: Store, tmp_path: Path) -> None:
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "admin-pw"}))
    chain = jwt_client(airflow3_store, "airflow_jwt,password",
                       core__simple_auth_manager_users="admin:admin",
                       core__simple_auth_manager_passwords_file=str(passwords))
    assert chain.get(PREFIX + "/test", headers=bearer(mint())).status_code == 200
    assert chain.get(PREFIX + "/test", headers=basic("admin", "admin-pw")).status_code == 200
    bare = chain.get(PREFIX + "/test")
    assert bare.status_code == 401
    assert bare.headers.getlist("WWW-Authenticate") == ["Bearer", 'Basic realm="api_plugin"']
    bad = chain.get(PREFIX + "/test", headers=bearer(mint(key="k" * 64)))
    assert bad.status_code == 401 and bad.get_json() == {"error": "Invalid token"}
    reversed_chain = jwt_client(airflow3_store, "password,airflow_jwt",
                                core__simple_auth_manager_passwords_file=str(passwords))
    assert reversed_chain.get(PREFIX + "/test", headers=bearer(mint())).status_code == 200
    deny = jwt_client(airflow3_store, "airflow_jwt,deny_all")
    assert deny.get(PREFIX + "/test", headers=bearer(mint())).status_code == 200
    # No credentials at all: told how to send some (the Bearer challenge), not refused.
    bare_deny = deny.get(PREFIX + "/test")
    assert bare_deny.status_code == 401
    assert bare_deny.headers.getlist("WWW-Authenticate") == ["Bearer"]
    assert deny.get(PREFIX + "/test", headers=bearer("junk")).status_code == 403
    deny_first = jwt_client(airflow3_store, "deny_all,airflow_jwt")
    assert deny_first.get(PREFIX + "/test", headers=bearer(mint())).status_code == 200


# --- password over Airflow 3's simple auth manager -------------------------------------


def simple_client(store: Store, passwords: Path, users: str = "admin:admin,viewer:viewer",
                  **settings: str) -> Client:
    config = Config.load(environ={}, database__sql_alchemy_conn=str(store.engine.url),
                         api__auth_backends="password",
                         core__simple_auth_manager_users=users,
                         core__simple_auth_manager_passwords_file=str(passwords), **settings)
    return Client(mount_into(json_not_found, build_api(config, store), PREFIX))


def test_simple_auth_manager_users_and_passwords_file(airflow3_store: Store,
                                                     tmp_path: Path) -> None:
    passwords = tmp_path / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({"admin": "Xy7secret", "viewer": "v-pw", "ghost": "g"}))
    client = simple_client(airflow3_store, passwords)
    assert client.get(PREFIX + "/test", headers=basic("admin", "Xy7secret")).status_code == 200
    assert client.get(PREFIX + "/test", headers=basic("viewer", "v-pw")).status_code == 200
    for user, password in [("admin", "xy7secret"), ("ADMIN", "Xy7secret"), ("admin", ""),
                           ("ghost", "g"),  # in the file but not in simple_auth_manager_users
                           ("nobody", "Xy7secret"), ("admin", "Xy7secret ")]:
        refused = client.get(PREFIX + "/test", headers=basic(user, password))
        assert refused.status_code == 401, (user, password)
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="api_plugin"'


def test_a_changed_passwords_file_takes_effect_on_the_next_request(airflow3_store: Store,
                                                                  tmp_path: Path) -> None:
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "first"}))
    client = simple_client(airflow3_store, passwords)
    assert client.get(PREFIX + "/test", headers=basic("admin", "first")).status_code == 200
    assert client.get(PREFIX + "/test", headers=basic("admin", "first")).status_code == 200
    passwords.write_text(json.dumps({"admin": "second!"}))
    os.utime(passwords, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert client.get(PREFIX + "/test", headers=basic("admin", "first")).status_code == 401
    assert client.get(PREFIX + "/test", headers=basic("admin", "second!")).status_code == 200
    passwords.write_text("{not json")  # half-written: refuse rather than guess
    os.utime(passwords, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    assert client.get(PREFIX + "/test", headers=basic("admin", "second!")).status_code == 401
    passwords.unlink()
    assert client.get(PREFIX + "/test", headers=basic("admin", "second!")).status_code == 401


def test_simple_users_compare_in_constant_time_and_unknown_users_cost_the_same() -> None:
    compared: list[tuple[str, str]] = []
    source = SimpleAuthManagerUsers({"admin": "admin"}, Path("/nonexistent"))

    def verify(stored: str, password: str) -> bool:
        compared.append((stored, password))
        return SimpleAuthManagerUsers.verify(stored, password)

    from api_plugin.auth.password import PasswordBackend

    backend = PasswordBackend(source, verify=verify, failures_per_minute=0)
    backend.authenticate({"HTTP_AUTHORIZATION": basic("mallory", "guess")["Authorization"]})
    assert len(compared) == 1  # an unknown user is compared too, against a random string
    assert compared[0][1] == "guess" and len(compared[0][0]) >= 16
    assert SimpleAuthManagerUsers.verify("pässword", "pässword")
    assert not SimpleAuthManagerUsers.verify("password", "passwor")


def test_all_admins_is_refused_rather_than_opening_the_api(airflow3_store: Store,
                                                          tmp_path: Path) -> None:
    with pytest.raises(UserSourceError, match="all_admins"):
        simple_client(airflow3_store, tmp_path / "p.json",
                      core__simple_auth_manager_all_admins="True")
    jwt_only = jwt_client(airflow3_store, core__simple_auth_manager_all_admins="True")
    assert jwt_only.get(PREFIX + "/test").status_code == 401


def test_user_source_is_chosen_by_what_the_database_holds(
        airflow3_store: Store, tmp_path: Path, make_database: Callable[[str, str], str]) -> None:
    config = Config.load(environ={}, core__simple_auth_manager_passwords_file=str(tmp_path))
    assert isinstance(user_source(airflow3_store, config), SimpleAuthManagerUsers)
    for flavor in ("airflow2", "airflow1"):
        store = Store.open(make_database(flavor, "sqlite"))
        assert isinstance(user_source(store, config), UserTable)
        store.dispose()
    with airflow3_store.engine.begin() as conn:  # Airflow 3 with the FAB auth manager
        conn.exec_driver_sql(
            "CREATE TABLE ab_user (id INTEGER PRIMARY KEY, first_name VARCHAR(256), "
            "last_name VARCHAR(256), username VARCHAR(512) COLLATE NOCASE UNIQUE, "
            "password VARCHAR(256), active BOOLEAN, email VARCHAR(512))")
    with_fab = Store.open(str(airflow3_store.engine.url))
    try:
        assert isinstance(user_source(with_fab, config), UserTable)
    finally:
        with_fab.dispose()


def test_default_passwords_file_and_users_setting() -> None:
    assert default_passwords_file({"AIRFLOW_HOME": "/opt/af"}) == Path(
        "/opt/af/simple_auth_manager_passwords.json.generated")
    assert default_passwords_file({}) == Path(
        "~/airflow/simple_auth_manager_passwords.json.generated").expanduser()
    assert parse_simple_users("admin:admin, viewer:viewer,,ops") == {
        "admin": "admin", "viewer": "viewer", "ops": ""}


def test_backend_refuses_to_exist_without_a_key() -> None:
    from api_plugin.auth.airflow_jwt import JwtSettings

    with pytest.raises(JwtConfigurationError):
        AirflowJwtBackend(JwtSettings(algorithms=("HS512",), audience=(AUDIENCE,)))
