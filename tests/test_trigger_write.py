"""The trigger's write (``Store.insert_run``, ``store/run_writes.py``, ``driver_transaction``):
one statement on PostgreSQL, task instances in multi-row INSERTs on SQLite, the duplicate
looked for by the run's INSERT itself (no sequence id spent on a 409), and a connection
lost on the way healed by looking for the run first: the run this write made is its
answer, another's a clash, none a reason to write once more."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text

from api_plugin.store import DatabaseFailure, Store, run_writes
from api_plugin.store.driver import KEPT_CURSOR, CommitSent, driver_transaction
from api_plugin.store.tables import AIRFLOW2
from conftest import PG_URL, ApiHarness

WHEN = "2026-03-01T00:00:00+00:00"


def _runs(api: ApiHarness) -> list[Any]:
    t = api.store.tables
    with api.store.read() as conn:
        return list(conn.execute(select(t.dag_run.c.id, t.dag_run.c.run_id)
                                 .where(t.dag_run.c.dag_id == "example_etl")
                                 .order_by(t.dag_run.c.id)))


def _task_ids(api: ApiHarness) -> list[str]:
    """example_etl's task instances, of every run (Airflow 1's have no run_id)."""
    ti = api.store.tables.task_instance
    with api.store.read() as conn:
        return sorted(conn.scalars(select(ti.c.task_id).where(ti.c.dag_id == "example_etl")))


def test_a_dag_larger_than_one_statement_gets_every_task_instance(
        api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """With room for two rows per statement, example_etl's four tasks take two INSERTs."""
    columns = len(api.store.tables.task_instance.c)
    monkeypatch.setattr(run_writes, "MAX_PARAMETERS", 2 * columns)
    answer = api.post("/dags/example_etl/dag_runs", json={"execution_date": WHEN})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert _task_ids(api) == ["extract", "load", "report", "transform"]


def test_batches_split_at_the_parameter_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_writes, "MAX_PARAMETERS", 7)
    rows = [{"a": n, "b": n, "c": n} for n in range(5)]
    assert [len(batch) for batch in run_writes.task_instance_batches(rows)] == [2, 2, 1]
    assert run_writes.task_instance_batches([]) == []
    assert run_writes.flat_rows(rows[:2]) == {"a__0": 0, "b__0": 0, "c__0": 0,
                                              "a__1": 1, "b__1": 1, "c__1": 1}


def test_a_duplicate_spends_no_run_id(api: ApiHarness) -> None:
    """409s by date and by run id write nothing and leave the next run the next id, as
    Airflow's own pre-check does (on PostgreSQL a failed INSERT would spend one)."""
    first = api.post("/dags/example_etl/dag_runs", json={"execution_date": WHEN,
                                                          "run_id": "first"})
    assert first.status_code == 200
    for clash in ({"execution_date": WHEN}, {"run_id": "first",
                                             "execution_date": "2026-03-02T00:00:00+00:00"}):
        again = api.post("/dags/example_etl/dag_runs", json=clash)
        assert again.status_code == 409, again.get_data(as_text=True)
    second = api.post("/dags/example_etl/dag_runs",
                      json={"execution_date": "2026-03-03T00:00:00+00:00", "run_id": "second"})
    assert second.status_code == 200
    runs = _runs(api)
    assert [run.run_id for run in runs] == ["first", "second"]
    assert runs[1].id == runs[0].id + 1
    assert _task_ids(api) == sorted(["extract", "load", "report", "transform"] * 2)


@pytest.fixture
def pg_store(make_seeded_store: Callable[[str, str], Store]) -> Store:
    """An airflow2 database on PostgreSQL, seeded (etl_nightly), its store warmed up."""
    if not PG_URL:
        pytest.fail("API_PLUGIN_TEST_PG_URL unset: see .ci/postgres.sh")
    store = make_seeded_store(AIRFLOW2, "postgresql")
    assert store.insert_run(*_rows("warm1"), None, **_clash("warm1"))
    return store


def _drop_connections(store: Store) -> int:
    """What a server restart does to the plugin's pooled connections: every other
    backend of the database is terminated."""
    admin = create_engine(store.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        admin.dispose()


def _rows(run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run of etl_nightly (on day ``run_id[-1]`` of April) and one task instance."""
    run = {"dag_id": "etl_nightly", "run_id": run_id, "state": "queued",
           "execution_date": datetime(2026, 4, int(run_id[-1]), tzinfo=UTC),
           "run_type": "manual", "external_trigger": True, "clear_number": 0}
    ti = {"dag_id": "etl_nightly", "task_id": "extract", "run_id": run_id, "map_index": -1,
          "try_number": 0, "max_tries": 0, "pool": "default_pool", "pool_slots": 1,
          "queue": "default", "priority_weight": 1}
    return run, [ti]


def _clash(run_id: str) -> dict[str, Any]:
    run, _ = _rows(run_id)
    return {"dag_id": run["dag_id"], "run_id": run_id, "when": run["execution_date"]}


@pytest.mark.postgres
def test_a_dropped_connection_reruns_the_whole_write(pg_store: Store) -> None:
    """The write's pool is not pinged: its pooled connection, dropped by the server,
    fails the first statement, and the transaction runs again on a fresh one."""
    assert _drop_connections(pg_store) >= 1
    assert pg_store.insert_run(*_rows("after2"), None, **_clash("after2"))
    ti = pg_store.tables.task_instance
    with pg_store.read() as conn:
        assert conn.scalars(select(ti.c.task_id).where(ti.c.run_id == "after2")).all() == [
            "extract"]
    # and the clash is still found on the healed pool
    assert not pg_store.insert_run(*_rows("after2"), None, **_clash("after2"))


@pytest.mark.postgres
def test_a_connection_lost_once_the_commit_is_sent_is_a_commit_sent(pg_store: Store) -> None:
    """Whether a COMMIT whose answer never came committed is unknown: ``CommitSent``
    (``insert_run`` then looks for its run before anything else)."""
    with pytest.raises(CommitSent) as raised, driver_transaction(pg_store.read_engine) as cursor:
        cursor.execute("SELECT 1")
        _drop_connections(pg_store)
    assert raised.value.connection_invalidated


@pytest.mark.postgres
def test_a_failed_statement_leaves_no_open_transaction_in_the_pool(pg_store: Store) -> None:
    """The write shares the autocommit read pool: a transaction that failed is rolled
    back before its connection goes back, so the next read is not inside it."""
    with pytest.raises(DatabaseFailure):
        run, (ti,) = _rows("bad3")  # the same task instance twice: a primary key clash
        pg_store.insert_run(run, [ti, ti], None, **_clash("bad3"))
    raw = pg_store.read_engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT now() = statement_timestamp(), count(*) FROM dag_run "
                       "WHERE run_id = 'bad3'")
        outside_a_transaction, written = cursor.fetchone()
    finally:
        raw.close()
    assert outside_a_transaction and written == 0


def _audit_rows(api: ApiHarness) -> int:
    log = api.store.tables.log
    if log is None:
        return 0
    with api.store.read() as conn:
        return len(conn.execute(select(log.c.id)).all())


def test_a_clash_writes_no_task_instance_and_no_audit_row(api: ApiHarness) -> None:
    """The task instances and the audit row go only with a run that was written."""
    first = api.post("/dags/example_etl/dag_runs", json={"execution_date": WHEN,
                                                          "run_id": "first"})
    assert first.status_code == 200
    before = (_runs(api), _task_ids(api), _audit_rows(api))
    for clash in ({"execution_date": WHEN, "run_id": "other"},
                  {"run_id": "first", "execution_date": "2026-03-02T00:00:00+00:00"}):
        assert api.post("/dags/example_etl/dag_runs", json=clash).status_code == 409
    assert (_runs(api), _task_ids(api), _audit_rows(api)) == before
    assert before[2] == (1 if api.flavor == "airflow3" else 0)


def _queued(run_id: str, at: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``_rows`` with the time the trigger writes into the run (``run_written_at``)."""
    run, tis = _rows(run_id)
    return {**run, "queued_at": at}, tis


class _Hooked:
    """A pooled connection whose cursors hand every statement to ``hook(cursor, sql,
    *values)``, which runs it (or not): psycopg2's cursors come from ``cursor()``,
    psycopg 3's from ``dbapi_connection`` (``driver._kept_cursor``), so both are
    wrapped."""

    def __init__(self, raw: Any, hook: Callable[..., Any]) -> None:
        self._raw, self._hook = raw, hook
        raw.info.pop(KEPT_CURSOR, None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def cursor(self) -> Any:
        return self._hooked(self._raw.cursor())

    @property
    def dbapi_connection(self) -> Any:
        raw, hooked = self._raw, self._hooked

        class Connection:
            def __getattr__(self, name: str) -> Any:
                return getattr(raw.dbapi_connection, name)

            def cursor(self) -> Any:
                return hooked(raw.dbapi_connection.cursor())

        return Connection()

    def _hooked(self, cursor: Any) -> Any:
        hook = self._hook

        class Cursor:
            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

            def execute(self, sql: str, *rest: Any) -> Any:
                return hook(cursor, sql, *rest)

        return Cursor()


def _lose_the_answer(store: Store, monkeypatch: pytest.MonkeyPatch,
                     before: Callable[..., None]) -> list[str]:
    """The next trigger statement (the first checkout's only) does what ``before``
    says (write, or not), then its connection is lost, as a server restart between the
    write and its answer would lose it: the error is the driver's own, from a really
    terminated backend. Later checkouts are left alone. The statements so treated."""
    pool = store.read_engine
    connect = pool.raw_connection
    lost: list[str] = []

    def losing(cursor: Any, sql: str, *rest: Any) -> Any:
        if not sql.startswith("WITH"):
            return cursor.execute(sql, *rest)
        lost.append(sql)
        before(cursor, sql, *rest)
        _drop_connections(store)
        return cursor.execute("SELECT 1")  # the driver's own error

    monkeypatch.setattr(pool, "raw_connection",
                        lambda: _Hooked(connect(), losing) if not lost else connect())
    return lost


@pytest.mark.postgres
def test_on_postgresql_the_write_is_one_statement(
        pg_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """With either driver, a write and a clash are each the one statement: no BEGIN, no
    COMMIT, no ping, no pre-check."""
    sent: list[str] = []

    def record(cursor: Any, sql: str, *rest: Any) -> Any:
        sent.append(sql.split(None, 1)[0].upper())
        return cursor.execute(sql, *rest)

    pool = pg_store.read_engine
    connect = pool.raw_connection
    monkeypatch.setattr(pool, "raw_connection", lambda: _Hooked(connect(), record))
    assert pg_store.insert_run(*_rows("one4"), None, **_clash("one4"))
    assert sent == ["WITH"]
    sent.clear()
    assert not pg_store.insert_run(*_rows("one4"), None, **_clash("one4"))
    assert sent == ["WITH"]


@pytest.mark.postgres
@pytest.mark.parametrize("written", [True, False])
def test_an_answer_lost_after_the_write_is_found_by_its_run(
        pg_store: Store, monkeypatch: pytest.MonkeyPatch, written: bool) -> None:
    """The statement committed (or never ran) and the connection was lost before its
    answer came: ``insert_run`` finds its own run (True, one run, whole), or none and
    writes it once more (True again, one run)."""

    def before(cursor: Any, sql: str, *rest: Any) -> None:
        if written:
            cursor.execute(sql, *rest)

    lost = _lose_the_answer(pg_store, monkeypatch, before)
    assert pg_store.insert_run(*_queued("lost6", datetime.now(UTC)), None, **_clash("lost6"))
    ti = pg_store.tables.task_instance
    with pg_store.read() as conn:
        runs = conn.execute(text("SELECT count(*) FROM dag_run WHERE run_id = 'lost6'")
                            ).scalar_one()
        tis = conn.scalars(select(ti.c.task_id).where(ti.c.run_id == "lost6")).all()
    assert (len(lost), runs, tis) == (1, 1, ["extract"])


@pytest.mark.postgres
def test_an_answer_lost_beside_another_run_of_that_id_is_a_clash(
        pg_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection was lost, and the run id is there, written by another trigger
    (another time in ``queued_at``): a clash, this write's run not written."""
    theirs = datetime(2026, 4, 7, 12, tzinfo=UTC)

    def before(cursor: Any, sql: str, *rest: Any) -> None:
        other = Store.open(str(pg_store.engine.url))
        try:
            assert other.insert_run(*_queued("lost7", theirs), None, **_clash("lost7"))
        finally:
            other.dispose()

    lost = _lose_the_answer(pg_store, monkeypatch, before)
    assert not pg_store.insert_run(*_queued("lost7", datetime.now(UTC)), None,
                                   **_clash("lost7"))
    assert len(lost) == 1
    dr = pg_store.tables.dag_run
    with pg_store.read() as conn:
        assert conn.scalars(select(dr.c.queued_at).where(dr.c.run_id == "lost7")).all() == [
            theirs]


class _Traced:
    """Round trips of one psycopg 3 pooled connection, from libpq's protocol trace:
    every ReadyForQuery the server sends ends one exchange the client waited for."""

    def __init__(self, raw: Any, path: Any) -> None:
        from psycopg import pq

        self._raw, self._file = raw, open(path, "ab")  # noqa: SIM115 (closed on close)
        pgconn = raw.dbapi_connection.pgconn
        pgconn.trace(self._file.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def close(self) -> None:
        if self._raw.dbapi_connection is not None:
            self._raw.dbapi_connection.pgconn.untrace()
        self._file.close()
        self._raw.close()


def trace_round_trips(store: Store, monkeypatch: pytest.MonkeyPatch, path: Any) -> None:
    """Trace into ``path`` the protocol of every connection ``store``'s reads and writes
    take from its read pool (``_exchanges`` reads it)."""
    pool = store.read_engine
    connect = pool.raw_connection
    monkeypatch.setattr(pool, "raw_connection", lambda: _Traced(connect(), path))


def _exchanges(path: Any) -> list[list[str]]:
    """The statements (their first word) of the traced frontend messages, grouped by the
    server's ReadyForQuery that answered them (``statement_kinds``: a simple query may
    carry several; SQL ``PREPARE`` is left out, ``EXECUTE`` named as what it runs)."""
    groups: list[list[str]] = [[]]
    message: list[str] = []  # the kind and lines of a frontend message with statements

    def close_message() -> None:
        if message:
            kind, text = message[0], "\n".join(message[1:])
            body = text.split('"', 3)[3] if kind == "Parse" else text.split('"', 1)[1]
            groups[-1].extend(statement_kinds(body.rsplit('"', 1)[0]))
            message.clear()

    for line in path.read_text().splitlines():
        fields = line.split("\t", 3)
        if len(fields) < 3 or fields[0] not in ("F", "B"):
            if message:
                message.append(line)  # the rest of a statement's text
            continue
        close_message()
        direction, _length, kind, rest = [*fields, ""][:4]
        if direction == "F" and kind in ("Parse", "Query"):
            message.extend((kind, rest))
        elif direction == "B" and kind == "ReadyForQuery":
            groups.append([])
    close_message()
    return [group for group in groups if group]


#: What each statement prepared by SQL runs: its name -> its first word.
_PREPARED_KINDS: dict[str, str] = {}


def statement_kinds(text: str) -> list[str]:
    """The first word of each statement of ``text``; a SQL ``PREPARE`` is noted and left
    out (``server_statements.py`` sends it once per statement and connection, on its
    own), an ``EXECUTE`` is named as the statement it runs. Splitting at ";" is enough
    for the statements the store sends."""
    kinds = []
    for part in text.split(";"):
        words = part.split()
        if not words:
            continue
        if words[0] == "PREPARE":  # PREPARE name AS statement
            _PREPARED_KINDS[words[1]] = words[3]
            continue
        kinds.append(_PREPARED_KINDS[words[1].split("(")[0]] if words[0] == "EXECUTE"
                     else words[0])
    return kinds


@pytest.mark.postgres
def test_on_postgresql_the_write_is_one_statement_and_one_round_trip(
        pg_store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """The run, its task instances (and audit row) in one statement on an autocommit
    connection, its own transaction: no BEGIN, no COMMIT, no ping, no pre-check. A clash
    is the same one statement, which then wrote nothing."""
    assert pg_store.read_engine.dialect.driver == "psycopg", "the postgres env's default"
    trace = tmp_path / "trace"
    trace_round_trips(pg_store, monkeypatch, trace)
    assert pg_store.insert_run(*_rows("two5"), None, **_clash("two5"))
    assert _exchanges(trace) == [["WITH"]]
    trace.write_text("")
    assert not pg_store.insert_run(*_rows("two5"), None, **_clash("two5"))
    assert _exchanges(trace) == [["WITH"]]
    ti = pg_store.tables.task_instance
    with pg_store.read() as conn:
        assert conn.scalars(select(ti.c.task_id).where(ti.c.run_id == "two5")).all() == [
            "extract"]


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_json_rows_read_back_as_the_values(driver: str) -> None:
    """The task instances' rows go as one JSON text (``run_writes.json_value``): read
    back through ``json_populate_recordset`` into columns of each kind, with either
    driver, every value is what was sent: quotes, backslashes, braces, a "NULL" string,
    unicode, bytes, decimals and floats that are not finite included."""
    import uuid
    from decimal import Decimal

    from sqlalchemy.engine import make_url

    assert PG_URL, "API_PLUGIN_TEST_PG_URL unset: see .ci/postgres.sh"
    columns: dict[str, tuple[str, list[Any]]] = {
        "VARCHAR(250)": ("s", ['a"b\\c', None, "NULL", "{,} ünï ✓ 😀", "", " spaced\n"]),
        "INTEGER": ("i", [1, None, -3, 0, 2**31 - 1, 7]),
        "TIMESTAMP WITH TIME ZONE": ("t", [
            datetime(2026, 1, 1, tzinfo=UTC), None,
            datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), None]),
        "BYTEA": ("b", [b"\x00\xff\\\"", None, b"", b"plain", None, b"\x80"]),
        "BOOLEAN": ("o", [True, False, None, True, False, None]),
        "DOUBLE PRECISION": ("f", [1.5, None, -0.0, 1e300, float("inf"), float("-inf")]),
        "NUMERIC": ("n", [Decimal("1.5"), None, Decimal("-0.001"), Decimal(10) ** 30,
                          Decimal(0), None]),
        "UUID": ("u", [uuid.UUID(int=1), None, uuid.uuid4(), uuid.UUID(int=0), None,
                       uuid.UUID(int=2**128 - 1)]),
    }
    names = [name for name, _ in columns.values()]
    sent = list(zip(*(values for _, values in columns.values()), strict=True))
    rows = "[" + ",".join(
        "{" + ",".join(f'"{name}":{run_writes.json_value(value)}'
                       for name, value in zip(names, row, strict=True)) + "}"
        for row in sent) + "]"
    with pytest.raises(TypeError, match="no JSON form"):
        run_writes.json_value(object())
    read = "SELECT {} FROM json_populate_recordset(NULL::kinds, CAST(%(rows)s AS JSON))"
    engine = create_engine(make_url(PG_URL).set(drivername=f"postgresql+{driver}"))
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("CREATE TEMPORARY TABLE kinds ({}, nan DOUBLE PRECISION)".format(
                ", ".join(f"{name} {kind}" for kind, (name, _) in columns.items())))
            cursor.execute(read.format(", ".join(names)), {"rows": rows})
            got = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                   for row in cursor.fetchall()]
            cursor.execute(read.format("nan"),
                           {"rows": f'[{{"nan":{run_writes.json_value(float("nan"))}}}]'})
            (nan,) = cursor.fetchone()
        finally:
            raw.rollback()
            raw.close()
    finally:
        engine.dispose()
    assert got == sent
    assert math.isnan(nan)


def test_task_instance_templates_are_made_once_per_dag_version(
        api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task instance's static columns are worked out at the DAG version's first
    trigger only; each run's own (its run id or date, Airflow 3's id, the update time)
    are its own, the rest the same."""
    flavor_class = type(api.store.flavor)
    made: list[str] = []
    static = flavor_class.task_instance_static

    def counted(self: Any, spec: Any, task: Any) -> dict[str, Any]:
        made.append(task.task_id)
        return static(self, spec, task)

    monkeypatch.setattr(flavor_class, "task_instance_static", counted)
    for n in (1, 2):
        answer = api.post("/dags/example_etl/dag_runs",
                          json={"execution_date": f"2026-03-0{n}T00:00:00+00:00",
                                "run_id": f"templated{n}"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
    assert sorted(made) == ["extract", "load", "report", "transform"]
    ti = api.store.tables.task_instance
    with api.store.read() as conn:
        rows = [row._asdict() for row in conn.execute(
            select(ti).where(ti.c.dag_id == "example_etl", ti.c.task_id == "load"))]
    assert len(rows) == 2
    first, second = rows
    differ = {key for key in first if first[key] != second[key]}
    per_run = {"airflow1": {"execution_date"}, "airflow2": {"run_id", "updated_at"},
               "airflow3": {"run_id", "updated_at", "id"}}[api.flavor]
    assert differ == per_run & set(first)


def test_a_columns_json_text_is_reused_only_for_the_same_values() -> None:
    """``RecordsetInsert`` keeps each column's last values with their JSON texts: equal
    values (the columns that follow from the DAG's definition) reuse the kept texts, any
    change gets its own, whichever column it is in and in whichever order calls come."""
    from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

    from api_plugin.flavors import flavor_named

    statement = run_writes.RecordsetInsert(pg_psycopg.dialect(),
                                           flavor_named(AIRFLOW2).build_tables(),
                                           ("task_id", "try_number", "run_id"))

    def rows(tasks: list[str], run_id: str) -> list[dict[str, Any]]:
        return [{"task_id": task, "try_number": 0, "run_id": run_id} for task in tasks]

    def sent(values: dict[str, Any]) -> Any:
        assert list(values) == [run_writes.RecordsetInsert.PARAMETER]
        return json.loads(values[run_writes.RecordsetInsert.PARAMETER])

    first = statement.values(rows(["a", "b"], "r1"))
    assert sent(first) == rows(["a", "b"], "r1")
    kept = statement._last["task_id"][1]
    assert sent(statement.values(rows(["a", "b"], "r2"))) == rows(["a", "b"], "r2")
    assert statement._last["task_id"][1] is kept  # kept, not written again
    assert sent(statement.values(rows(["a", "c"], "r2"))) == rows(["a", "c"], "r2")
    assert sent(statement.values(rows(["a"], "r2"))) == rows(["a"], "r2")
    assert statement.values(rows(["a", "b"], "r1")) == first


def test_recordset_values_of_one_column_and_of_no_rows() -> None:
    """A statement of one column reads each row's value as a row of one (``itemgetter``
    of one key gives the value itself, not a tuple); no rows is an empty array."""
    from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

    from api_plugin.flavors import flavor_named

    statement = run_writes.RecordsetInsert(pg_psycopg.dialect(),
                                           flavor_named(AIRFLOW2).build_tables(),
                                           ("task_id",))
    sent = statement.values([{"task_id": "extract"}, {"task_id": "load"}])
    assert json.loads(sent[statement.PARAMETER]) == [{"task_id": "extract"},
                                                      {"task_id": "load"}]
    assert statement.values([]) == {statement.PARAMETER: "[]"}
