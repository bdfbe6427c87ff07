"""The statements of a trigger's write: the run's INSERT (which looks for a clashing run
itself), its task instances' multi-row INSERT, the audit log row's, the same three as
one statement on PostgreSQL (``WholeTrigger``), and the query that finds a run clashing
with a new one.

The rows themselves come from the flavor (``Flavor.run_row`` and friends); these are
only the statements, each built from the store's tables and compiled once per set of
keys (``Store.insert_run`` runs them).
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BindParameter,
    ColumnElement,
    Insert,
    LargeBinary,
    bindparam,
    column,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.sql import Select

from api_plugin.store.prepared import Prepared, PreparedInsert
from api_plugin.store.tables import Tables

#: The clash condition's parameters in the run INSERT (not columns of the row).
CLASH_DAG_ID, CLASH_RUN_ID, CLASH_WHEN = "clash_dag_id", "clash_run_id", "clash_when"

#: The audit row's parameters in ``WholeTrigger`` (apart from the run's, whose keys are
#: the same column names).
AUDIT_PREFIX = "audit__"
#: ``WholeTrigger``'s name for the written run's row (none when the run clashed).
WRITTEN_RUN = "written_run"
#: The condition of ``WholeTrigger``'s other parts: the run was written.
RUN_WAS_WRITTEN = f"EXISTS (SELECT FROM {WRITTEN_RUN})"
#: ``WholeTrigger``'s name for the DAG's head, when the write checks it (one row when
#: the head is the one the rows were built from).
UNCHANGED_HEAD = "unchanged_head"
#: ``WholeTrigger``'s name for the request's pending read it carries as its guard, and
#: the prefix of that read's parameters there.
GUARD, GUARD_PREFIX = "pending_check", "pending_check__"
#: A named parameter in a compiled statement's text (psycopg's ``%(name)s``).
_GUARD_PARAMETER = re.compile(r"%\((\w+)\)s")

#: At most this many bound values in one statement: below SQLite's limit (32,766 since
#: 3.32) and PostgreSQL's protocol limit (65,535); a larger DAG's task instances are
#: written in several statements.
MAX_PARAMETERS = 30_000


def run_clash_query(t: Tables) -> Select[Any]:
    """A run of ``dag_id`` with the same ``run_id`` or the same date, if there is one."""
    dr = t.dag_run
    return (
        select(dr.c.id)
        .where(dr.c.dag_id == bindparam("dag_id"),
               or_(dr.c.run_id == bindparam("run_id"), t.run_date == bindparam("when")))
        .limit(1)
    )


def run_insert(t: Tables, has_log_template: bool, keys: tuple[str, ...],
               condition: ColumnElement[bool] | None = None) -> Insert:
    """The dag_run INSERT of a row with ``keys``, written only when the DAG has no run
    with its ``run_id`` or at its date (``INSERT ... SELECT ... WHERE NOT EXISTS``: the
    row count says which, in the same round trip).

    Looking first, in the statement, is what keeps a server with sequences (PostgreSQL)
    from spending a ``dag_run.id`` on a duplicate, so runs get the ids Airflow would
    give them. Two such INSERTs racing for one date both find nothing; the unique
    constraint then decides (the caller turns the loser's error into the clash).
    Where the table has ``log_template_id`` and the database a ``log_template`` table,
    the newest template's id is filled in by the same statement. ``condition``, when
    given, must hold too (``WholeTrigger``'s check of the DAG's head).
    """
    dr = t.dag_run
    names = list(keys)
    values: list[ColumnElement[Any]] = [_typed(dr, key) for key in keys]
    if "log_template_id" in dr.c and has_log_template and "log_template_id" not in keys:
        names.append("log_template_id")
        newest: Select[Any] = select(func.max(column("id"))).select_from(table("log_template"))
        values.append(newest.scalar_subquery())
    clash: Select[Any] = select(literal_column("1")).select_from(dr).where(
        dr.c.dag_id == _typed(dr, "dag_id", CLASH_DAG_ID),
        or_(dr.c.run_id == _typed(dr, "run_id", CLASH_RUN_ID),
            t.run_date == bindparam(CLASH_WHEN, type_=t.run_date.type)))
    where = [~exists(clash)] if condition is None else [~exists(clash), condition]
    return insert(dr).from_select(names, select(*values).where(*where),
                                  include_defaults=False)


def task_instances_insert(t: Tables, keys: tuple[str, ...], rows: int) -> Insert:
    """One INSERT of ``rows`` task instances with ``keys`` (one parse, one round trip);
    row ``i``'s value for ``key`` is the parameter ``f"{key}__{i}"`` (``flat_rows``)."""
    ti = t.task_instance
    return insert(ti).values([{key: _typed(ti, key, f"{key}__{i}") for key in keys}
                              for i in range(rows)])


class RecordsetInsert:
    """The task instances' INSERT on PostgreSQL (a part of ``WholeTrigger``): one
    statement of one JSON parameter, whatever the number of rows,
    ``INSERT INTO task_instance (a, b, ...) SELECT a, b, ... FROM
    json_populate_recordset(NULL::task_instance, CAST(%(task_instances)s AS JSON))``.

    One parse and one round trip like a multi-row VALUES, but its text and parameter
    count stay the same for every DAG: compiled once, no parameter limit to split at,
    and psycopg 3 converts the query once and keeps it (it parses a VALUES list of more
    than 50 parameters afresh on every execution). It is also the cheapest form for a
    server to parse and plan, which it does on every trigger behind a pooler that keeps
    no prepared statements: an ``unnest`` of one array per column costs PostgreSQL
    twice the analysis (every array argument is its own function call to resolve).

    Values go through the column types' bind processors first, as SQLAlchemy would send
    them, and are then written as JSON (``json_value``); the server reads each one with
    its column type's own input, as it would read the text of a literal, whichever the
    driver. A JSON column's processed value is JSON text already and goes in as it is.
    """

    #: The statement's one parameter.
    PARAMETER = "task_instances"

    def __init__(self, dialect: Any, t: Tables, keys: tuple[str, ...]) -> None:
        ti = t.task_instance
        quote = dialect.identifier_preparer.quote
        columns = [ti.c[key] for key in keys]
        names = ", ".join(quote(column.name) for column in columns)
        table_name = dialect.identifier_preparer.format_table(ti)
        self.sql = (f"INSERT INTO {table_name} ({names}) SELECT {names} "
                    f"FROM json_populate_recordset(NULL::{table_name}, "
                    f"CAST(%({self.PARAMETER})s AS JSON))")
        self.keys = keys
        #: Each key as a JSON object's member name, ``"task_id":``.
        self._members = [json.dumps(column.name) + ":" for column in columns]
        # Bytes are written as bytea's hex form (``json_value``): the driver's Binary
        # wrapper, which a LargeBinary's processor adds, is not needed.
        self.processors = [None if isinstance(column.type, LargeBinary)
                           else column.type.dialect_impl(dialect).bind_processor(dialect)
                           for column in columns]
        self._is_json = [isinstance(column.type.dialect_impl(dialect), JSON)
                         for column in columns]
        #: A row's values, in ``keys``' order, as one tuple (one key: a 1-tuple).
        self._getter: Callable[[Mapping[str, Any]], tuple[Any, ...]] = (
            operator.itemgetter(*keys) if len(keys) > 1
            else lambda row: (row[keys[0]],))
        #: Each column's last values and their JSON texts (``values``).
        self._last: dict[str, tuple[tuple[Any, ...], list[str]]] = {}

    def values(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The statement's parameter for ``rows``: a JSON array of one object a row.

        Most columns hold the same values run after run (those that follow from the
        DAG's definition): each column's last values and their texts are kept, and
        values equal to the last ones reuse the texts instead of writing them again.
        The rows are turned into columns, and the texts back into objects, by C-level
        ``itemgetter``, ``zip`` and ``map``: the Python loop is once per column, not
        once per value (about a third less CPU for a three-task DAG than a loop per value).
        """
        if not rows:
            return {self.PARAMETER: "[]"}
        last = self._last
        columns: list[list[str]] = []
        by_column = zip(*map(self._getter, rows), strict=True)
        for key, raw, processor, is_json in zip(self.keys, by_column, self.processors,
                                                self._is_json, strict=True):
            kept = last.get(key)
            if kept is not None and kept[0] == raw:
                columns.append(kept[1])
                continue
            processed = list(raw)
            if processor is not None:
                processed = [None if value is None else processor(value)
                             for value in processed]
            texts = [("null" if value is None else value) if is_json else json_value(value)
                     for value in processed]
            last[key] = (raw, texts)  # one tuple: a reader sees both or neither
            columns.append(texts)
        members = self._members
        objects = ["{" + ",".join(map(operator.add, members, row_texts)) + "}"
                   for row_texts in zip(*columns, strict=True)]
        return {self.PARAMETER: "[" + ",".join(objects) + "]"}


class WholeTrigger:
    """The trigger's write on PostgreSQL as one statement:

        WITH [pending_check AS (<the request's pending read>),]
             [unchanged_head AS (SELECT 1 FROM dag ... WHERE <the head's signature>),]
             written_run AS (INSERT INTO dag_run ... WHERE NOT EXISTS (a clash)
                             [AND EXISTS (SELECT FROM unchanged_head)]
                             [AND NOT EXISTS (SELECT FROM pending_check)] RETURNING 1),
             tis AS (INSERT INTO task_instance ... FROM json_populate_recordset(...)
                     WHERE EXISTS (SELECT FROM written_run)),
             audit AS (INSERT INTO log ... SELECT ... WHERE EXISTS (...))
        SELECT (SELECT count(*) FROM written_run), <1, or the head's row count>
               [, EXISTS (SELECT FROM pending_check)]

    Sent on an autocommit connection, it is its own transaction: one round trip with
    either driver, where BEGIN, three INSERTs and COMMIT took two (psycopg 3's
    pipeline) or five, and about 40% less of the worker's CPU per trigger. The task
    instances and the audit row are written only with the run; the count says whether
    it was (0: a clash, and nothing at all was written). The parts see one snapshot and
    commit together; the task instances' foreign key to their run is checked at the
    statement's end, when the run's row is there. Two such statements racing for one
    date both find no clash, and the unique constraint decides, as with the separate
    statements.

    With ``head`` (``dag_head.unchanged_head_query``), rows built from a kept head of the
    DAG are written only while the DAG's head is still that one (``dag_head.py``); the
    second count is then 0 when it is not, and nothing was written.

    With ``guard`` (the request's pending ``revoked_token`` lookup, ``deferred.py``), the
    write carries that read: nothing is written when it finds a row, and the third column
    says whether it did, so the lookup costs no round trip of its own.

    The run's and the audit row's parameters are processed as ``PreparedInsert``'s, the
    task instances' as ``RecordsetInsert``'s; the text is built once per set of keys.
    """

    def __init__(self, engine: Any, t: Tables, has_log_template: bool,
                 run_keys: tuple[str, ...], ti_keys: tuple[str, ...],
                 audit_keys: tuple[str, ...], head: Select[Any] | None = None,
                 guard: Prepared | None = None) -> None:
        assert not engine.dialect.positional, "PostgreSQL's drivers take named parameters"
        conditions = ([] if head is None else [f"EXISTS (SELECT FROM {UNCHANGED_HEAD})"]) + (
            [] if guard is None else [f"NOT EXISTS (SELECT FROM {GUARD})"])
        condition: ColumnElement[bool] | None = (
            literal_column(" AND ".join(conditions)) if conditions else None)
        self.run = PreparedInsert(engine, run_insert(t, has_log_template, run_keys, condition)
                                  .returning(literal_column("1")), ())
        parts = [f"{WRITTEN_RUN} AS ({self.run.sql})"]
        #: The request's pending read this write carries as its guard (``deferred.py``).
        self.guard = guard
        guard_found = ""
        if guard is not None:
            renamed = _GUARD_PARAMETER.sub(rf"%({GUARD_PREFIX}\1)s", guard.sql)
            assert GUARD_PREFIX not in self.run.sql
            parts.insert(0, f"{GUARD} AS ({renamed})")
            guard_found = f", EXISTS (SELECT FROM {GUARD})"
        head_count = "1"
        #: The head query's own fixed values (3.x's newest-version subquery's LIMIT).
        self.head_values: dict[str, Any] = {}
        if head is not None:
            compiled = head.compile(dialect=engine.dialect)
            assert all(bind.type.dialect_impl(engine.dialect).bind_processor(engine.dialect)
                       is None for bind in compiled.binds.values()), "plain parameters only"
            self.head_values = {name: bind.value for name, bind in compiled.binds.items()
                                if bind.value is not None and not bind.required}
            assert not any(f"%({name})s" in self.run.sql for name in self.head_values)
            parts.insert(0, f"{UNCHANGED_HEAD} AS ({compiled.string})")
            head_count = f"(SELECT count(*) FROM {UNCHANGED_HEAD})"
        self.tis = RecordsetInsert(engine.dialect, t, ti_keys) if ti_keys else None
        if self.tis is not None:
            parts.append(f"tis AS ({self.tis.sql} WHERE {RUN_WAS_WRITTEN})")
        self.audit: PreparedInsert | None = None
        if audit_keys:
            assert t.log is not None, "only a flavor with an audit log writes its row"
            log = t.log
            values = [_typed(log, key, AUDIT_PREFIX + key) for key in audit_keys]
            self.audit = PreparedInsert(engine, insert(log).from_select(
                list(audit_keys), select(*values).where(literal_column(RUN_WAS_WRITTEN)),
                include_defaults=False), ())
            parts.append(f"audit AS ({self.audit.sql})")
        self.sql = (f"WITH {', '.join(parts)} "
                    f"SELECT (SELECT count(*) FROM {WRITTEN_RUN}), {head_count}{guard_found}")

    def values(self, run_row: dict[str, Any], clash: dict[str, Any],
               ti_rows: list[dict[str, Any]], audit_row: dict[str, Any] | None,
               head: dict[str, Any] | None = None,
               guard: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The statement's parameters for these rows (and the head's, when it checks
        one; and the guard's read's, when it carries one)."""
        values: dict[str, Any] = self.run.parameters({**run_row, **clash})
        if self.guard is not None:
            assert guard is not None, "a guarded write needs its read's values"
            values.update({GUARD_PREFIX + name: value for name, value
                           in self.guard.parameters(guard).items()})
        if head is not None:
            values.update(self.head_values)
            values.update(head)
        if self.tis is not None:
            values.update(self.tis.values(ti_rows))
        if self.audit is not None and audit_row is not None:
            values.update(self.audit.parameters(
                {AUDIT_PREFIX + key: value for key, value in audit_row.items()}))
        return values


def json_value(value: Any) -> str:
    """``value`` as a JSON value that PostgreSQL's ``json_populate_recordset`` reads
    into a column of its kind with the column type's own input: strings, numbers,
    booleans and null as themselves; dates and times in ISO form, UUIDs as their text and
    bytes in bytea's hex form and decimals as their text, all as strings; a float that is
    not finite as the string its column's input reads ("NaN", "Infinity"). A value of
    another kind is a programming error (no flavor writes one) and raises TypeError.
    """
    if value is None:
        return "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return '"NaN"' if math.isnan(value) else '"-Infinity"' if value < 0 else '"Infinity"'
    if isinstance(value, datetime | date):
        return '"' + value.isoformat() + '"'
    if isinstance(value, UUID):
        return '"' + str(value) + '"'
    if isinstance(value, bytes):
        return '"\\\\x' + value.hex() + '"'
    if isinstance(value, Decimal):
        return '"' + str(value) + '"'
    raise TypeError(f"no JSON form for a task instance's {type(value).__name__} value")


def task_instance_batches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``rows`` in as few statements as the parameter limit allows (one for any DAG
    of fewer than about a thousand tasks)."""
    if not rows:
        return []
    per_statement = max(1, MAX_PARAMETERS // max(1, len(rows[0])))
    return [rows[at:at + per_statement] for at in range(0, len(rows), per_statement)]


def flat_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of ``task_instances_insert`` for ``rows``."""
    return {f"{key}__{i}": value for i, row in enumerate(rows) for key, value in row.items()}


def log_insert(t: Tables, keys: tuple[str, ...]) -> Insert:
    assert t.log is not None, "only called for a flavor that writes an audit row"
    return insert(t.log)


def _typed(tab: Any, key: str, name: str | None = None) -> BindParameter[Any]:
    """A parameter for column ``key`` of ``tab``, of the column's type (its bind
    processing, and on psycopg 3 a cast naming the type)."""
    return bindparam(name or key, type_=tab.c[key].type)
