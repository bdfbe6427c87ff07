"""The store's one database boundary: a driver error leaves the store as a 503 (the
database cannot be reached now) or a 500 (anything else), never as the driver's own
exception; a constraint the caller expects to be violated becomes the caller's error."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api_plugin.errors import Conflict
from api_plugin.store import DatabaseFailure, DatabaseUnavailable
from api_plugin.store.boundary import BOUNDARY, Boundary, database_unavailable
from api_plugin.store.tables import AIRFLOW2
from conftest import ApiHarness


class _PgError(Exception):
    """A driver error with PostgreSQL's SQLSTATE, as psycopg's carry it."""

    def __init__(self, message: str, pgcode: str) -> None:
        super().__init__(message)
        self.pgcode = pgcode


@pytest.mark.parametrize(("error", "unavailable"), [
    (PoolTimeout("QueuePool limit reached"), True),
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")), True),
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("unable to open database file")),
     True),
    (OperationalError(None, None, _PgError("the database system is shutting down", "57P03")),
     True),
    (ProgrammingError(None, None, _PgError("terminating connection", "08006")), True),
    (OperationalError("SELECT x", {}, sqlite3.OperationalError("no such column: x")), False),
    (ProgrammingError(None, None, _PgError("syntax error", "42601")), False),
    (IntegrityError(None, None, sqlite3.IntegrityError("UNIQUE constraint failed")), False),
    (sqlite3.OperationalError("unable to open database file"), True),
    (sqlite3.DatabaseError("file is not a database"), False),
])
def test_what_counts_as_an_outage(error: Exception, unavailable: bool) -> None:
    assert database_unavailable(error) is unavailable


def test_driver_errors_become_api_errors_and_api_errors_pass() -> None:
    with pytest.raises(DatabaseUnavailable) as outage, BOUNDARY:
        raise PoolTimeout("QueuePool limit reached")
    assert (outage.value.status, outage.value.message) == (
        503, "The metadata database is unavailable; try again shortly")
    assert isinstance(outage.value.__cause__, PoolTimeout)
    with pytest.raises(DatabaseFailure) as failure, BOUNDARY:
        raise sqlite3.DatabaseError("file is not a database")
    assert (failure.value.status, failure.value.message) == (500, "Internal database error")
    with pytest.raises(Conflict), BOUNDARY:
        raise Conflict("already there")
    with pytest.raises(KeyError), BOUNDARY:
        raise KeyError("not a database error")
    duplicate = Conflict("pool exists")
    with pytest.raises(Conflict) as conflict, Boundary(duplicate):
        raise IntegrityError(None, None, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert conflict.value is duplicate


@pytest.mark.parametrize("flavor", [AIRFLOW2])
def test_a_broken_query_is_a_logged_500(api: ApiHarness,
                                        caplog: pytest.LogCaptureFixture) -> None:
    with api.store.write() as conn:
        conn.execute(text("DROP TABLE task_instance"))
        conn.execute(text("DROP TABLE dag_run"))
    with caplog.at_level(logging.ERROR, logger="api_plugin.store.boundary"):
        response = api.get("/dags/etl_nightly/dag_runs")
    assert response.status_code == 500
    assert response.json == {"error": "Internal database error"}
    assert "Retry-After" not in response.headers
    logged = [r for r in caplog.records if r.name == "api_plugin.store.boundary"]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "dag_run" in str(logged[0].exc_info[1])


@pytest.mark.parametrize("flavor", [AIRFLOW2])
@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_unreachable_file_is_a_503_then_heals(api: ApiHarness) -> None:
    path = Path(api.url.removeprefix("sqlite:///"))
    api.store.dispose()
    moved = path.with_suffix(".away")
    path.rename(moved)
    path.mkdir()  # a folder where the file was: SQLite cannot open it
    try:
        for route in ("/dags/etl_nightly/dag_runs", "/latest_runs", "/pools",
                      "/dags/etl_nightly/code"):
            response = api.get(route)
            assert response.status_code == 503, route
            assert response.json == {
                "error": "The metadata database is unavailable; try again shortly"}
            assert response.headers["Retry-After"] == "1"
        triggered = api.post("/dags/etl_nightly/dag_runs", json={})
        assert triggered.status_code == 503
    finally:
        shutil.rmtree(path)
        moved.rename(path)
    assert api.get("/dags/etl_nightly/dag_runs").status_code == 200


@pytest.mark.parametrize("flavor", [AIRFLOW2])
def test_a_write_names_what_a_violated_constraint_means(api: ApiHarness) -> None:
    pools = api.store.tables.slot_pool
    row = {"pool": "default_pool", "slots": 1, "description": "again"}
    if "include_deferred" in pools.c:
        row["include_deferred"] = False
    with pytest.raises(Conflict, match="taken"), \
            api.store.write(conflict=Conflict("taken")) as conn:
        conn.execute(insert(pools).values(**row))
    with pytest.raises(DatabaseFailure), api.store.write() as conn:
        conn.execute(insert(pools).values(**row))


@pytest.mark.postgres  # needs the psycopg driver installed (the postgres extra), no server
def test_a_shutdown_behind_a_pipeline_error_is_an_outage() -> None:
    """psycopg 3 reports a server shut down in the middle of a pipelined executemany as
    "cannot exit pipeline mode while busy"; the shutdown (SQLSTATE 57P01) is its
    context, and makes it a 503 like the shutdown itself."""
    import psycopg
    from sqlalchemy.exc import OperationalError as SAOperationalError

    from api_plugin.store.boundary import database_unavailable

    busy = psycopg.OperationalError("cannot exit pipeline mode while busy")
    busy.__context__ = psycopg.errors.AdminShutdown("terminating connection")
    wrapped = SAOperationalError("INSERT", {}, busy)
    assert database_unavailable(wrapped)
    unrelated = SAOperationalError("INSERT", {}, psycopg.OperationalError("syntax"))
    assert not database_unavailable(unrelated)
