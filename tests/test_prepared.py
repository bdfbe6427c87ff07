"""``store/prepared.py``: a SELECT compiled once and run on the driver's cursor gives the
rows SQLAlchemy itself would give (the same values, processed by the same column types),
and a compiled INSERT writes what SQLAlchemy would write; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import (
    TIMESTAMP,
    bindparam,
    cast,
    create_engine,
    insert,
    literal,
    null,
    select,
)
from sqlalchemy.sql import Select

from api_plugin.store import DatabaseFailure, Store
from api_plugin.store.prepared import Prepared, PreparedInsert
from api_plugin.store.tables import AIRFLOW2, Tables
from api_plugin.store.types import UtcDateTime, utc_iso


@pytest.fixture
def store(backend: str, make_seeded_store: Callable[[str, str], Store]) -> Store:
    """A seeded airflow2 database (default_pool, etl_nightly) with three more pools."""
    store = make_seeded_store(AIRFLOW2, backend)
    pools = store.tables.slot_pool
    with store.write() as conn:
        conn.execute(insert(pools), [
            {"pool": name, "slots": slots, "description": description,
             "include_deferred": deferred}
            for name, slots, description, deferred in (
                ("alpha", 1, None, True), ("beta", -1, "unbounded", False),
                ("gamma", 0, "ünïcode ✓", True))])
    return store


def _pool_by_name(t: Tables) -> Select[Any]:
    sp = t.slot_pool
    return (select(sp.c.pool, sp.c.slots, sp.c.description, sp.c.include_deferred,
                   literal(7).label("seven"))
            .where(sp.c.pool == bindparam("name")).limit(1))


def _pools_from(t: Tables) -> Select[Any]:
    sp = t.slot_pool
    return select(sp.c.pool, sp.c.slots).where(sp.c.slots >= bindparam("least")).order_by(
        sp.c.pool)


def _serialized(t: Tables) -> Select[Any]:
    sd = t.serialized_dag
    return select(sd.c.dag_id, sd.c.last_updated, sd.c.dag_hash).where(
        sd.c.dag_id == bindparam("dag_id"))


def test_rows_are_what_sqlalchemy_returns(store: Store) -> None:
    for build, values in ((_pool_by_name, {"name": "gamma"}), (_pools_from, {"least": 0}),
                          (_serialized, {"dag_id": "etl_nightly"})):
        prepared = Prepared(store.read_engine, build(store.tables))
        with store.read() as conn:
            expected = [tuple(row) for row in conn.execute(build(store.tables), values)]
        rows = prepared.all(**values)
        assert [tuple(row) for row in rows] == expected, build.__name__
        assert rows and all(type(row) is prepared.row_type for row in rows)


def test_values_come_back_typed_and_named(store: Store) -> None:
    prepared = Prepared(store.read_engine, _pool_by_name(store.tables))
    row = prepared.first(name="gamma")
    assert row._asdict() == {"pool": "gamma", "slots": 0, "description": "ünïcode ✓",
                             "include_deferred": True, "seven": 7}
    assert row.include_deferred is True  # the Boolean type's processor, not SQLite's 1
    dated = Prepared(store.read_engine, _serialized(store.tables)).first(dag_id="etl_nightly")
    assert dated.last_updated == datetime(2025, 1, 1, tzinfo=UTC)  # UtcDateTime: aware
    assert prepared.first(name="nobody") is None
    assert [r.pool for r in Prepared(store.read_engine, _pools_from(store.tables)).all(
        least=1)] == ["alpha", "default_pool"]


def test_the_statement_is_compiled_once(store: Store) -> None:
    prepared = Prepared(store.read_engine, _pool_by_name(store.tables))
    assert "slot_pool" in prepared.sql and "gamma" not in prepared.sql
    if store.is_sqlite:  # qmark: the values go in the compiled order
        assert prepared.positional is not None and "name" in prepared.positional
    assert prepared.literals  # the literal 7 and the LIMIT travel as bound values
    assert prepared.result_processors is None  # made from the first cursor's description
    prepared.first(name="alpha")
    made = prepared.result_processors
    assert made is not None and len(made) == 5
    prepared.first(name="beta")
    assert prepared.result_processors is made


def test_the_store_keeps_one_prepared_query_per_builder(store: Store) -> None:
    first = store.prepared(_pool_by_name)
    assert store.prepared(_pool_by_name) is first
    assert store.prepared(_pools_from) is not first
    assert first.first(name="beta").slots == -1


def test_a_failing_query_is_a_database_failure(store: Store) -> None:
    prepared = Prepared(store.read_engine, _pool_by_name(store.tables))
    with store.write() as conn:
        conn.execute(store.tables.slot_pool.delete())
        conn.exec_driver_sql("DROP TABLE slot_pool")
    with pytest.raises(DatabaseFailure):
        prepared.all(name="alpha")


def test_an_insert_writes_what_sqlalchemy_would(store: Store) -> None:
    pools = store.tables.slot_pool
    rows = [{"pool": f"batch{i}", "slots": i, "description": None, "include_deferred": i % 2 == 0}
            for i in range(3)]
    compiled = PreparedInsert(store.engine, insert(pools), tuple(rows[0]))
    find = Prepared(store.read_engine, _pool_by_name(store.tables))
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        compiled.execute(cursor, {**rows[0], "pool": "single"})
        compiled.executemany(cursor, rows)
        compiled.executemany(cursor, [])  # nothing to write: no statement at all
        assert find.finds_on(cursor, name="batch2")
        assert not find.finds_on(cursor, name="batch9")
        raw.commit()
    finally:
        raw.close()
    written = {row.pool: row for row in Prepared(
        store.read_engine, _pools_from(store.tables)).all(least=0) if row.pool[0] in "bs"}
    assert sorted(written) == ["batch0", "batch1", "batch2", "single"]  # beta has -1 slots
    assert find.first(name="batch1").include_deferred is False
    assert find.first(name="batch2").include_deferred is True


def _quotient(_t: Tables) -> Select[Any]:
    return select((literal(1) / bindparam("divisor")).label("q"))


@pytest.mark.postgres
def test_a_pooled_connection_keeps_its_cursor(
        make_seeded_store: Callable[[str, str], Store], monkeypatch: pytest.MonkeyPatch) -> None:
    """psycopg 3: reads on one pooled connection share one cursor, made at its first read;
    after a failed statement, or a result larger than ``KEPT_ROWS_MAX``, the next read
    makes a new one. Every read gives its own rows."""
    from api_plugin.store import driver

    store = make_seeded_store(AIRFLOW2, "postgresql")
    with store.write() as conn:
        conn.execute(insert(store.tables.slot_pool), [
            {"pool": f"p{i}", "slots": i, "description": None, "include_deferred": False}
            for i in range(3)])
    store.read_engine.dispose()  # from here on one connection, opened by the first read
    used: list[Any] = []  # the cursor of each read, in order
    keep = driver._kept_cursor

    def recorded(raw: Any) -> Any:
        used.append(keep(raw))
        return used[-1]

    monkeypatch.setattr(driver, "_kept_cursor", recorded)
    by_name = store.prepared(_pool_by_name)
    for name, slots in (("p0", 0), ("p1", 1), ("p2", 2), ("p1", 1), ("default_pool", 128)):
        assert by_name.first(name=name).slots == slots
    assert len(used) == 5 and len({id(cursor) for cursor in used}) == 1
    assert not used[0].closed
    with pytest.raises(DatabaseFailure):
        store.prepared(_quotient).first(divisor=0)  # division by zero, on the server
    assert used[-1] is used[0] and used[0].closed  # a failed statement's is not kept
    assert by_name.first(name="p2").slots == 2
    second = used[-1]
    assert second is not used[0] and not second.closed
    monkeypatch.setattr(driver, "KEPT_ROWS_MAX", 2)
    assert [row.pool for row in store.prepared(_pools_from).all(least=0)] == [
        "default_pool", "p0", "p1", "p2"]
    assert used[-1] is second and second.closed  # four rows: more than two, not kept
    assert by_name.first(name="p0").slots == 0
    assert used[-1] is not second and not used[-1].closed


#: Dates a run list writes: whole seconds, every kind of fraction (PostgreSQL's JSON cuts
#: a fraction's trailing zeros, Python's isoformat pads it to six digits), the ends of
#: the range Python can hold, an instant given in another zone, and none.
DATES = [datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 1, 12, 30, 5, 1, tzinfo=UTC),
         datetime(2024, 2, 29, 23, 59, 59, 500000, tzinfo=UTC),
         datetime(2025, 1, 1, 0, 0, 0, 120, tzinfo=UTC),
         datetime(2025, 1, 1, 0, 0, 0, 999999, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
         datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
         datetime(2024, 6, 1, 1, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
         None]


def _dates_written(_t: Tables) -> Select[Any]:
    return select(*[utc_iso(null() if when is None else literal(when, UtcDateTime()))
                    .label(f"d{n}") for n, when in enumerate(DATES)])


def _written_by_python() -> list[str | None]:
    return [None if when is None else when.astimezone(UTC).isoformat() for when in DATES]


def test_dates_are_written_as_python_writes_them_in_utc(store: Store) -> None:
    """``utc_iso``: the text ``datetime.isoformat()`` writes for the UTC instant, made by
    the server on PostgreSQL (the row brings text, not a datetime)."""
    prepared = Prepared(store.read_engine, _dates_written(store.tables))
    if store.is_postgresql:
        assert "to_json" in prepared.sql
    assert list(prepared.first()) == _written_by_python()


@pytest.mark.postgres
def test_dates_are_written_in_utc_whatever_the_session_time_zone(
        make_seeded_store: Callable[[str, str], Store]) -> None:
    """A server or a role set to another time zone (here half an hour off a whole hour)
    changes nothing; a column with no time zone holds UTC, as Airflow writes it."""
    store = make_seeded_store(AIRFLOW2, "postgresql")
    engine = create_engine(store.read_engine.url,
                           connect_args={"options": "-c TimeZone=America/St_Johns"})
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW TimeZone").scalar() == "America/St_Johns"
        assert list(Prepared(engine, _dates_written(store.tables)).first()) == (
            _written_by_python())
        naive = datetime(2024, 6, 1, 12, 0, 0, 250000)
        no_zone = Prepared(engine, select(utc_iso(
            cast(literal(naive, TIMESTAMP()), TIMESTAMP(timezone=False))).label("d")))
        assert no_zone.first().d == "2024-06-01T12:00:00.250000+00:00"
    finally:
        engine.dispose()
