"""One pooled SQLAlchemy engine per process, tuned for the database behind it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import QueuePool

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
    return create_engine(url, **kwargs)


def postgres_connect_args(url: URL) -> dict[str, Any]:
    """What every PostgreSQL connection of the plugin is opened with.

    A connect timeout, so an unreachable server is a prompt 503 rather than a hung
    worker. With psycopg 3, no server-side prepared statements (``prepare_threshold``
    None) unless the URL asks for them: psycopg prepares a statement on the server after
    a few executions and remembers it per client connection, but behind a transaction
    pooler (PgBouncer's ``pool_mode = transaction``) the next transaction of that
    connection may run on another server connection, where the name is unknown or names
    another client's statement (``InvalidSqlStatementName``, ``DuplicatePreparedStatement``,
    or that other query run with these parameters: a wrong answer). The plugin cannot
    tell whether a pooler is in between, so off is the default; on a server reached
    directly, ``?prepare_threshold=5`` (psycopg's own default) in the URL saves planning
    the larger queries each time (``bench/prepares.py`` measures what). psycopg2 never
    prepares on the server: it needs nothing.
    """
    args: dict[str, Any] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    if url.get_driver_name() == "psycopg":
        args["prepare_threshold"] = prepare_threshold(url)
    return args


def prepare_threshold(url: URL) -> int | None:
    """psycopg 3's ``prepare_threshold`` from the URL's query (the driver would get it as
    text), None when the URL has none or says ``none``."""
    raw = url.query.get("prepare_threshold")
    if raw is None:
        return None
    text = (raw[-1] if isinstance(raw, tuple) else raw).strip().lower()
    if text in ("", "none"):
        return None
    if not text.isdigit():
        raise ValueError(f"prepare_threshold in the database URL must be a whole number "
                         f"of executions or 'none', not {text!r}")
    return int(text)


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
    return create_engine(
        engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
        pool_reset_on_return=None, pool_size=size, max_overflow=8,
        connect_args=postgres_connect_args(engine.url)
        if engine.url.get_backend_name() == "postgresql" else {},
    )


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
