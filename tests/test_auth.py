"""Authentication: every route behind every backend, Basic against both flavors' user
tables with real hashes, the password cache, and the open-API guard."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from typing import Any

import bcrypt
import jwt
import pytest
from werkzeug.security import generate_password_hash
from werkzeug.test import Client

from api_plugin.auth.base import AuthMiddleware, Denied
from api_plugin.auth.hashes import hash_password, verify_password
from api_plugin.auth.loader import UnknownBackend, build_backends, canonical_name
from api_plugin.auth.password import PasswordBackend, hash_kind
from api_plugin.auth.simple import DefaultBackend
from api_plugin.serving.mount import build_api, json_not_found, mount_into
from api_plugin.settings.config import Config
from api_plugin.store import Store
from api_plugin.store.users import create_user
from api_plugin.web.routes import build_url_map
from conftest import PREFIX, ApiHarness

SAMPLE_ARGS = {"dag_id": "example_etl", "execution_date": "2025-01-01T00:00:00",
               "task_id": "load", "value": "true", "name": "default_pool"}


def route_paths() -> list[tuple[str, str]]:
    """(method, path) of every rule of the URL map, its arguments from ``SAMPLE_ARGS``
    (HEAD follows GET; tests/test_url_map.py checks that the list covers the map)."""
    out = []
    for rule in build_url_map().iter_rules():
        path = rule.rule
        for key, value in SAMPLE_ARGS.items():
            path = path.replace(f"<{key}>", value)
        assert "<" not in path, f"add a sample value for the arguments of {rule.rule}"
        out += [(method, path) for method in sorted(rule.methods or ())
                if method not in ("HEAD", "OPTIONS")]
    return out


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


JWT_SECRET = "j" * 64


def bearer_token(user: str = "alice", key: str = JWT_SECRET) -> dict[str, str]:
    """A token as Airflow 3's api-server issues it (see test_auth_airflow3.py)."""
    now = int(time.time())
    token = jwt.encode({"sub": user, "role": "admin", "jti": uuid.uuid4().hex,
                        "aud": "apache-airflow", "nbf": now, "exp": now + 600, "iat": now},
                       key, algorithm="HS512", headers={"kid": "not-used"})
    return {"Authorization": f"Bearer {token}"}


def app_with(api: ApiHarness, backends: str) -> Client:
    config = Config.load(environ={}, database__sql_alchemy_conn=api.url,
                         api__auth_backends=backends, api_auth__jwt_secret=JWT_SECRET,
                         **api.settings)
    return Client(mount_into(json_not_found, build_api(config, api.store), PREFIX))


@pytest.mark.parametrize("method,path", route_paths())
@pytest.mark.parametrize("backends", ["deny_all", "password", "airflow.api.auth.backend.basic_auth",
                                      "password,deny_all", "airflow_jwt",
                                      "airflow_jwt,password"])
def test_no_route_answers_without_consent(api: ApiHarness, users: dict[str, str], method: str,
                                          path: str, backends: str) -> None:
    client = app_with(api, backends)
    denied = client.open(PREFIX + path, method=method, json={})
    assert denied.status_code in (401, 403)
    assert denied.headers["Content-Type"] == "application/json"
    assert "error" in denied.get_json() or method == "HEAD"
    for wrong_credentials in (basic("alice", "nope"), bearer_token(key="k" * 64)):
        wrong = client.open(PREFIX + path, method=method, json={}, headers=wrong_credentials)
        assert wrong.status_code in (401, 403)
    goods = [basic("alice", "s3cret")] if "password" in backends or "basic" in backends else []
    if "airflow_jwt" in backends:
        goods.append(bearer_token())
    for credentials in goods or [basic("alice", "s3cret")]:
        good = client.open(PREFIX + path, method=method, json={}, headers=credentials)
        if backends.startswith("deny_all"):
            assert good.status_code == 403
        else:
            assert good.status_code not in (401, 403), good.get_data(as_text=True)


def test_password_challenges_and_errors(api: ApiHarness, users: dict[str, str]) -> None:
    client = app_with(api, "password")
    response = client.get(PREFIX + "/test")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="api_plugin"'
    for header in ["Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(),
                   "Basic " + "A" * 9000, "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
                   "Negotiate abc", "Bearer x"]:
        answer = client.get(PREFIX + "/test", headers={"Authorization": header})
        assert answer.status_code == 401 and answer.get_json()["error"]
    assert client.get(PREFIX + "/test", headers=basic("ALICE", "s3cret")).status_code == (
        200 if api.flavor == "airflow2" else 401)  # FAB's usernames are case-insensitive
    long_pw = client.get(PREFIX + "/test", headers=basic("alice", "x" * 100))
    assert long_pw.status_code == 401
    assert client.get(PREFIX + "/test", headers=basic("alice", "s3cret")).status_code == 200


def test_several_backends_list_every_challenge(api: ApiHarness) -> None:
    config = Config.load(environ={}, api__auth_backends="password, kerberos")
    backends = build_backends(config, lambda user: None)
    response = Client(AuthMiddleware(json_not_found, backends)).get("/x")
    assert response.status_code == 401
    assert response.headers.getlist("WWW-Authenticate") == [
        'Basic realm="api_plugin"', "Negotiate"]


def test_remote_user_reaches_the_app(users: dict[str, str], api: ApiHarness) -> None:
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen.append(environ.get("REMOTE_USER"))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    config = Config.load(environ={}, api__auth_backends="password", **api.settings)
    from api_plugin.auth.users import user_source

    client = Client(AuthMiddleware(app, build_backends(config, user_source(api.store, config))))
    assert client.get("/", headers=basic("alice", "s3cret")).status_code == 200
    assert seen == ["alice"]


def test_hash_formats_of_both_flavors() -> None:
    fab = generate_password_hash("pw", method="pbkdf2:sha256:260000")
    scrypt = generate_password_hash("pw", method="scrypt")
    airflow1 = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    for stored in (fab, scrypt, airflow1, hash_password("pw", "airflow1"),
                   hash_password("pw", "airflow2")):
        assert verify_password(stored, "pw") and not verify_password(stored, "px")
    assert not verify_password("$2b$12$malformed", "pw")
    assert not verify_password(airflow1, "p" * 80)
    assert not verify_password("plaintext", "plaintext")
    assert hash_kind(airflow1) == "$2b$04$" and hash_kind(fab) == "pbkdf2:sha256:260000"


def test_password_cache_counts_checks_and_expires() -> None:
    calls: list[str] = []
    now = [0.0]
    stored = generate_password_hash("pw", method="pbkdf2:sha256:1000")

    def verify(stored_hash: str, password: str) -> bool:
        calls.append(stored_hash)
        return verify_password(stored_hash, password)

    backend = PasswordBackend({"bob": stored}.get, cache_seconds=60, clock=lambda: now[0],
                              verify=verify)
    env = {"HTTP_AUTHORIZATION": basic("bob", "pw")["Authorization"]}
    assert backend.authenticate(env).__class__.__name__ == "Authenticated"
    assert backend.authenticate(env).__class__.__name__ == "Authenticated"
    assert len(calls) == 1  # the second was served from the cache
    wrong = {"HTTP_AUTHORIZATION": basic("bob", "px")["Authorization"]}
    assert isinstance(backend.authenticate(wrong), Denied)
    assert isinstance(backend.authenticate(wrong), Denied)
    assert len(calls) == 3  # failures are never cached
    now[0] = 61
    backend.authenticate(env)
    assert len(calls) == 4  # expired
    unknown = {"HTTP_AUTHORIZATION": basic("nobody", "pw")["Authorization"]}
    assert isinstance(backend.authenticate(unknown), Denied)
    assert len(calls) == 5 and hash_kind(calls[-1]) == hash_kind(stored)  # same cost


def test_names_and_open_api_guard() -> None:
    assert canonical_name("airflow.contrib.auth.backends.password_auth") == "password"
    assert canonical_name("airflow.api.auth.backend.kerberos_auth") == "kerberos"
    with pytest.raises(UnknownBackend):
        canonical_name("airflow.api.auth.backend.session")
    guard = DefaultBackend(allow_open_api=False)
    assert isinstance(guard.authenticate({"REMOTE_ADDR": "10.1.2.3"}), Denied)
    assert not isinstance(guard.authenticate({"REMOTE_ADDR": "127.0.0.1"}), Denied)
    assert not isinstance(guard.authenticate({"REMOTE_ADDR": "::1"}), Denied)
    assert not isinstance(DefaultBackend(True).authenticate({"REMOTE_ADDR": "10.1.2.3"}), Denied)
    for unprovable in ({}, {"REMOTE_ADDR": ""}, {"REMOTE_ADDR": "unix:/run/api.sock"},
                       {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.1.2.3"},
                       {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=10.1.2.3"},
                       {"REMOTE_ADDR": "127.0.0.1", "werkzeug.proxy_fix.orig": {}}):
        assert isinstance(guard.authenticate(unprovable), Denied), unprovable
        assert not isinstance(DefaultBackend(True).authenticate(unprovable), Denied)


def test_users_create_cli_writes_the_flavor_format(api: ApiHarness) -> None:
    if api.flavor == "airflow3":
        # A fresh Airflow 3 keeps its users outside the database (simple auth manager).
        with pytest.raises(ValueError, match="simple_auth_manager"):
            create_user(api.store, "carol", hash_password("pw", api.flavor))
        return
    create_user(api.store, "carol", hash_password("pw", api.flavor))
    from api_plugin.store.users import user_lookup

    stored = user_lookup(api.store)("carol")
    assert stored is not None and verify_password(stored, "pw")
    assert stored.startswith("$2b$" if api.flavor == "airflow1" else "pbkdf2:sha256:260000$")
    assert isinstance(api.store, Store)
