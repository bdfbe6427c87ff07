"""Authentication under attack: timing does not reveal which users exist, guessing
passwords cannot tie up the workers, and no header combination gets through a backend
that has not consented."""

from __future__ import annotations

import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.security import generate_password_hash
from werkzeug.test import Client

from api_plugin.auth.password import PasswordBackend
from api_plugin.config import Config
from api_plugin.mount import build_api, json_not_found, mount_into
from api_plugin.store import Store
from api_plugin.store.users import create_user
from conftest import PREFIX, add_fab_users_table, seed_airflow_rows
from tests.test_auth import basic
from tests.test_serve import free_port, wait_until_up


def realistic_hash(password: str, flavor: str) -> str:
    """The cost real deployments use: FAB's pbkdf2 default, bcrypt at 10 rounds."""
    if flavor == "airflow1":
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()
    return generate_password_hash(password, method="pbkdf2:sha256:260000")


@pytest.fixture
def sqlite_store(flavor: str, make_database: Callable[[str, str], str]) -> Iterator[Store]:
    """A seeded SQLite database of each flavor: these properties do not depend on the
    database server, so they are measured once per flavor, on SQLite."""
    url = make_database(flavor, "sqlite")
    add_fab_users_table(url, flavor)
    store = Store.open(url)
    seed_airflow_rows(store)
    yield store
    store.dispose()


#: Every failed-login budget off: these tests send many failures on purpose.
NO_THROTTLE = {"api__auth_failures_per_minute": "0", "api__auth_account_failures_per_minute": "0",
               "api__auth_host_failures_per_minute": "0"}


def client_for(store: Store, **settings_: str) -> Client:
    config = Config.load(environ={}, database__sql_alchemy_conn=str(store.engine.url),
                         **{"api__auth_backends": "password",
                            "api_auth__jwt_secret": "t" * 64, **settings_})
    return Client(mount_into(json_not_found, build_api(config, store), PREFIX))


def timed(client: Client, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    response = client.get(PREFIX + "/test", headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 401
    return elapsed


def test_unknown_user_costs_as_much_as_a_wrong_password(sqlite_store: Store,
                                                        flavor: str) -> None:
    create_user(sqlite_store, "alice", realistic_hash("right", flavor))
    client = client_for(sqlite_store, **NO_THROTTLE)
    # The very first request of a fresh process is an unknown user: its dummy hash must
    # already be of the users' kind, not a default one.
    first = timed(client, basic("mallory", "guess"))
    unknown, wrong = [first], []
    for i in range(10):
        wrong.append(timed(client, basic("alice", f"guess{i}")))
        unknown.append(timed(client, basic(f"nobody{i}", f"guess{i}")))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    print(f"\n{flavor}: unknown user {statistics.median(unknown) * 1000:.1f} ms, "
          f"wrong password {statistics.median(wrong) * 1000:.1f} ms (ratio {ratio:.2f}), "
          f"first unknown {first * 1000:.1f} ms")
    assert statistics.median(wrong) > 0.01  # a real hash was checked
    assert 0.8 < ratio < 1.25
    assert 0.5 < first / statistics.median(wrong) < 2


def test_failed_logins_are_throttled_without_hashing() -> None:
    now = [1000.0]
    checks = Counter[str]()

    def verify(stored: str, password: str) -> bool:
        checks[stored] += 1
        return password == "right"

    backend = PasswordBackend({"alice": "H"}.get, verify=verify, clock=lambda: now[0],
                              failures_per_minute=5, sample_hash=lambda: "H")

    def attempt(password: str, address: str = "10.0.0.1", user: str = "alice") -> int:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        outcome = backend.authenticate({"HTTP_AUTHORIZATION": f"Basic {token}",
                                        "REMOTE_ADDR": address})
        return getattr(outcome, "status", 200)

    assert attempt("right") == 200  # cached from now on
    assert [attempt(f"bad{i}") for i in range(5)] == [401] * 5
    hashed = sum(checks.values())
    assert [attempt(f"bad{i}") for i in range(50)] == [429] * 50
    assert sum(checks.values()) == hashed  # refused without hashing
    assert attempt("bad", user="nobody") == 401  # another account keeps its budget
    assert attempt("right") == 200  # a cached success is never throttled
    assert attempt("bad", address="10.0.0.2") == 401  # other clients keep their budget
    now[0] += 61
    assert attempt("bad") == 401


def jwt_shaped() -> st.SearchStrategy[str]:
    """Unsigned or wrongly signed tokens with Airflow's claims: ``alg: none``, another
    algorithm, a forged signature."""
    def segment(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    header = st.fixed_dictionaries(
        {"alg": st.sampled_from(["none", "None", "HS512", "HS256", "RS256", "EdDSA", ""])},
        optional={"kid": st.sampled_from(["not-used", "", "../../etc/passwd"]),
                  "typ": st.just("JWT")})
    times = st.integers(now - 10**6, now + 10**6)
    claims = st.fixed_dictionaries(
        {"sub": st.sampled_from(["alice", "admin", ""]),
         "aud": st.sampled_from(["apache-airflow", "other", ["apache-airflow"]])},
        optional={"exp": times, "nbf": times, "iat": times, "jti": st.text(max_size=8)})
    signature = st.sampled_from(["", "AAAA", "c2ln", segment("forged")])
    return st.tuples(header, claims, signature).map(
        lambda t: f"{segment(t[0])}.{segment(t[1])}.{t[2]}")


@pytest.mark.parametrize("backends", ["password", "deny_all", "password,deny_all",
                                      "airflow_jwt", "airflow_jwt,password"])
def test_no_header_combination_passes(sqlite_store: Store, backends: str) -> None:
    create_user(sqlite_store, "alice", bcrypt.hashpw(b"right", bcrypt.gensalt(4)).decode()
                if sqlite_store.flavor.name == "airflow1"
                else generate_password_hash("right", method="pbkdf2:sha256:1000"))
    client = client_for(sqlite_store, api__auth_backends=backends,
                        **NO_THROTTLE)
    schemes = st.sampled_from(["Basic", "basic", "BASIC", "Negotiate", "Bearer", "bearer",
                               "Digest", ""])
    junk = st.one_of(
        st.text(max_size=60),
        st.binary(max_size=60).map(lambda b: base64.b64encode(b).decode()),
        st.tuples(st.sampled_from(["alice", "ALICE", "alice\0", " alice", "", "admin"]),
                  st.sampled_from(["", "wrong", "right\0", "right ", "x" * 100]))
        .map(lambda up: base64.b64encode(f"{up[0]}:{up[1]}".encode()).decode()),
        jwt_shaped(),
    )
    spoof = st.dictionaries(
        st.sampled_from(["X-Remote-User", "Remote-User", "X-Forwarded-User",
                         "X-Forwarded-For", "Proxy-Authorization", "Cookie"]),
        st.sampled_from(["alice", "admin", "127.0.0.1", "session=alice"]), max_size=3)

    @given(scheme=schemes, value=junk, extra=spoof, spaces=st.sampled_from([" ", "  ", "\t"]))
    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(scheme: str, value: str, extra: dict[str, str], spaces: str) -> None:
        header = f"{scheme}{spaces}{value}".strip() if scheme else value
        headers = {**extra}
        if header and all(32 <= ord(c) < 127 or c == "\t" for c in header):
            headers["Authorization"] = header
        response = client.get(PREFIX + "/dags/example_etl/paused", headers=headers)
        assert response.status_code in (401, 403), (headers, response.status_code)
        assert response.json and "error" in response.json

    check()


@pytest.fixture
def password_server(tmp_path: Path, make_database: Callable[[str, str], str]) -> tuple[str, str]:
    """``api-plugin serve`` with the password backend, 2 workers, one user with a real
    pbkdf2:260000 hash (about 0.1-0.2 s of CPU per check)."""
    url = make_database("airflow2", "sqlite")
    store = Store.open(url)
    seed_airflow_rows(store)
    create_user(store, "alice", realistic_hash("right", "airflow2"))
    store.dispose()
    return url, str(tmp_path)


def test_brute_force_does_not_slow_other_clients(password_server: tuple[str, str]) -> None:
    url, folder = password_server
    port = free_port()
    env = {**os.environ, "API_PLUGIN_CONFIG": str(Path(folder) / "none.cfg"),
           "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": url,
           "API_PLUGIN__API__AUTH_BACKENDS": "password"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "api_plugin.cli", "serve", "--bind", f"127.0.0.1:{port}",
         "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}{PREFIX}"

    def get(headers: dict[str, str], source: str = "127.0.0.1") -> tuple[int, float]:
        """One request from the loopback address ``source`` (the throttle's key)."""
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                          source_address=(source, 0))
        try:
            conn.request("GET", PREFIX + "/dags/nope/paused", headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status, time.perf_counter() - started
        finally:
            conn.close()

    def legit_latencies(n: int) -> list[float]:
        """The legitimate client, at another address than the attacker's."""
        out = []
        for _ in range(n):
            status, seconds = get(basic("alice", "right"), source="127.0.0.2")
            assert status == 404  # through auth, to the app: the DAG does not exist
            out.append(seconds)
        return out

    stop = threading.Event()
    attacks: Counter[int] = Counter()

    def attacker(k: int) -> None:
        i = 0
        while not stop.is_set():
            attacks[get(basic("alice", f"guess-{k}-{i}"))[0]] += 1
            i += 1

    try:
        wait_until_up(base + "/test", proc)
        legit_latencies(10)  # both workers now hold alice's success in their cache
        quiet = legit_latencies(100)
        threads = [threading.Thread(target=attacker, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(8)  # each worker spends its budget of 20 slow failed checks
        attacked = legit_latencies(100)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=30)

    def p95(values: list[float]) -> float:
        return sorted(values)[int(len(values) * 0.95)]

    print(f"\nbrute force: {sum(attacks.values())} guesses {dict(attacks)}; legit p50/p95 "
          f"quiet {statistics.median(quiet) * 1000:.1f}/{p95(quiet) * 1000:.1f} ms, under "
          f"attack {statistics.median(attacked) * 1000:.1f}/{p95(attacked) * 1000:.1f} ms")
    assert attacks[429] > 10 * attacks[401]
    assert set(attacks) == {401, 429}
    assert p95(attacked) < max(0.05, 5 * p95(quiet))
