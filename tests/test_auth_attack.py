"""Authentication under attack: timing does not reveal which users exist, guessing
passwords cannot tie up the workers, and no header combination gets through a backend
that has not consented."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.security import generate_password_hash
from werkzeug.test import Client

from api_plugin.auth.password import PasswordBackend
from api_plugin.serving.mount import build_api, json_not_found, mount_into
from api_plugin.settings.config import Config
from api_plugin.store import Store
from api_plugin.store.users import create_user
from conftest import PREFIX, add_fab_users_table, seed_airflow_rows
from tests.servers import Server
from tests.test_auth import basic


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


class HashChecks:
    """Every stored hash a password was checked against, recorded where the check is
    made (``api_plugin.auth.hashes``), whichever backend code asked for it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import api_plugin.auth.hashes as hashes

        self.seen: list[str] = []
        real_check, real_bcrypt = hashes.check_password_hash, hashes.bcrypt
        seen = self.seen

        class RecordingBcrypt:
            @staticmethod
            def checkpw(secret: bytes, stored: bytes) -> bool:
                seen.append(stored.decode())
                return bool(real_bcrypt.checkpw(secret, stored))

        def check_password_hash(stored: str, password: str) -> bool:
            seen.append(stored)
            return real_check(stored, password)

        monkeypatch.setattr(hashes, "check_password_hash", check_password_hash)
        monkeypatch.setattr(hashes, "bcrypt", RecordingBcrypt)


def hash_cost(stored: str) -> tuple[str, int, int]:
    """What checking a password against ``stored`` computes: the algorithm with its
    parameters (bcrypt's ``$2b$10$``, ``pbkdf2:sha256:260000``), and the salt and digest
    sizes fed to it. Two hashes with equal costs take the same work to check."""
    if stored.startswith("$2"):
        return stored[:7], len(stored[7:29]), len(stored[29:])
    method, salt, digest = stored.split("$")
    return method, len(salt), len(digest)


def test_unknown_user_costs_as_much_as_a_wrong_password(
        sqlite_store: Store, flavor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Proved by what is computed, not by a stopwatch: every check, the unknown users'
    included, runs the users' own algorithm with the same parameters; the very first
    request of a fresh process (a new app) is an unknown user. Timings: bench/auth_timing.py."""
    real = realistic_hash("right", flavor)
    create_user(sqlite_store, "alice", real)
    checks = HashChecks(monkeypatch)
    client = client_for(sqlite_store, api__auth_failures_per_minute="0")
    for username in ["mallory", "alice", "nobody1", "alice", "nobody2"]:
        response = client.get(PREFIX + "/test", headers=basic(username, "guess"))
        assert response.status_code == 401
    assert len(checks.seen) == 5  # one check per request, unknown users included
    assert [hash_cost(h) for h in checks.seen] == [hash_cost(real)] * 5
    assert checks.seen[0] != real and checks.seen[1] == real
    assert client.get(PREFIX + "/test", headers=basic("alice", "right")).status_code == 200


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
def password_server(make_database: Callable[[str, str], str],
                    spawn_server: Callable[..., Server]) -> int:
    """``api-plugin serve`` with the password backend, 2 workers, one user with a real
    pbkdf2:260000 hash (about 0.1-0.2 s of CPU per check): its port."""
    url = make_database("airflow2", "sqlite")
    store = Store.open(url)
    seed_airflow_rows(store)
    create_user(store, "alice", realistic_hash("right", "airflow2"))
    store.dispose()
    return spawn_server(url, settings={"api__auth_backends": "password"}).port


def test_brute_force_does_not_slow_other_clients(password_server: int) -> None:
    port = password_server

    def get(headers: dict[str, str], source: str = "127.0.0.1") -> int:
        """One request from the loopback address ``source`` (the throttle's key)."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                          source_address=(source, 0))
        try:
            conn.request("GET", PREFIX + "/dags/nope/paused", headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def legit(n: int) -> Counter[int]:
        """The legitimate client, at another address than the attacker's."""
        return Counter(get(basic("alice", "right"), source="127.0.0.2") for _ in range(n))

    stop = threading.Event()
    attacks: Counter[int] = Counter()

    def attacker(k: int) -> None:
        i = 0
        while not stop.is_set():
            attacks[get(basic("alice", f"guess-{k}-{i}"))] += 1
            i += 1

    try:
        legit(10)  # both workers now hold alice's success in their cache
        threads = [threading.Thread(target=attacker, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(8)  # each worker spends its budget of 20 slow failed checks
        attacked = legit(100)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        stop.set()

    print(f"\nbrute force: {sum(attacks.values())} guesses {dict(attacks)}; the legitimate "
          f"client under attack: {dict(attacked)} (latencies: bench/auth_timing.py)")
    # Through auth to the app (the DAG does not exist) every time, while the guesses
    # were refused without hashing: the workers stayed free for the legitimate client.
    assert attacked == {404: 100}
    assert attacks[429] > 10 * attacks[401]
    assert set(attacks) == {401, 429}
