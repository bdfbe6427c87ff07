"""latest_runs is served from a per-process copy while the database is unchanged, on
SQLite (``PRAGMA data_version``) and on PostgreSQL (the server's snapshot): an
unchanged database is served the kept copy; any commit, by anyone, to any table, is
seen by the next request; a transaction still open when the copy is made is seen once
it commits."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import create_engine, update

from api_plugin import services
from conftest import ApiHarness


def test_unchanged_database_is_served_the_kept_copy(api: ApiHarness) -> None:
    store = api.store
    services.trigger_dag(store, "example_etl", execution_date="2025-01-01T00:00:00+00:00")
    first = services.latest_runs(store)
    assert services.latest_runs(store) is first
    assert api.get("/latest_runs").get_json() == first
    assert services.latest_runs(store, url_base="/other") is not first  # kept per mount point


def test_any_commit_is_seen_at_once(api: ApiHarness) -> None:
    store = api.store
    services.trigger_dag(store, "example_etl", execution_date="2025-01-01T00:00:00+00:00")
    first = services.latest_runs(store)
    # A write elsewhere (a pool) also drops the copy: the marker is the whole database's.
    api.post("/pools", json={"name": "p1", "slots": 5, "description": "d"})
    second = services.latest_runs(store)
    assert second is not first and second == first
    # A scheduler-like UPDATE from another engine (no new row, same ids).
    t = api.store.tables
    other = create_engine(api.url)
    try:
        with other.begin() as conn:
            conn.execute(update(t.dag_run).values(
                start_date=datetime(2025, 1, 1, 0, 7, tzinfo=UTC)))
        assert services.latest_runs(store)["items"][0]["start_date"] == "2025-01-01T00:07:00+00:00"
    finally:
        other.dispose()


def test_a_transaction_open_when_the_copy_is_made_is_seen_once_it_commits(
        api: ApiHarness) -> None:
    store = api.store
    services.trigger_dag(store, "example_etl", execution_date="2025-01-01T00:00:00+00:00")
    t = api.store.tables
    other = create_engine(api.url)
    try:
        with other.connect() as conn:
            transaction = conn.begin()
            conn.execute(update(t.dag_run).values(
                start_date=datetime(2025, 1, 1, 0, 9, tzinfo=UTC)))
            before = services.latest_runs(store)
            transaction.commit()
        after = services.latest_runs(store)
        assert before["items"][0]["start_date"] != "2025-01-01T00:09:00+00:00"
        assert after["items"][0]["start_date"] == "2025-01-01T00:09:00+00:00"
    finally:
        other.dispose()
