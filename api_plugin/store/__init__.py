"""The metadata database: engine, flavor, tables, the serialized-DAG cache, and the one
boundary every query runs inside.

Everything here happens once per process (engine, flavor detection, table metadata) or
once per DAG version (parsing a serialized DAG), so the request path only runs queries.

Which way to run a query (the rule):

1. **One SELECT on the request path** (a lookup, a list, a join answered in one
   statement): ``store.prepared(builder).first(**values)`` or ``.all(**values)``.
   ``builder`` is a module-level function ``(Tables) -> Select`` with ``bindparam``
   placeholders; the function itself is the query's key, and the statement is compiled
   once per process and run on the driver's cursor in one round trip.
2. **Anything else that reads** (several statements that must see one snapshot, a
   statement whose shape depends on the call, rare reads off the request path such as
   a sample password hash): ``with store.read() as conn`` and SQLAlchemy Core.
3. **Anything that writes**: ``with store.write() as conn`` (``store.write(conflict=
   error)`` when a violated constraint means a concurrent create), SQLAlchemy Core.
4. **A write on a hot path** whose statements are fixed (the trigger's): a method of
   ``Store`` (``insert_run``) on compiled statements; services hand it the rows.

All four run inside ``boundary.BOUNDARY``: a driver error leaves the store as a 503
(``DatabaseUnavailable``) or a 500 (``DatabaseFailure``), never as SQLAlchemy's or the
driver's exception. Nothing outside ``store/`` holds a cursor, an engine or a dialect
name.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import String, Text, cast, func, literal, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.sql import Select

from api_plugin.bounded import BoundedMap
from api_plugin.errors import ApiError
from api_plugin.store.boundary import (
    BOUNDARY,
    Boundary,
    DatabaseFailure,
    DatabaseUnavailable,
)
from api_plugin.store.checkpoint import Checkpointer
from api_plugin.store.dag_head import HEAD_DAG_ID, HEAD_SIGNATURE, unchanged_head_query
from api_plugin.store.deferred import guarding, settle_pending
from api_plugin.store.driver import driver_cursor, driver_transaction
from api_plugin.store.engine import make_engine, make_read_engine
from api_plugin.store.flavor import inspect_schema
from api_plugin.store.kept import KeptAnswers
from api_plugin.store.locking import hold, writer_lock_for
from api_plugin.store.prepared import Prepared, PreparedInsert
from api_plugin.store.run_writes import (
    CLASH_DAG_ID,
    CLASH_RUN_ID,
    CLASH_WHEN,
    WholeTrigger,
    flat_rows,
    log_insert,
    run_clash_query,
    run_insert,
    task_instance_batches,
    task_instances_insert,
)
from api_plugin.store.serialized import DagSpec, load_document, parse_dag
from api_plugin.store.tables import AIRFLOW1, AIRFLOW2, AIRFLOW3, Tables

if TYPE_CHECKING:  # flavors build on the store's modules: imported when a store opens
    from api_plugin.flavors import Flavor

log = logging.getLogger(__name__)

#: Parsed DAG definitions a process keeps (per store): a bound, so that reading every
#: DAG of a large installation does not grow a worker without end. Beyond it the one kept
#: longest is dropped and parsed again when next asked for.
MAX_PARSED_DAGS = 1000

__all__ = ["AIRFLOW1", "AIRFLOW2", "AIRFLOW3", "DagSpec", "DatabaseFailure",
           "DatabaseUnavailable", "QueryBuilder", "Store", "UninitializedDatabase"]

#: A prepared query's builder (and key): the store's tables to a SELECT.
QueryBuilder = Callable[[Tables], Select[Any]]
#: The trigger's compiled statements kept per store (one per DAG size seen, at most).
MAX_PREPARED_INSERTS = 64
_Statement = TypeVar("_Statement", PreparedInsert, WholeTrigger)


def _snapshot_query(_tables: Tables) -> Select[Any]:
    """PostgreSQL's current snapshot as text (``change_marker``)."""
    return select(cast(func.txid_current_snapshot(), Text).label("snapshot"))


class UninitializedDatabase(RuntimeError):
    """The database holds no Airflow tables; ``api-plugin db init`` creates them."""


class _Clash(Exception):
    """Inside ``Store.insert_run``: the run exists already."""


class Store:
    """One database: a pooled engine, its flavor and tables, and parsed DAGs."""

    def __init__(self, engine: Engine, flavor: Flavor, schema: dict[str, set[str]]) -> None:
        self.engine = engine
        #: The hot reads' engine (``make_read_engine``): one round trip per read.
        self.read_engine = make_read_engine(engine)
        self.flavor = flavor
        self.tables: Tables = flavor.build_tables(schema)
        self.schema = schema
        self._dags: BoundedMap[DagSpec] = BoundedMap(MAX_PARSED_DAGS)
        self._prepared: dict[QueryBuilder, Prepared] = {}
        #: The trigger's compiled statements by kind and keys, most recently used last.
        self._prepared_inserts: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._inserts_lock = threading.Lock()
        #: Results kept while ``change_marker()`` is unchanged (see there).
        self.cache: dict[Any, tuple[int | str, Any]] = {}
        #: Answers kept with the row each was made from (``kept.py``).
        self.answers = KeptAnswers()
        #: On PostgreSQL, the head (``dag_head.py``) each DAG's last trigger saw, by
        #: dag_id: the next trigger's write checks it instead of reading it first.
        self.heads: BoundedMap[Any] = BoundedMap(MAX_PARSED_DAGS)
        #: Run lists with no limit (by DAG, state and offset) last found to fit in a
        #: first chunk: the next one is read as a page first (``services.runs``).
        self.short_lists: BoundedMap[bool] = BoundedMap(MAX_PARSED_DAGS)
        self._monitor: tuple[int, sqlite3.Connection] | None = None
        self._monitor_lock = threading.Lock()
        url = engine.url
        self._writer_lock = (
            writer_lock_for(url.database) if url.get_backend_name() == "sqlite" else None
        )
        self._checkpointer = (
            Checkpointer(self._writer_lock.database) if self._writer_lock is not None else None
        )

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> Store:
        """Connect, detect the flavor; with ``create``, initialise an empty database."""
        from api_plugin.flavors import detect, flavor_named

        engine = make_engine(url)
        with engine.connect() as conn:
            schema = inspect_schema(conn)
        flavor = detect(schema)
        if flavor is None:
            if not create:
                engine.dispose()
                raise UninitializedDatabase(
                    f"no Airflow metadata tables at {engine.url.render_as_string()}: "
                    "run `api-plugin db init` first"
                )
            from api_plugin.store.schema import init_database

            init_database(engine)
            with engine.connect() as conn:
                schema = inspect_schema(conn)
            flavor = flavor_named(AIRFLOW2)
        log.info("metadata database %s is of flavor %s", engine.url.render_as_string(), flavor)
        return cls(engine, flavor, schema)

    @property
    def has_log_template(self) -> bool:
        return "log_template" in self.schema

    @property
    def url(self) -> str:
        """The database's URL, its password hidden: for messages."""
        return self.engine.url.render_as_string()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection inside a read transaction, inside the boundary."""
        with BOUNDARY, self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self, conflict: ApiError | None = None) -> Iterator[Connection]:
        """A connection inside a write transaction (SQLite: the write lock up front),
        inside the boundary; ``conflict`` is raised for a violated constraint."""
        boundary = BOUNDARY if conflict is None else Boundary(conflict)
        with boundary, self._write_section(), self.engine.connect().execution_options(
            immediate=True
        ) as conn, conn.begin():
            yield conn

    @contextmanager
    def _write_section(self, settle: bool = True) -> Iterator[None]:
        """Around every write transaction: first the request's deferred read settled (a
        revoked token is refused before anything is written: ``deferred.py``; not when
        the write carries that read as its guard), the SQLite writer lock, and after a
        commit (the block ended without an exception) a nudge to the WAL checkpoint
        thread."""
        if settle:
            settle_pending()
        with hold(self._writer_lock):
            yield
        if self._checkpointer is not None:
            self._checkpointer.committed()

    def prepared(self, build: QueryBuilder) -> Prepared:
        """The hot query ``build`` makes from this store's tables, compiled once.

        ``build`` is a module-level function (its identity is the cache key: a lambda
        made per call would compile, and be kept, once per call).
        """
        query = self._prepared.get(build)
        if query is None:
            query = self._prepared[build] = Prepared(self.read_engine, build(self.tables))
        return query

    def stream(self, build: QueryBuilder, chunk: int, first: int | None = None,
               **values: Any) -> Generator[list[Any], None, None]:
        """The rows of ``build``'s query in lists of at most ``chunk`` (the first of at
        most ``first``), fetched as they are asked for (``Prepared.stream``), each fetch
        inside the boundary; closing the iterator gives the connection back."""
        rows = self.prepared(build).stream(chunk, first, **values)
        try:
            while True:
                with BOUNDARY:
                    piece = next(rows, None)
                if piece is None:
                    return
                yield piece
        finally:
            rows.close()

    def change_marker(self) -> int | str | None:
        """A value that changes whenever any connection commits to the database.

        SQLite answers ``PRAGMA data_version`` on a connection of its own (per process,
        reopened after a fork) in microseconds; it changes on every commit made by any
        other connection, this process's included. PostgreSQL: the server's current
        snapshot (``txid_current_snapshot()``: the first unfinished transaction id, one
        past the newest finished one, the ones in progress), one round trip. Any commit
        or abort anywhere on the server since finishes a transaction that was in
        progress (it leaves the list) or newer (the upper bound moves), so an equal
        snapshot means the data is as it was: exact, not a time-to-live, though writes
        to other tables (a scheduler's heartbeat) also change it. Read it before the
        query whose result is kept. Other databases: None, and callers compute every
        time.
        """
        url = self.engine.url
        if url.get_backend_name() == "postgresql":
            return str(self.prepared(_snapshot_query).first()[0])
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        with BOUNDARY, self._monitor_lock:
            if self._monitor is None or self._monitor[0] != os.getpid():
                self._monitor = (os.getpid(), sqlite3.connect(
                    url.database, check_same_thread=False, isolation_level=None))
            row = self._monitor[1].execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def insert_run(self, run_row: dict[str, Any], task_instance_rows: list[dict[str, Any]],
                   audit_row: dict[str, Any] | None, *, dag_id: str, run_id: str,
                   when: Any, head_signature: str | None = None) -> bool | None:
        """Write a triggered run, its task instances and its audit row in one transaction;
        False (and nothing written) when the DAG already has a run with that ``run_id``
        or at that date.

        With ``head_signature`` (PostgreSQL only: rows built from a head kept in
        ``heads``), the write happens only while the DAG's head has that signature
        (``dag_head.py``): None, and nothing written, when it does not.

        The run's INSERT looks for a clashing run itself and writes nothing when there
        is one (no sequence id spent: runs get the ids Airflow would give them); the
        task instances and the audit row are written only with it. On PostgreSQL the
        three are one statement (``run_writes.WholeTrigger``), its own transaction on
        the read pool's autocommit connections: one round trip. On SQLite they are
        BEGIN IMMEDIATE, the INSERTs and COMMIT under the writer lock. The unique
        constraints on (dag_id, run_id) and (dag_id, date) that every Airflow schema has
        decide a race between two such writes: the loser's error is looked into, and
        answered as the clash it is.

        A connection lost on the way (the server restarted, or dropped it while it sat
        in the pool) leaves unknown whether the write was committed. The pool is emptied
        and the run looked for on a fresh connection (``_written``): the run this write
        made is its answer, another's run with that id a clash, and when there is none
        (the write is atomic: nothing of it was committed) the write runs once more.
        """
        with BOUNDARY:
            try:
                try:
                    return self._write_run(run_row, task_instance_rows, audit_row,
                                           dag_id=dag_id, run_id=run_id, when=when,
                                           head_signature=head_signature)
                except DBAPIError as exc:
                    if not exc.connection_invalidated:
                        raise
                    self.read_engine.dispose()
                    written = self._written(run_row, dag_id=dag_id, run_id=run_id)
                    if written is not None:
                        return written
                    return self._write_run(run_row, task_instance_rows, audit_row,
                                           dag_id=dag_id, run_id=run_id, when=when,
                                           head_signature=head_signature)
            except IntegrityError:
                if self.prepared(run_clash_query).first(
                        dag_id=dag_id, run_id=run_id, when=when) is not None:
                    return False
                raise

    def _written(self, run_row: dict[str, Any], *, dag_id: str, run_id: str) -> bool | None:
        """After a write whose answer was lost: None when the DAG has no run with
        ``run_id`` (nothing was written), True when it has the one this write made
        (its ``Flavor.run_written_at`` holds this trigger's own time, to the
        microsecond), False when it has another's (a clash). A schema without that
        column cannot tell the last two apart: that is then a 503 saying the run may
        have been written."""
        marker = self.flavor.run_written_at
        dr = self.tables.dag_run
        with self.read() as conn:
            column = dr.c.get(marker, dr.c.id)
            found = conn.execute(select(column).where(
                dr.c.dag_id == dag_id, dr.c.run_id == run_id)).first()
        if found is None:
            return None
        if marker not in run_row:
            raise DatabaseUnavailable(
                "The connection to the database was lost: the run may have been written")
        return bool(found[0] == run_row[marker])

    def _write_run(self, run_row: dict[str, Any], task_instance_rows: list[dict[str, Any]],
                   audit_row: dict[str, Any] | None, *, dag_id: str, run_id: str,
                   when: Any, head_signature: str | None = None) -> bool | None:
        """One attempt at ``insert_run``'s transaction."""
        clash = {CLASH_DAG_ID: dag_id, CLASH_RUN_ID: run_id, CLASH_WHEN: when}
        if self.engine.dialect.name == "postgresql":
            head = None if head_signature is None else {
                HEAD_DAG_ID: dag_id, HEAD_SIGNATURE: head_signature}
            # The request's pending revoked_token lookup goes with the write, as its guard.
            guard = guarding(self.read_engine)
            whole = self._whole_trigger(
                tuple(run_row), tuple(task_instance_rows[0]) if task_instance_rows else (),
                tuple(audit_row) if audit_row else (), head is not None,
                None if guard is None else guard.prepared)
            values = whole.values(run_row, clash, task_instance_rows, audit_row, head,
                                  None if guard is None else guard.values)
            with self._write_section(settle=guard is None), driver_cursor(
                    self.read_engine, whole.sql) as cursor:
                cursor.execute(whole.sql, values)
                written, head_unchanged, *guard_found = cursor.fetchone()
            if guard is not None:
                guard.found(bool(guard_found[0]))
                guard.settle()  # its refusal raised here: the write wrote nothing then
            return bool(written) if head_unchanged else None
        assert head_signature is None, "heads are kept on PostgreSQL only"
        run = self._insert("run", tuple(run_row))
        batches = [(self._insert("task_instances", tuple(rows[0]), len(rows)), flat_rows(rows))
                   for rows in task_instance_batches(task_instance_rows)]
        audit = self._insert("log", tuple(audit_row)) if audit_row else None
        try:
            with self._raw_write() as transaction:
                run.execute(transaction, {**run_row, **clash})
                if transaction.rowcount == 0:
                    raise _Clash  # rolls the transaction back: nothing written
                for statement, values in batches:
                    statement.execute(transaction, values)
                if audit is not None and audit_row is not None:
                    audit.execute(transaction, audit_row)
        except _Clash:
            return False
        return True

    def _insert(self, kind: str, keys: tuple[str, ...], rows: int = 1) -> PreparedInsert:
        """The INSERT of ``kind`` for ``rows`` rows with these keys, compiled once (the
        multi-row ones: the most recently used few, since DAG sizes vary)."""
        t = self.tables
        return self._compiled((kind, keys, rows), lambda: PreparedInsert(
            self.engine,
            run_insert(t, self.has_log_template, keys) if kind == "run"
            else task_instances_insert(t, keys, rows) if kind == "task_instances"
            else log_insert(t, keys),
            keys if kind == "log" else ()))

    def _whole_trigger(self, run_keys: tuple[str, ...], ti_keys: tuple[str, ...],
                       audit_keys: tuple[str, ...], checks_head: bool,
                       guard: Prepared | None = None) -> WholeTrigger:
        """PostgreSQL's one-statement write for rows with these keys (checking the DAG's
        head or not; carrying the pending read ``guard`` or not), built once."""
        return self._compiled(
            ("whole", run_keys, ti_keys, audit_keys, checks_head,
             None if guard is None else guard.sql), lambda: WholeTrigger(
                self.read_engine, self.tables, self.has_log_template, run_keys, ti_keys,
                audit_keys, unchanged_head_query(self.tables) if checks_head else None,
                guard))

    def _compiled(self, key: tuple[Any, ...], build: Callable[[], _Statement]) -> _Statement:
        """The trigger's statement under ``key``, built once; the most recently used
        ``MAX_PREPARED_INSERTS`` are kept."""
        with self._inserts_lock:
            found = self._prepared_inserts.get(key)
            if found is not None:
                self._prepared_inserts.move_to_end(key)
                return found  # type: ignore[no-any-return]
        found = build()
        with self._inserts_lock:
            self._prepared_inserts[key] = found
            while len(self._prepared_inserts) > MAX_PREPARED_INSERTS:
                self._prepared_inserts.popitem(last=False)
        return found

    @contextmanager
    def _raw_write(self) -> Iterator[Any]:
        """A driver-level write transaction's cursor, committed on success.

        The trigger's path on SQLite: the same transaction as ``write()`` (the writer
        flock, then ``BEGIN IMMEDIATE``) without SQLAlchemy's per-statement machinery.
        Driver errors come out as SQLAlchemy's ``DBAPIError`` family, for the boundary
        around it to map.
        """
        begin = "BEGIN IMMEDIATE" if self._writer_lock is not None else "BEGIN"
        with self._write_section(), driver_transaction(self.read_engine, begin) as cursor:
            yield cursor

    def dag_spec_by_hash(self, dag_id: str, dag_hash: str | None) -> DagSpec | None:
        """``dag_spec`` that opens a connection only when the cache cannot answer."""
        cached = self._dags.get(dag_id)
        if cached is not None and dag_hash is not None and cached.dag_hash == dag_hash:
            return cached
        with self.read() as conn:
            return self.dag_spec(conn, dag_id, dag_hash)

    def dag_spec(self, conn: Connection, dag_id: str, dag_hash: str | None) -> DagSpec | None:
        """The parsed serialized DAG, from cache while its ``dag_hash`` is unchanged."""
        cached = self._dags.get(dag_id)
        if cached is not None and dag_hash is not None and cached.dag_hash == dag_hash:
            return cached
        t = self.tables
        sd = t.serialized_dag
        # The JSON as text, decoded here within its budget rather than by the driver.
        columns = [cast(sd.c.data, Text).label("data"), sd.c.dag_hash]
        for optional in ("data_compressed", "dag_version_id"):
            if optional in sd.c:
                columns.append(sd.c[optional])
        row = conn.execute(select(*columns).where(
            t.serialized_of(literal(dag_id, String())))).first()
        if row is None:
            return None
        mapping = row._mapping
        try:
            spec = parse_dag(load_document(row.data, mapping.get("data_compressed")),
                             row.dag_hash, mapping.get("dag_version_id"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Unreadable (over its budget, or not a DAG document): served as a DAG with
            # no definition, like one Airflow has not serialized.
            log.warning("serialized DAG %s is unreadable: %s", dag_id, exc)
            return None
        self._dags.put(dag_id, spec)  # the longest kept goes first past the bound
        return spec

    def dispose(self) -> None:
        """Close every pooled connection (tests, and after a fork)."""
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
        with self._monitor_lock:
            if self._monitor is not None and self._monitor[0] == os.getpid():
                self._monitor[1].close()
            self._monitor = None
