"""``auth/throttle.LoginThrottle`` driven directly, on a fake clock: what each budget
admits, the wait it computes when spent, what a success and a cancel take back, and
what the shared file holds. (``test_auth_throttle.py`` covers it through the password
backend and a real server.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from api_plugin.auth.throttle import KNOWN_SECONDS, WINDOW, LoginThrottle, Ticket


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def throttle(clock: Clock, per_client: int = 3, per_account: int = 5, per_host: int = 8,
             path: Path | None = None) -> LoginThrottle:
    return LoginThrottle(per_client, per_account, per_host, path=path, clock=clock)


def test_a_client_gets_its_budget_then_the_wait_until_the_oldest_leaves(
        clock: Clock) -> None:
    gate = throttle(clock)
    for _ in range(3):
        assert isinstance(gate.begin("alice", "192.0.2.1"), Ticket)
        clock.now += 10  # failures at +0, +10, +20
    assert gate.begin("alice", "192.0.2.1") == pytest.approx(WINDOW - 30)
    assert gate.begin("ALICE", "192.0.2.1") == pytest.approx(WINDOW - 30)  # same account
    clock.now += WINDOW - 30  # the first failure leaves the window
    assert isinstance(gate.begin("alice", "192.0.2.1"), Ticket)
    assert gate.begin("alice", "192.0.2.1") == pytest.approx(10)  # then the second


def test_the_account_budget_counts_every_address(clock: Clock) -> None:
    gate = throttle(clock)
    answers = [gate.begin("alice", f"192.0.2.{i}") for i in range(1, 8)]
    assert [isinstance(a, Ticket) for a in answers] == [True] * 5 + [False] * 2
    assert isinstance(gate.begin("bob", "192.0.2.99"), Ticket)  # another account


def test_the_host_budget_counts_every_account(clock: Clock) -> None:
    gate = throttle(clock)
    answers = [gate.begin(f"user{i}", f"198.51.100.{i}") for i in range(10)]
    assert [isinstance(a, Ticket) for a in answers] == [True] * 8 + [False] * 2


def test_a_success_forgets_its_failures_and_makes_the_client_known(clock: Clock) -> None:
    gate = throttle(clock)
    home = "192.0.2.10"
    gate.begin("alice", home)
    gate.begin("alice", home)
    ticket = gate.begin("alice", home)
    assert isinstance(ticket, Ticket)
    gate.succeeded(ticket)
    for i in range(1, 6):  # others spend alice's account budget
        gate.begin("alice", f"203.0.113.{i}")
    assert not isinstance(gate.begin("alice", "203.0.113.50"), Ticket)  # a stranger waits
    known = [gate.begin("alice", home) for _ in range(4)]  # its own budget only, from zero
    assert [isinstance(a, Ticket) for a in known] == [True] * 3 + [False]
    clock.now += KNOWN_SECONDS + 1  # no longer recent; the failures long gone, too
    for i in range(1, 6):
        gate.begin("alice", f"203.0.113.{i}")
    assert not isinstance(gate.begin("alice", home), Ticket)


def test_a_cancel_takes_the_reservation_back(clock: Clock) -> None:
    gate = throttle(clock, per_client=1)
    first = gate.begin("alice", "192.0.2.1")
    assert isinstance(first, Ticket) and first.row > 0
    gate.cancel(first)
    second = gate.begin("alice", "192.0.2.1")
    assert isinstance(second, Ticket)
    assert not isinstance(gate.begin("alice", "192.0.2.1"), Ticket)


def test_zero_turns_a_budget_off(clock: Clock) -> None:
    gate = throttle(clock, per_client=0, per_account=0, per_host=2)
    assert gate.enabled
    answers = [gate.begin("alice", "192.0.2.1") for _ in range(3)]
    assert [isinstance(a, Ticket) for a in answers] == [True, True, False]
    off = throttle(clock, 0, 0, 0)
    assert not off.enabled
    assert off.begin("alice", "192.0.2.1") == Ticket(0, b"")


def test_the_shared_file_holds_digests_only(clock: Clock, tmp_path: Path) -> None:
    path = tmp_path / "budgets" / "t.sqlite3"
    gate = throttle(clock, path=path)
    assert gate.shared
    ticket = gate.begin("alice.secret.name", "192.0.2.77")
    assert isinstance(ticket, Ticket)
    gate.succeeded(ticket)
    gate.begin("bob.secret.name", "192.0.2.78")
    other_worker = throttle(clock, path=path)  # another process's view of the same file
    for _ in range(2):
        other_worker.begin("bob.secret.name", "192.0.2.78")
    assert not isinstance(gate.begin("bob.secret.name", "192.0.2.78"), Ticket)
    with sqlite3.connect(path) as conn:
        stored = b"".join(bytes(str(value), "utf-8") if not isinstance(value, bytes) else value
                          for table in ("failures", "known")
                          for row in conn.execute(f"SELECT * FROM {table}")
                          for value in row)
    assert stored
    for secret in (b"alice", b"bob", b"secret", b"192.0.2"):
        assert secret not in stored
    assert (path.parent.stat().st_mode & 0o077) == 0


def test_in_memory_budgets_are_the_process_own(clock: Clock) -> None:
    gate = throttle(clock)
    assert not gate.shared
    other = throttle(clock)
    for _ in range(3):
        gate.begin("alice", "192.0.2.1")
    assert isinstance(other.begin("alice", "192.0.2.1"), Ticket)
