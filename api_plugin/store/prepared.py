"""Hot read queries compiled once and run on the DBAPI cursor directly.

SQLAlchemy Core builds, caches and executes a statement in roughly 100 µs of Python per
call; the database itself answers a primary-key lookup in a few. For the handful of
queries on the request path of every read endpoint, the statement is compiled once per
engine and executed on a pooled DBAPI connection, with the column types' own bind and
result processors (public ``TypeEngine`` API) applied, so values come back exactly as
through SQLAlchemy. A connection the database dropped is invalidated, as SQLAlchemy
would; the read runs inside the store's boundary (``boundary.py``), so its caller sees
an API error (503 or 500), never the driver's.

``Store.prepared(builder)`` holds one ``Prepared`` per builder function: a builder is a
module-level function of the store's ``Tables``, which is what names the query.
"""

from __future__ import annotations

import secrets
from collections import namedtuple
from collections.abc import Callable, Generator, Mapping
from functools import cached_property
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Insert, Select

from api_plugin.store.boundary import BOUNDARY
from api_plugin.store.deferred import DeferredRead, riding_with
from api_plugin.store.driver import driver_cursor, sqlstate
from api_plugin.store.server_statements import forgotten, statement_text, text_cursor

Processor = Callable[[Any], Any] | None

#: The name of a streamed list's cursor on the server: it lives in its own transaction,
#: so one name serves every stream.
STREAM_CURSOR = "api_plugin_stream"

#: What a refusing guard's failure names (``Prepared.refusing_guard``), with a number
#: drawn for this process, so that no other failure (a value a client sent, cast by a
#: query) is taken for one.
REFUSAL = f"api_plugin refused {secrets.token_hex(8)}"


def is_refusal(exc: BaseException) -> bool:
    """Whether the driver's ``exc`` is a refusing guard's failure (SQLSTATE 22P02,
    invalid text for the type, naming ``REFUSAL``)."""
    return sqlstate(exc) == "22P02" and REFUSAL in str(exc)


class Prepared:
    """One compiled SELECT: its SQL text, parameter order and value processors."""

    def __init__(self, engine: Engine, statement: Select[Any]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.engine = engine
        self.sql = compiled.string
        self.positional: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if dialect.positional else None)
        self.bind_processors: dict[str, Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()}
        self.literals = {name: bind.value for name, bind in compiled.binds.items()
                         if bind.value is not None and not bind.required}
        self.columns = list(statement.selected_columns)
        self.row_type: Any = namedtuple("Row", [c.key for c in self.columns])  # type: ignore[misc]
        # Result processors may depend on the driver's type codes, which the first
        # cursor describes; they are made then, once.
        self.result_processors: tuple[Processor, ...] | None = None

    def _learn_processors(self, cursor: Any) -> None:
        """The result processors, made once, from the first cursor that describes the
        result (a cursor builds its description anew each time it is asked)."""
        if self.result_processors is not None:
            return
        description = cursor.description
        if description is None:
            return
        dialect = self.engine.dialect
        self.result_processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, described[1])
            for column, described in zip(self.columns, description, strict=True))

    @property
    def carries_riders(self) -> bool:
        """Whether this query can take the request's deferred read along in its own
        message: on PostgreSQL a read whose verdict refuses any row, as a guard that
        fails the message (``_fetch_as_text``), and with psycopg 3 any read, in its
        pipeline mode (``_pipelined``); SQLite none."""
        return self.engine.dialect.driver in ("psycopg", "psycopg2")

    @cached_property
    def refusing_guard(self) -> str:
        """This query as a statement that fails when it finds a row and answers nothing
        otherwise (``_fetch_as_text``). The failure is a cast of a text naming
        ``REFUSAL`` to integer: it depends on the rows, so PostgreSQL cannot fold it into
        a constant (and fail it on every run) when it plans the statement."""
        return (f"SELECT CAST('{REFUSAL} ' || CAST(count(*) AS text) AS integer) "
                f"FROM ({self.sql}) AS refusing HAVING count(*) > 0")

    def parameters(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``values``: the statement's own fixed values with
        them, through the types' bind processors, by name (or in order, for a positional
        driver)."""
        merged = {**self.literals, **values}
        for name, processor in self.bind_processors.items():
            if processor is not None and name in merged:
                merged[name] = processor(merged[name])
        if self.positional is None:
            return merged
        return tuple(merged[name] for name in self.positional)

    def all(self, **values: Any) -> list[Any]:
        """Every row, as named tuples with processed values.

        A connection the database dropped (a restart, an idle timeout) is found out by
        the query itself; the pool is then emptied and the read made once more on a
        fresh connection, so a healed server costs no failed request. Driver errors
        come out as API errors (``boundary.py``).
        """
        with BOUNDARY:
            try:
                rows = self._fetch(values)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                self.engine.dispose()
                rows = self._fetch(values)
        return self._rows(rows)

    def _rows(self, rows: list[Any]) -> list[Any]:
        """Driver rows as named tuples with the column types' processors applied."""
        make = self.row_type._make
        steps = [(i, p) for i, p in enumerate(self.result_processors or ()) if p is not None]
        if not steps:
            return [make(row) for row in rows]
        out = []
        for row in rows:
            cells = list(row)
            for i, processor in steps:
                cells[i] = processor(cells[i])
            out.append(make(cells))
        return out

    def stream(self, chunk: int, first: int | None = None,
               **values: Any) -> Generator[list[Any], None, None]:
        """The rows in lists of at most ``chunk`` (the first of at most ``first``, so
        it comes sooner), fetched from the server as they are asked for: the whole
        answer is never in this process at once.

        On PostgreSQL (both drivers) a cursor on the server, in one transaction (so the
        whole stream is one snapshot), on the read pool: its first rows come in one
        round trip, ``BEGIN``, ``DECLARE`` and the first ``FETCH FORWARD`` sent as one
        message (``_on_server``), as soon as a page's would. Nothing outlives the
        transaction, so it works through PgBouncer in transaction mode. SQLite's cursor
        steps through the result lazily by itself. The connection goes back to the pool
        when the generator ends or is closed. A connection the server dropped is found
        by the first message and the stream begun once more on a fresh pool, as
        ``all()`` does; driver errors come out as SQLAlchemy's ``DBAPIError`` family.
        """
        if self.engine.dialect.name != "postgresql":
            yield from self._stream_lazily(chunk, first, values)
            return
        began = False
        try:
            for rows in self._on_server(chunk, first, values):
                began = True
                yield rows
        except DBAPIError as exc:
            if began or not exc.connection_invalidated:
                raise
            self.engine.dispose()
            yield from self._on_server(chunk, first, values)

    def _on_server(self, chunk: int, first: int | None,
                   values: Mapping[str, Any]) -> Generator[list[Any], None, None]:
        """``stream`` through ``DECLARE``'d cursor; the values are written into the text
        by the driver (several statements go in one message only so)."""
        size = first or chunk
        begin = (f"BEGIN READ ONLY; DECLARE {STREAM_CURSOR} NO SCROLL CURSOR FOR {self.sql}; "
                 f"FETCH FORWARD {size} FROM {STREAM_CURSOR}")
        # Finished at the end (COMMIT): that ends the read transaction, and the cursor
        # with it, and leaves what psycopg 3 prepared on the connection in place.
        with driver_cursor(self.engine, self.sql, values, end="finish",
                           client_binding=True) as cursor:
            cursor.execute(begin, self.parameters(values))
            if self.engine.dialect.driver == "psycopg":
                while cursor.nextset():  # psycopg 3 stops at each statement's result
                    pass

            def fetch(size: int, opening: bool) -> list[Any]:
                if not opening:  # the opening message brought the first chunk already
                    cursor.execute(f"FETCH FORWARD {size} FROM {STREAM_CURSOR}")
                return list(cursor.fetchall())

            yield from self._chunks(cursor, fetch, size, chunk)

    def _stream_lazily(self, chunk: int, first: int | None,
                       values: Mapping[str, Any]) -> Generator[list[Any], None, None]:
        """``stream`` on a driver whose cursor fetches lazily by itself (SQLite)."""
        with driver_cursor(self.engine, self.sql, values, end="rollback") as cursor:
            cursor.execute(self.sql, self.parameters(values))
            yield from self._chunks(cursor, lambda size, _opening: list(cursor.fetchmany(size)),
                                    first or chunk, chunk)

    def _chunks(self, cursor: Any, fetch: Callable[[int, bool], list[Any]], first: int,
                chunk: int) -> Generator[list[Any], None, None]:
        """The converted rows of ``fetch(size, opening)``, ``first`` rows then ``chunk``
        at a time, until a fetch comes back short."""
        size, opening = first, True
        while True:
            rows = fetch(size, opening)
            self._learn_processors(cursor)
            if not rows:
                break
            yield self._rows(rows)
            if len(rows) < size:
                break
            size, opening = chunk, False

    def _fetch(self, values: Mapping[str, Any]) -> list[Any]:
        rider = riding_with(self.engine)
        driver = self.engine.dialect.driver
        guard = rider if rider is not None and rider.refuses_any_row else None
        if driver == "psycopg2" or (guard is not None and driver == "psycopg"):
            return self._fetch_as_text(values, guard)
        with driver_cursor(self.engine, self.sql, values) as cursor:
            if rider is not None and driver == "psycopg":
                return self._pipelined(cursor, rider, values)
            cursor.execute(self.sql, self.parameters(values))
            rows = list(cursor.fetchall())
            self._learn_processors(cursor)
        return rows

    def _pipelined(self, cursor: Any, rider: DeferredRead,
                   values: Mapping[str, Any]) -> list[Any]:
        """This query's rows, with the request's deferred read (``deferred.py``) sent
        ahead of it in one message (psycopg 3's pipeline: both statements, one Sync), so
        both answers cost one round trip. The rider's rows are handed to it only when
        both statements succeeded; otherwise it stays unanswered, to be read alone."""
        other = rider.prepared
        connection = cursor.connection
        rider_cursor = connection.cursor()
        try:
            with connection.pipeline():
                rider_cursor.execute(other.sql, other.parameters(rider.values))
                cursor.execute(self.sql, self.parameters(values))
            rider_rows = list(rider_cursor.fetchall())
            other._learn_processors(rider_cursor)
        finally:
            rider_cursor.close()
        rows = list(cursor.fetchall())
        self._learn_processors(cursor)
        rider.received(other._rows(rider_rows))
        return rows

    def _fetch_as_text(self, values: Mapping[str, Any], guard: DeferredRead | None,
                       again: bool = True) -> list[Any]:
        """``_fetch`` as text with the values written in (``server_statements.py``): the
        query as ``EXECUTE`` of a statement prepared on the connection where it may be,
        with the request's deferred read, when one rides and its verdict refuses any
        row, sent ahead of it in the same message as a ``guard`` (``refusing_guard``).
        Every psycopg2 read comes here, and psycopg 3's with a guard; a psycopg 3
        connection that keeps psycopg's own preparing (not adopted) sends the guard's
        read in its pipeline instead (``_pipelined``).

        The server runs a text of several statements in order until one fails, and
        answers each (psycopg2 keeps the last answer; psycopg 3 steps to it). So when
        the guard finds no row, the answer is this query's rows and the read is answered
        with none; when it finds one, this query is not run at all, the read is answered
        with that row and its verdict raised here (the refusal ``deferred.py``
        describes, only sooner). The values are written into each statement apart, so
        the two statements' names for their values cannot clash. Any other failure
        leaves the read unanswered, to be read alone; a failure because the server
        forgot a statement it had prepared is tried once more (``again``)."""
        refused, retry, rows = False, False, list[Any]()
        with driver_cursor(self.engine, self.sql, values) as cursor:
            text = text_cursor(cursor)
            if text is None:  # a psycopg 3 connection with psycopg's own preparing
                assert guard is not None
                return self._pipelined(cursor, guard, values)
            message = statement_text(text, self.sql, self.parameters(values))
            if guard is not None:
                other = guard.prepared
                message = b"; ".join((statement_text(text, other.refusing_guard,
                                                     other.parameters(guard.values)),
                                      message))
            try:
                text.execute(message)
            except self.engine.dialect.loaded_dbapi.Error as exc:
                if guard is not None and is_refusal(exc):
                    refused = True  # the read pool's connection is autocommit: nothing is open
                else:
                    sqls = (self.sql,) if guard is None else (
                        self.sql, guard.prepared.refusing_guard)
                    retry = again and forgotten(text, sqls, exc)
                    if not retry:
                        raise
            else:
                if guard is not None and text is not cursor:
                    text.nextset()  # psycopg 3 answers each statement: the guard's first
                rows = list(text.fetchall())
                self._learn_processors(text)
        if retry:
            return self._fetch_as_text(values, guard, again=False)
        if guard is not None:
            guard.found(refused)
            if refused:
                guard.settle()  # a verdict that refuses any row raises its refusal here
        return rows

    def first(self, **values: Any) -> Any:
        """The first row, or None."""
        rows = self.all(**values)
        return rows[0] if rows else None

    def finds_on(self, cursor: Any, **values: Any) -> bool:
        """Whether the query finds a row, run on ``cursor`` inside its caller's
        transaction (the store's raw write, inside the boundary)."""
        cursor.execute(self.sql, self.parameters(values))
        return cursor.fetchone() is not None


class PreparedInsert:
    """One compiled INSERT for rows with a fixed set of keys, run on a DBAPI cursor
    inside the store's raw write transaction (``Store.insert_run``)."""

    def __init__(self, engine: Engine, statement: Insert, keys: tuple[str, ...]) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql = compiled.string
        self.positional: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if dialect.positional else None)
        self.steps = [(name, processor) for name, bind in compiled.binds.items()
                      if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect))
                      is not None]

    def parameters(self, row: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``row``: its values through the column types'
        bind processors, by name (or in order, for a positional driver)."""
        values = dict(row)
        for name, processor in self.steps:
            if name in values:
                values[name] = processor(values[name])
        if self.positional is None:
            return values
        return tuple(values[name] for name in self.positional)

    def execute(self, cursor: Any, row: Mapping[str, Any]) -> None:
        cursor.execute(self.sql, self.parameters(row))

    def executemany(self, cursor: Any, rows: list[dict[str, Any]]) -> None:
        if rows:
            cursor.executemany(self.sql, [self.parameters(row) for row in rows])
