"""The failed-login throttle: counted per account and client (IPv6 by /64), per account and
per host, shared by every worker of the host; never turned against other accounts or
against clients that logged in recently; and revocation of a remembered login at once.

In-process cases drive ``PasswordBackend`` with a fake clock and count the hashes it
computes; the server cases run ``api-plugin serve`` with two gunicorn workers and send
guesses from 20 loopback addresses.
"""

from __future__ import annotations

import base64
import http.client
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import update
from werkzeug.security import generate_password_hash
from werkzeug.test import Client

from api_plugin.auth.hashes import verify_password
from api_plugin.auth.password import PasswordBackend
from api_plugin.auth.throttle import LoginThrottle, Ticket, client_key
from api_plugin.serving.mount import build_api, json_not_found, mount_into
from api_plugin.settings.config import Config
from api_plugin.store import Store
from api_plugin.store.users import create_user
from conftest import PREFIX, seed_airflow_rows
from tests.servers import Server
from tests.test_auth import basic

ADDRESSES = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(400)]


class Harness:
    """A PasswordBackend over two users, with a fake clock and a count of hashes."""

    def __init__(self, throttle_path: Path | None, **budgets: int) -> None:
        self.now = 1_000_000.0
        self.hashes = 0
        self.users = {"alice": "right-a", "bob": "right-b"}
        settings = {"failures_per_minute": 5, "account_failures_per_minute": 12,
                    "host_failures_per_minute": 40, **budgets}

        def verify(stored: str, password: str) -> bool:
            self.hashes += 1
            return stored == f"hash:{password}"

        self.backend = PasswordBackend(
            lambda user: f"hash:{self.users[user]}" if user in self.users else None,
            verify=verify, clock=lambda: self.now, cache_seconds=0,
            throttle_path=throttle_path, sample_hash=lambda: "hash:x", **settings)

    def attempt(self, user: str, password: str, address: str) -> int:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        outcome = self.backend.authenticate({"HTTP_AUTHORIZATION": f"Basic {token}",
                                             "REMOTE_ADDR": address})
        return int(getattr(outcome, "status", 200))


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path / "throttle" / "t.sqlite3")


def test_failures_at_one_account_never_refuse_another(harness: Harness) -> None:
    nat = "198.51.100.7"
    answers = Counter(harness.attempt("alice", f"guess{i}", nat) for i in range(60))
    assert answers == {401: 5, 429: 55}
    assert harness.attempt("bob", "right-b", nat) == 200  # same address, other account
    assert harness.attempt("bob", "wrong", nat) == 401
    assert harness.attempt("nobody", "x", nat) == 401
    assert harness.attempt("alice", "right-a", nat) == 429  # its own budget is spent
    harness.now += 61
    assert harness.attempt("alice", "right-a", nat) == 200


def test_rotating_addresses_are_bounded_by_the_account_budget(harness: Harness) -> None:
    answers = Counter(harness.attempt("alice", f"g{i}-{a}", address)
                      for i in range(20) for a, address in enumerate(ADDRESSES[:20]))
    assert answers == {401: 12, 429: 400 - 12}
    assert harness.hashes == 12  # a refusal costs no hash
    harness.now += 61
    assert harness.attempt("alice", "right-a", ADDRESSES[0]) == 200


def test_a_recent_client_is_not_refused_for_others_failures(harness: Harness) -> None:
    home = "192.0.2.10"
    assert harness.attempt("alice", "right-a", home) == 200
    for address in ADDRESSES[:20]:
        for i in range(3):
            harness.attempt("alice", f"guess{i}", address)
    assert harness.attempt("alice", "right-a", "203.0.113.99") == 429  # a new client waits
    response = harness.backend.authenticate({
        "HTTP_AUTHORIZATION": basic("alice", "right-a")["Authorization"],
        "REMOTE_ADDR": "203.0.113.99"})
    assert ("Retry-After", "61") in getattr(response, "response_headers", ())
    assert harness.attempt("alice", "right-a", home) == 200  # the known one does not
    assert [harness.attempt("alice", "oops", home) for _ in range(6)] == [401] * 5 + [429]
    harness.now += 7 * 24 * 3600 + 1  # a week later the client is no longer "recent"
    for address in ADDRESSES[:20]:
        harness.attempt("alice", "guess", address)
    assert harness.attempt("alice", "right-a", home) == 429


def test_ipv6_clients_are_grouped_by_their_64(harness: Harness) -> None:
    assert client_key("2001:db8:1:2::1") == client_key("[2001:db8:1:2:ffff::9]")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("unix:/run/x.sock") == "unix:/run/x.sock"
    answers = [harness.attempt("alice", "g", f"2001:db8:1:2::{i:x}") for i in range(1, 8)]
    assert answers == [401] * 5 + [429] * 2
    assert harness.attempt("alice", "g", "2001:db8:1:3::1") == 401


def test_spraying_many_accounts_keeps_hashing_bounded(harness: Harness) -> None:
    for i in range(300):
        harness.attempt(f"user{i}", "guess", ADDRESSES[i])
    assert harness.hashes == 40
    assert harness.attempt("bob", "right-b", ADDRESSES[399]) == 429  # the host valve is shut
    assert harness.attempt("alice", "right-a", "192.0.2.1") == 429
    harness.now += 61
    assert harness.attempt("alice", "right-a", "192.0.2.1") == 200


def test_workers_share_the_budgets_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "t.sqlite3"
    workers = [Harness(path), Harness(path)]
    answers = Counter(workers[i % 2].attempt("alice", f"guess-number-{i}", ADDRESSES[i])
                      for i in range(40))
    assert answers == {401: 12, 429: 28}
    alone = [Harness(None), Harness(None)]  # per-process budgets would add up
    answers = Counter(alone[i % 2].attempt("alice", f"guess-number-{i}", ADDRESSES[i])
                      for i in range(40))
    assert answers == {401: 24, 429: 16}
    content = b"".join(p.read_bytes() for p in path.parent.iterdir())
    # Secrets long enough that random digest bytes cannot spell them by chance.
    for secret in (b"alice", b"right-a", b"guess-number-1", ADDRESSES[0].encode()):
        assert secret not in content  # keyed digests only
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"


def test_an_unsafe_folder_falls_back_to_per_process_budgets(tmp_path: Path) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    throttle = LoginThrottle(5, 12, 40, path=open_folder / "t.sqlite3")
    assert not throttle.shared and not (open_folder / "t.sqlite3").exists()
    assert LoginThrottle(5, 12, 40, path=tmp_path / "mine" / "t.sqlite3").shared


def test_concurrent_threads_cannot_overshoot(tmp_path: Path) -> None:
    harness = Harness(tmp_path / "t" / "t.sqlite3")
    with ThreadPoolExecutor(8) as pool:
        answers = Counter(pool.map(
            lambda i: harness.attempt("alice", f"g{i}", ADDRESSES[i]), range(100)))
    assert answers == {401: 12, 429: 88}


# --- revocation of a remembered login (issue: deactivated user, changed password) -------


@pytest.fixture
def airflow2_store(backend: str, make_seeded_store: Callable[[str, str], Store]) -> Store:
    return make_seeded_store("airflow2", backend)


def test_a_deactivated_user_or_changed_password_stops_working_at_once(
        airflow2_store: Store) -> None:
    hashes: list[str] = []

    def counting_verify(stored: str, password: str) -> bool:
        hashes.append(stored)
        return verify_password(stored, password)

    from api_plugin.store.users import user_lookup

    create_user(airflow2_store, "carol", generate_password_hash("one", "pbkdf2:sha256:1000"))
    backend = PasswordBackend(user_lookup(airflow2_store), verify=counting_verify,
                              cache_seconds=3600)
    env = {"HTTP_AUTHORIZATION": basic("carol", "one")["Authorization"],
           "REMOTE_ADDR": "127.0.0.1"}
    statuses = [getattr(backend.authenticate(env), "status", 200) for _ in range(20)]
    assert statuses == [200] * 20 and len(hashes) == 1  # one hash for twenty requests
    users = airflow2_store.tables.users
    with airflow2_store.write() as conn:
        conn.execute(update(users).where(users.c.username == "carol").values(active=False))
    assert getattr(backend.authenticate(env), "status", 200) == 401
    with airflow2_store.write() as conn:
        conn.execute(update(users).where(users.c.username == "carol").values(active=True))
    assert getattr(backend.authenticate(env), "status", 200) == 200
    with airflow2_store.write() as conn:
        conn.execute(update(users).where(users.c.username == "carol").values(
            password=generate_password_hash("two", "pbkdf2:sha256:1000")))
    assert getattr(backend.authenticate(env), "status", 200) == 401
    env2 = {**env, "HTTP_AUTHORIZATION": basic("carol", "two")["Authorization"]}
    before = len(hashes)
    assert [getattr(backend.authenticate(env2), "status", 200) for _ in range(5)] == [200] * 5
    assert len(hashes) == before + 1


def test_revocation_through_the_app(airflow2_store: Store, tmp_path: Path) -> None:
    create_user(airflow2_store, "dave", generate_password_hash("pw", "pbkdf2:sha256:1000"))
    config = Config.load(environ={}, database__sql_alchemy_conn=str(airflow2_store.engine.url),
                         api__auth_backends="password", api__password_cache_seconds="3600",
                         api__auth_throttle_path=str(tmp_path / "t" / "t.sqlite3"))
    client = Client(mount_into(json_not_found, build_api(config, airflow2_store), PREFIX))
    assert client.get(PREFIX + "/test", headers=basic("dave", "pw")).status_code == 200
    users = airflow2_store.tables.users
    with airflow2_store.write() as conn:
        conn.execute(update(users).where(users.c.username == "dave").values(active=False))
    assert client.get(PREFIX + "/test", headers=basic("dave", "pw")).status_code == 401


# --- two gunicorn workers, 20 addresses ----------------------------------------------------


@pytest.fixture
def throttled_server(tmp_path: Path, make_database: Callable[[str, str], str],
                     spawn_server: Callable[..., Server]) -> tuple[int, Path]:
    """``api-plugin serve`` (2 workers, password backend, default budgets) over a database
    with alice and bob (cheap hashes: the budgets, not the hash cost, are under test)."""
    url = make_database("airflow2", "sqlite")
    store = Store.open(url)
    seed_airflow_rows(store)
    for user in ("alice", "bob"):
        create_user(store, user, generate_password_hash(f"right-{user}", "pbkdf2:sha256:1000"))
    store.dispose()
    throttle_file = tmp_path / "throttle" / "auth.sqlite3"
    server = spawn_server(url, settings={"api__auth_backends": "password",
                                         "api__auth_throttle_path": str(throttle_file)})
    return server.port, throttle_file


def _get(port: int, headers: dict[str, str], source: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30,
                                      source_address=(source, 0))
    try:
        conn.request("GET", PREFIX + "/dags/etl_nightly/paused", headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_twenty_addresses_two_workers_get_the_account_budget(
        throttled_server: tuple[int, Path]) -> None:
    port, throttle_file = throttled_server
    sources = [f"127.0.0.{i}" for i in range(2, 22)]
    assert _get(port, basic("bob", "right-bob"), sources[0]) == 200
    guesses = [(source, i) for i in range(20) for source in sources]
    with ThreadPoolExecutor(8) as pool:
        answers = Counter(pool.map(
            lambda g: _get(port, basic("alice", f"guess-{g[0]}-{g[1]}"), g[0]), guesses))
    print(f"\n400 guesses at one account from 20 addresses over 2 workers: {dict(answers)}")
    assert answers == {401: 60, 429: 340}  # the default account budget, exactly
    # The same addresses, other accounts: untouched; and bob's known address too.
    assert _get(port, basic("bob", "right-bob"), sources[5]) == 200
    assert _get(port, basic("bob", "right-bob"), sources[0]) == 200
    assert _get(port, basic("alice", "right-alice"), "127.0.0.99") == 429  # a new client
    assert throttle_file.is_file()


def test_a_damaged_budgets_file_never_refuses_logins(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A budgets file that cannot be used (here: not a database at all) costs the host its
    shared counts, never its users' logins: the worker counts on its own and says so."""
    path = tmp_path / "shared" / "t.sqlite3"
    throttle = LoginThrottle(5, 12, 40, path=path)
    path.write_bytes(b"this is not a database" * 100)
    ticket = throttle.begin("alice", "192.0.2.1")
    assert isinstance(ticket, Ticket)
    throttle.succeeded(ticket)
    assert not throttle.shared
    assert "keeps its own budgets" in caplog.text
    for _ in range(5):
        assert isinstance(throttle.begin("bob", "192.0.2.2"), Ticket)
    assert not isinstance(throttle.begin("bob", "192.0.2.2"), Ticket)  # still budgeted
