"""Budgets of failed logins, shared by every worker process of a host.

Each failed Basic check costs one deliberately slow hash, so failures need a budget; but a
budget keyed on the wrong thing turns against users (one attacker behind a NAT locking
out everyone there) or is walked around (rotating addresses). Failures are counted in a
sliding window (60 s) under three keys:

- **account and client** (``failures_per_minute``): one client's guesses at one account.
  The client is its address, an IPv6 address grouped by its /64 (one host usually owns a
  whole /64). Failures at one account never count against another account.
- **account** (``account_failures_per_minute``): guesses at one account from every
  address together, so rotating addresses does not multiply the budget.
- **host** (``host_failures_per_minute``): all failures together, so spraying many
  usernames from many addresses cannot keep the workers hashing; a safety valve sized
  far above what people mistyping produce.

A client whose credentials for an account succeeded recently (``known_seconds``, 7 days)
is remembered by a keyed fingerprint of account and client: the account and host
budgets never refuse it, only its own failures do. So when an account is under attack,
its usual clients keep working while a client it has never logged in from is answered
429 until the window has room again.

Past a budget the answer is 429 at once, before any lookup or hash. Budgets are decided
from the username and the address alone, never from whether the account exists, so the
throttle tells nothing about which accounts exist. A request that passes reserves its
failure first (one short SQLite transaction), and a success takes it back: workers racing
each other cannot overshoot, so the configured number is the number.

The state is a small SQLite file (WAL, no fsync: losing it on a crash only resets the
counts) in a folder only this user can write, so it needs no server and is shared by every
process of the host that uses the same file; it holds keyed digests only, never a
username, an address or a password. Several hosts each keep their own budgets: behind a
load balancer the account budget is per host (multiply by the hosts).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import logging
import os
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from api_plugin.settings.config import DEFAULT_CONFIG

log = logging.getLogger(__name__)
_T = TypeVar("_T")

WINDOW = 60.0
KNOWN_SECONDS = 7 * 24 * 3600.0
MAX_KNOWN = 100_000
FILE_NAME = "auth-throttle.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY, pair BLOB NOT NULL, account BLOB NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS failures_pair ON failures (pair, at);
CREATE INDEX IF NOT EXISTS failures_account ON failures (account, at);
CREATE INDEX IF NOT EXISTS failures_at ON failures (at);
CREATE TABLE IF NOT EXISTS known (pair BLOB PRIMARY KEY, until REAL NOT NULL);
CREATE INDEX IF NOT EXISTS known_until ON known (until);
"""


def client_key(address: str) -> str:
    """The client a failure is counted for: an IPv4 address, an IPv6 address's /64
    (IPv4-mapped IPv6 as the IPv4 address), or the raw text for anything else."""
    text = address.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def default_path() -> Path:
    """``<tmp>/api_plugin-<uid>/auth-throttle.sqlite3``: local to the host, per user."""
    return Path(tempfile.gettempdir()) / f"api_plugin-{os.getuid()}" / FILE_NAME


def _private_file(path: Path) -> bool:
    """Create ``path`` (and its folder) for this user alone; False when the folder is not
    ours or others can write to it (someone could then tamper with the budgets)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = path.parent.lstat()
        if (not stat.S_ISDIR(folder.st_mode) or folder.st_uid != os.getuid()
                or folder.st_mode & 0o022):
            return False
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        return path.lstat().st_uid == os.getuid()
    except OSError:
        return False


#: Connections a forked child inherited: kept open, never used (see ``_connection``).
_INHERITED: list[sqlite3.Connection] = []


@dataclass(frozen=True)
class Ticket:
    """A reserved failure: left in place when the check fails, taken back on success."""

    row: int
    pair: bytes


class LoginThrottle:
    """The three failure budgets and the known clients, in one SQLite file (or, with
    ``path=None``, in this process's memory alone)."""

    def __init__(self, failures_per_minute: int = DEFAULT_CONFIG.auth_failures_per_minute,
                 account_failures_per_minute: int =
                 DEFAULT_CONFIG.auth_account_failures_per_minute,
                 host_failures_per_minute: int = DEFAULT_CONFIG.auth_host_failures_per_minute,
                 *, path: Path | None = None,
                 scope: str = "", clock: Callable[[], float] = time.time,
                 window: float = WINDOW, known_seconds: float = KNOWN_SECONDS) -> None:
        self.per_client = failures_per_minute
        self.per_account = account_failures_per_minute
        self.per_host = host_failures_per_minute
        self.clock = clock
        self.window = window
        self.known_seconds = known_seconds
        self._scope = scope.encode("utf-8", "surrogatepass")
        self._location = ":memory:"
        if path is not None:
            if _private_file(path):
                self._location = str(path)
            else:
                log.warning("cannot keep login budgets in %s (not a folder of this user "
                            "alone): each worker keeps its own", path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._key = b""

    @property
    def enabled(self) -> bool:
        return self.per_client > 0 or self.per_account > 0 or self.per_host > 0

    @property
    def shared(self) -> bool:
        """Whether the budgets are shared with other processes (a file, not memory)."""
        return self._location != ":memory:"

    def _connection(self) -> sqlite3.Connection:
        """This process's connection (reopened after a fork), the schema and the key."""
        if self._conn is None or self._pid != os.getpid():
            if self._conn is not None:
                # Inherited through a fork: never closed here, since closing any handle
                # of the file drops this process's locks on it (SQLite's fork rule).
                _INHERITED.append(self._conn)
            conn = sqlite3.connect(self._location, timeout=10.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 10000")
            if self.shared:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = OFF")
            conn.executescript(_SCHEMA)  # idempotent; concurrent workers are serialised
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('key', ?)", (os.urandom(32),))
            key = conn.execute("SELECT value FROM meta WHERE name = 'key'").fetchone()[0]
            self._conn, self._pid, self._key = conn, os.getpid(), bytes(key)
        return self._conn

    def _digest(self, *parts: str) -> bytes:
        message = b"\0".join([self._scope, *(p.encode("utf-8", "surrogatepass") for p in parts)])
        return hmac.new(self._key, message, hashlib.sha256).digest()[:16]

    def begin(self, account: str, address: str) -> Ticket | float:
        """Reserve one failure for ``account`` from ``address``; or, when a budget is
        spent, the seconds until it has room again (no reservation then)."""
        if not self.enabled:
            return Ticket(0, b"")
        now = self.clock()
        since = now - self.window

        def reserve(conn: sqlite3.Connection) -> Ticket | float:
            account_key = self._digest("account", account.lower())
            pair = self._digest("pair", account.lower(), client_key(address))
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM failures WHERE at <= ?", (since,))
                wait = self._spent(conn, pair, account_key, since, now)
                if wait:
                    conn.execute("COMMIT")
                    return wait
                cursor = conn.execute(
                    "INSERT INTO failures (pair, account, at) VALUES (?, ?, ?)",
                    (pair, account_key, now))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return Ticket(int(cursor.lastrowid or 0), pair)

        return self._using(reserve)

    def _using(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """``work`` on this process's connection, under the lock. A budgets file that
        fails (damaged, removed, a full disk) never turns into refused logins: this
        worker logs it and keeps its own budgets in memory from then on."""
        with self._lock:
            try:
                return work(self._connection())
            except sqlite3.Error as exc:
                if not self.shared:
                    raise
                log.warning("login budgets file %s failed (%s): this worker keeps its own "
                            "budgets from now on", self._location, exc)
                self._location, self._conn = ":memory:", None
                return work(self._connection())

    def _spent(self, conn: sqlite3.Connection, pair: bytes, account_key: bytes, since: float,
               now: float) -> float:
        """0 when every budget that applies has room, else seconds to wait."""
        checks: list[tuple[int, str, tuple[object, ...]]] = [
            (self.per_client, "pair = ? AND at > ?", (pair, since))]
        known = conn.execute("SELECT 1 FROM known WHERE pair = ? AND until > ?",
                             (pair, now)).fetchone() is not None
        if not known:
            checks += [(self.per_account, "account = ? AND at > ?", (account_key, since)),
                       (self.per_host, "at > ?", (since,))]
        for limit, where, values in checks:
            if limit <= 0:
                continue
            count = conn.execute(f"SELECT count(*) FROM failures WHERE {where}",
                                 values).fetchone()[0]
            if count >= limit:
                # Room again when the oldest failure that still counts leaves the window.
                oldest = conn.execute(
                    f"SELECT at FROM failures WHERE {where} ORDER BY at LIMIT 1 OFFSET ?",
                    (*values, count - limit)).fetchone()[0]
                return max(float(oldest) + self.window - now, 0.001)
        return 0.0

    def succeeded(self, ticket: Ticket) -> None:
        """The check passed: forget this client's failures at the account (the reserved
        one included) and remember the client as known."""
        if not self.enabled:
            return
        now = self.clock()

        def forget(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM failures WHERE pair = ?", (ticket.pair,))
                conn.execute("INSERT OR REPLACE INTO known VALUES (?, ?)",
                             (ticket.pair, now + self.known_seconds))
                if ticket.row % 64 == 0:  # now and then, drop what has expired
                    conn.execute("DELETE FROM known WHERE until <= ?", (now,))
                    conn.execute("DELETE FROM known WHERE pair IN (SELECT pair FROM known "
                                 "ORDER BY until DESC LIMIT -1 OFFSET ?)", (MAX_KNOWN,))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

        self._using(forget)

    def cancel(self, ticket: Ticket) -> None:
        """Nothing was decided (the check itself failed): take the reservation back."""
        if not self.enabled or not ticket.row:
            return
        self._using(lambda conn: conn.execute("DELETE FROM failures WHERE id = ?",
                                              (ticket.row,)))


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open (a failed BEGIN leaves none)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
