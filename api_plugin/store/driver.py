"""A pooled DBAPI connection and cursor, with the driver's errors as SQLAlchemy's.

The store's fast paths (the prepared reads, a streamed run list, the trigger's write)
run their statements on the DBAPI cursor directly. Each needs the same care around it:
a connect error comes out as a ``DBAPIError`` flagged ``connection_invalidated``; a
driver error as the matching ``DBAPIError``, and a connection the server dropped is
invalidated (never handed back to the pool) and flagged; the cursor and the connection
are closed whatever happens. ``driver_cursor`` is that care, written once. How the
transaction ends is the caller's choice (``end``), since the three differ.

``driver_transaction`` is the write's variant (the trigger's on SQLite; on PostgreSQL
its write is one statement, its own transaction): a transaction begun and ended by the
statements themselves on a connection of an autocommit pool with no ping (the read
pool), so a write costs the round trips of its own statements and nothing else; its
errors say whether the connection was lost with the COMMIT sent (``CommitSent``).

``sqlstate`` and ``is_psycopg2`` tell the two PostgreSQL drivers' errors and connections
apart, for the store's modules that must.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any, Literal

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a PostgreSQL driver's error: psycopg 3 names it ``sqlstate``,
    psycopg2 ``pgcode``; None for any other error."""
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)


def is_psycopg2(connection: Any) -> bool:
    """Whether a DBAPI connection is psycopg2's (else psycopg 3's, on PostgreSQL)."""
    return hasattr(connection, "get_backend_pid")


class CommitSent(DBAPIError):
    """The connection failed after the COMMIT was sent: the transaction may have been
    committed, so it must not be run again blindly (``Store.insert_run`` looks for its
    run first)."""


@contextmanager
def driver_cursor(engine: Engine, statement: str | None = None,
                  values: Mapping[str, Any] | None = None, *, name: str | None = None,
                  end: Literal["commit", "rollback", "finish"] | None = None,
                  client_binding: bool = False) -> Iterator[Any]:
    """A cursor on a connection from ``engine``'s pool, for the block; a server-side
    cursor when ``name`` is given; with ``client_binding``, one that sends its values
    written into the text, so that one ``execute`` may carry several statements
    (psycopg 3's ``ClientCursor``; psycopg2 always binds so). ``statement`` and
    ``values`` only label errors.

    ``end``: None leaves the transaction alone (an autocommit connection, or the pool's
    reset on return); "commit" commits when the block ends well and rolls back when it
    raises; "rollback" always rolls back, once the cursor is closed; "finish" ends a
    read transaction (and with it a server-side cursor) however the block ended. On an
    autocommit PostgreSQL connection (the read pool, which has no reset on return) a
    transaction the block began with its own ``BEGIN`` is unknown to the driver, so the
    end is sent as a statement: ROLLBACK, or for "finish" COMMIT, which undoes nothing
    in a transaction that wrote nothing (or failed) and, unlike ROLLBACK, does not make
    psycopg 3 forget (and ``DEALLOCATE ALL``) the statements it prepared on the
    connection. A connection whose transaction cannot be ended is invalidated rather
    than pooled with it open. A dropped connection is never rolled back.
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        raw = engine.raw_connection()
    except dbapi_error as exc:  # the pool hands the driver's own connect error through
        raise DBAPIError.instance(None, None, exc, dbapi_error,
                                  connection_invalidated=True) from exc
    cursor, kept, dropped, failed = None, None, False, False
    try:
        if client_binding and engine.dialect.driver == "psycopg":
            import psycopg

            cursor = psycopg.ClientCursor(raw.dbapi_connection)  # type: ignore[call-overload]
        elif name is None and engine.dialect.driver == "psycopg":
            cursor = kept = _kept_cursor(raw)
        else:
            cursor = raw.cursor() if name is None else raw.cursor(name=name)
        yield cursor
        if end == "commit":
            raw.commit()
    except dbapi_error as exc:
        failed = True
        dropped = engine.dialect.is_disconnect(exc, raw.dbapi_connection, cursor)
        if dropped:
            raw.invalidate(exc)
        raise DBAPIError.instance(statement, None if values is None else dict(values), exc,
                                  dbapi_error, connection_invalidated=dropped) from exc
    except BaseException:
        failed = True
        raise
    finally:
        if kept is not None and (failed or dropped or kept.rowcount > KEPT_ROWS_MAX):
            raw.info.pop(KEPT_CURSOR, None)  # made afresh: nothing of a failure or of a
            kept = None                      # large result stays on the connection
        if cursor is not None and cursor is not kept:
            with suppress(dbapi_error):
                cursor.close()
        if not dropped and (end in ("rollback", "finish") or (end == "commit" and failed)):
            _end_transaction(engine, raw, dbapi_error, "COMMIT" if end == "finish" else "ROLLBACK")
        raw.close()


#: Where a pooled psycopg 3 connection keeps its cursor (``_kept_cursor``).
KEPT_CURSOR = "api_plugin.cursor"
#: A kept cursor holds its last result until its next query: after a larger one it is
#: closed, so a pooled connection never sits on a big answer.
KEPT_ROWS_MAX = 1000


def _kept_cursor(raw: Any) -> Any:
    """The pooled psycopg 3 connection's own cursor for plain statements, made once per
    connection and kept in the pool's record of it. A new cursor per query would build
    its type adaptation (dumpers, loaders, the result's column descriptions) afresh each
    time: some 25 µs of a 300 µs read. A connection serves one checkout at a time, so one
    cursor is never shared; a reconnected record makes a new one."""
    connection = raw.dbapi_connection
    kept = raw.info.get(KEPT_CURSOR)
    if kept is None or kept.connection is not connection or kept.closed:
        kept = raw.info[KEPT_CURSOR] = connection.cursor()
    return kept


@contextmanager
def driver_transaction(engine: Engine, begin: str = "BEGIN") -> Iterator[Any]:
    """A cursor for the block, inside a transaction: ``begin`` (SQLite's writer says
    ``BEGIN IMMEDIATE``) first, ``COMMIT`` when the block ends well, ``ROLLBACK`` when it
    raises. ``engine`` is an autocommit pool (``make_read_engine``), so the connection
    is not pinged and no statement but these is sent.

    A dropped connection is found by ``begin`` or a later statement: the error comes out
    as a ``DBAPIError`` flagged ``connection_invalidated``, and nothing was committed.
    Once the COMMIT is sent that is no longer known: losing the connection then is a
    ``CommitSent``. A statement the server refused comes out as its own ``DBAPIError``,
    the transaction rolled back. A connection that cannot end its transaction is
    invalidated, never pooled inside it.
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        raw = engine.raw_connection()
    except dbapi_error as exc:
        raise DBAPIError.instance(None, None, exc, dbapi_error,
                                  connection_invalidated=True) from exc
    cursor, dropped, committing = None, False, False
    try:
        cursor = raw.cursor()
        cursor.execute(begin)
        yield cursor
        committing = True
        cursor.execute("COMMIT")
    except dbapi_error as exc:
        dropped = engine.dialect.is_disconnect(exc, raw.dbapi_connection, cursor)
        if dropped:
            raw.invalidate(exc)
        else:
            _abort(raw, cursor, dbapi_error)
        if committing and dropped:
            raise CommitSent("COMMIT", None, exc, connection_invalidated=True) from exc
        raise DBAPIError.instance(None, None, exc, dbapi_error,
                                  connection_invalidated=dropped) from exc
    except BaseException:
        _abort(raw, cursor, dbapi_error)
        raise
    finally:
        if cursor is not None and not dropped:
            with suppress(dbapi_error):
                cursor.close()
        raw.close()


def _abort(raw: Any, cursor: Any, dbapi_error: type[Exception]) -> None:
    """Send ROLLBACK on the write's own cursor (see ``_send_end``)."""
    if cursor is not None:
        _send_end(raw, cursor, "ROLLBACK", dbapi_error)


def _end_transaction(engine: Engine, raw: Any, dbapi_error: type[Exception],
                     statement: str = "ROLLBACK") -> None:
    """End ``raw``'s transaction (see ``driver_cursor``'s ``end``): on an autocommit
    PostgreSQL connection with ``statement``, elsewhere with the driver's rollback."""
    if engine.dialect.name != "postgresql" or raw.dbapi_connection.autocommit is not True:
        with suppress(dbapi_error):
            raw.rollback()
        return
    try:
        cursor = raw.dbapi_connection.cursor()
    except dbapi_error as exc:
        raw.invalidate(exc)
        return
    try:
        _send_end(raw, cursor, statement, dbapi_error)
    finally:
        with suppress(dbapi_error):
            cursor.close()


def _send_end(raw: Any, cursor: Any, statement: str, dbapi_error: type[Exception]) -> None:
    """Send ``statement`` (COMMIT or ROLLBACK) on ``cursor``; a connection that cannot
    end its transaction is invalidated, never pooled inside it."""
    try:
        cursor.execute(statement)
    except dbapi_error as exc:
        raw.invalidate(exc)
