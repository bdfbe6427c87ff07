"""One pooled SQLAlchemy engine per process, tuned for the database behind it."""

from __future__ import annotations

import ipaddress
import os
import socket
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import QueuePool

from api_plugin.store import server_statements
from api_plugin.store.driver import is_psycopg2

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Seconds a new PostgreSQL connection may take before the request answers 503.
PG_CONNECT_TIMEOUT_S = 5


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``.

    SQLite runs in WAL mode with a busy timeout so several gunicorn workers can share one
    file, and with ``BEGIN IMMEDIATE`` on writes (``execution_options(immediate=True)``)
    so two writers never deadlock on a lock upgrade. Other databases get
    ``pool_pre_ping`` so a restarted server heals without restarting the app.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            poolclass=QueuePool,
            pool_size=4,
            max_overflow=8,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False,
                          "isolation_level": None},
            **kwargs,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 4)
    kwargs.setdefault("max_overflow", 8)
    if parsed.get_backend_name() == "postgresql":
        connect_args = kwargs.setdefault("connect_args", {})
        for key, value in postgres_connect_args(parsed).items():
            connect_args.setdefault(key, value)
    engine = create_engine(url, **kwargs)
    _keep_threshold_from_psycopg2(engine)
    watch_prepares(engine)
    return engine


#: ``prepare_threshold`` in the URL (and its default): prepare on the server only on
#: connections found to reach it directly (``reaches_server_directly``).
AUTO = "auto"
#: psycopg's own default threshold: a statement is prepared on its sixth execution.
DIRECT_PREPARE_THRESHOLD = 5


def postgres_connect_args(url: URL) -> dict[str, Any]:
    """What every PostgreSQL connection of the plugin is opened with.

    A connect timeout, so an unreachable server is a prompt 503 rather than a hung
    worker. With psycopg 3, no server-side prepared statements (``prepare_threshold``
    None) at first: psycopg prepares a statement on the server after a few executions
    and remembers it per client connection, but behind a transaction pooler (PgBouncer's
    ``pool_mode = transaction``) the next transaction of that connection may run on
    another server connection, where the name is unknown or names another client's
    statement (``InvalidSqlStatementName``, ``DuplicatePreparedStatement``, or that other
    query run with these parameters: a wrong answer). By default (``auto``) each new
    connection then finds out whether it reaches the server itself, and only such a
    connection prepares (``watch_prepares``). The URL may say ``?prepare_threshold=none``
    (never) or a number of executions (always: only for a server reached directly).
    psycopg2 never prepares on the server by itself; the plugin's hot reads do, on a
    connection that reaches the server directly (``server_statements.py``); its URL may
    say ``?prepare_threshold=auto`` (the default) or ``none`` (never), so one URL serves
    either driver. A number is refused with psycopg2: the plugin prepares by SQL, which
    no pooler carries over to another server connection.
    """
    args: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    driver = url.get_driver_name()
    if driver == "psycopg":
        threshold = prepare_threshold(url)
        args["prepare_threshold"] = None if threshold == AUTO else threshold
    elif driver == "psycopg2" and prepare_threshold(url) not in (AUTO, None):
        raise ValueError("prepare_threshold in a psycopg2 database URL must be 'auto' or "
                         "'none': psycopg2 prepares only by SQL, on a connection that "
                         "reaches the server directly")
    return args


def _keep_threshold_from_psycopg2(engine: Engine) -> None:
    """psycopg2 hands every option of the URL's query to libpq, which knows no
    ``prepare_threshold`` and refuses to connect: the option is the plugin's there, and is
    taken out of what the driver is called with (``engine.url`` keeps it)."""
    url = engine.url
    if url.get_driver_name() != "psycopg2" or "prepare_threshold" not in url.query:
        return

    def without_threshold(_dialect: Any, _record: Any, _cargs: Any,
                          cparams: dict[str, Any]) -> None:
        cparams.pop("prepare_threshold", None)

    event.listen(engine, "do_connect", without_threshold)


def prepare_threshold(url: URL) -> int | str | None:
    """``prepare_threshold`` from the URL's query (psycopg 3's option, which the driver
    would get as text; the plugin's own with psycopg2): a number, None for ``none``,
    ``AUTO`` when the URL has none or says ``auto``."""
    raw = url.query.get("prepare_threshold")
    if raw is None:
        return AUTO
    text = (raw[-1] if isinstance(raw, tuple) else raw).strip().lower()
    if text == AUTO:
        return AUTO
    if text in ("", "none"):
        return None
    if not text.isdigit():
        raise ValueError(f"prepare_threshold in the database URL must be a whole number "
                         f"of executions, 'none' or 'auto', not {text!r}")
    return int(text)


def watch_prepares(engine: Engine, *, hot_reads: bool = False) -> None:
    """How each new PostgreSQL connection of ``engine`` prepares, found once, when it is
    opened. With psycopg 3 and ``prepare_threshold`` auto, psycopg prepares on the server
    only on a connection that reaches the server directly. On the hot reads' pool
    (``hot_reads``) a connection is also adopted by ``server_statements``: psycopg2's
    when it reaches the server directly (it then prepares by SQL), psycopg 3's whenever
    the URL leaves the threshold to the plugin (prepared by SQL when direct, plain text
    through a pooler); psycopg2's never when the URL says ``none``. No other connection
    runs server statements, so no other pays for the check, and a connection needing
    both asks the server once."""
    url = engine.url
    if url.get_backend_name() != "postgresql":
        return
    driver = url.get_driver_name()
    threshold = prepare_threshold(url) if driver in ("psycopg", "psycopg2") else None
    protocol = driver == "psycopg" and threshold == AUTO
    statements = hot_reads and ((driver == "psycopg2" and threshold == AUTO)
                                or (driver == "psycopg" and threshold in (AUTO, None)))
    if not (protocol or statements):
        return

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        direct = threshold == AUTO and reaches_server_directly(dbapi_connection)
        if protocol and direct:
            dbapi_connection.prepare_threshold = DIRECT_PREPARE_THRESHOLD
        if statements and (direct or driver == "psycopg"):
            server_statements.adopt(dbapi_connection,
                                    DIRECT_PREPARE_THRESHOLD if direct else None)

    event.listen(engine, "connect", on_connect)


def reaches_server_directly(connection: Any) -> bool:
    """Whether a psycopg 3 or psycopg2 connection talks to the PostgreSQL backend itself,
    with no pooler or proxy in between: then a statement prepared on it stays on its
    server connection, and preparing is safe.

    Two facts must both agree. The backend's process id (``pg_backend_pid()``) must be
    the one the server gave at connect time (a pooler such as PgBouncer hands its
    clients a process id and cancel key of its own); and the client address and port
    the backend sees (``inet_client_addr()``, ``inet_client_port()``) must be this
    socket's own (behind any proxy the backend sees the proxy's socket). A Unix-domain
    socket, which has no port to compare, counts as not direct. One query, once per new
    connection; the transaction it may open is rolled back.
    """
    psycopg2 = is_psycopg2(connection)
    try:
        fileno = connection.fileno() if psycopg2 else connection.pgconn.socket
        with socket.socket(fileno=os.dup(fileno)) as own:
            if own.family not in (socket.AF_INET, socket.AF_INET6):
                return False
            local_host, local_port = own.getsockname()[:2]
    except (OSError, ValueError):
        return False
    cursor = connection.cursor()
    try:
        cursor.execute("SELECT pg_backend_pid(), host(inet_client_addr()), "
                       "inet_client_port()")
        row = cursor.fetchone()
    finally:
        cursor.close()
        if _in_transaction(connection, psycopg2):
            connection.rollback()
    if row is None or None in row:
        return False
    backend_pid, seen_host, seen_port = row
    try:
        same_host = (ipaddress.ip_address(seen_host)
                     == ipaddress.ip_address(local_host.split("%", 1)[0]))
    except ValueError:
        return False
    given_pid = connection.get_backend_pid() if psycopg2 else connection.info.backend_pid
    return bool(backend_pid == given_pid and same_host and seen_port == local_port)


def _in_transaction(connection: Any, psycopg2: bool) -> bool:
    """Whether the driver opened a transaction on ``connection`` (not in autocommit)."""
    if psycopg2:
        from psycopg2.extensions import TRANSACTION_STATUS_IDLE

        return bool(connection.get_transaction_status() != TRANSACTION_STATUS_IDLE)
    from psycopg.pq import TransactionStatus

    return bool(connection.info.transaction_status != TransactionStatus.IDLE)


def make_read_engine(engine: Engine) -> Engine:
    """The engine the hot single-statement reads run on (``prepared.py``).

    On SQLite: ``engine`` itself. Elsewhere a pool of its own in autocommit mode, with no
    ping and no rollback on return: a read is then one round trip to the server instead
    of four (ping, BEGIN, the query, ROLLBACK). A single statement sees one consistent
    snapshot, so nothing is lost; a connection the server dropped is noticed by the read
    itself, which starts over once on a fresh pool (reads are safe to repeat). Behind a
    transaction pooler each read is a transaction of its own, which the pooler may give
    any server connection: nothing here relies on session state.
    """
    if engine.url.get_backend_name() == "sqlite":
        return engine
    pool = engine.pool
    size = pool.size() if isinstance(pool, QueuePool) else 4
    read_engine = create_engine(
        engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
        pool_reset_on_return=None, pool_size=size, max_overflow=8,
        connect_args=postgres_connect_args(engine.url)
        if engine.url.get_backend_name() == "postgresql" else {},
    )
    _keep_threshold_from_psycopg2(read_engine)
    watch_prepares(read_engine, hot_reads=True)
    return read_engine


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # pysqlite's own transaction handling is switched off (isolation_level=None), so the
    # transaction is begun here; a writer (execution option ``immediate``) takes the write
    # lock up front, readers stay deferred and never block on WAL.
    immediate = connection.get_execution_options().get("immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
