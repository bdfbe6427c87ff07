"""Hot reads sent as text and prepared on the server with ``PREPARE`` and ``EXECUTE``
(``store/server_statements.py``): every psycopg2 read, and psycopg 3's that carry the
token's guard; only on a connection that reaches the server directly, from a statement's
sixth run on it, with the same answers as the plain text, and never through PgBouncer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Select, bindparam, select
from sqlalchemy.engine import make_url

from api_plugin.errors import Unauthorized
from api_plugin.store import Store, server_statements
from api_plugin.store.deferred import deferred
from api_plugin.store.engine import AUTO, DIRECT_PREPARE_THRESHOLD, prepare_threshold
from api_plugin.store.server_statements import ServerForm
from api_plugin.store.tables import Tables
from api_plugin.store.tokens import revoked_token_check
from conftest import seed_airflow_rows
from tests.test_deferred_revocation import revoke


def test_a_statement_is_numbered_for_prepare_in_the_order_its_values_appear() -> None:
    form = ServerForm("SELECT a FROM t WHERE b = %(b)s AND c LIKE 'x%%' AND d = %(a)s "
                      "OR e = %(b)s LIMIT %(param_1)s")
    assert form.body == ("SELECT a FROM t WHERE b = $1 AND c LIKE 'x%' AND d = $2 "
                         "OR e = $1 LIMIT $3")
    assert form.arguments == "(%(b)s, %(a)s, %(param_1)s)"
    assert ServerForm("SELECT 1").arguments == ""


def _pool_by_name(t: Tables) -> Select[Any]:
    return select(t.slot_pool.c.pool, t.slot_pool.c.slots).where(
        t.slot_pool.c.pool == bindparam("name"))


def _untyped(_t: Tables) -> Select[Any]:
    """A value PostgreSQL cannot type from the text alone: ``PREPARE`` refuses it."""
    return select(bindparam("v").is_(None).label("missing"))


def _psycopg2(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg2").difference_update_query(
        ["prepare_threshold"]).render_as_string(hide_password=False)


def _open(url: str) -> Store:
    store = Store.open(url)
    seed_airflow_rows(store)
    store.read_engine.dispose()
    return store


@pytest.fixture
def direct_store(make_database: Callable[[str, str], str]) -> Iterator[Store]:
    """A psycopg2 store on the test server (directly, or through a PgBouncer in the
    pgbouncer environment), with one read connection."""
    store = _open(_psycopg2(make_database("airflow3", "postgresql")))
    yield store
    store.dispose()


@pytest.fixture(params=["psycopg2", "psycopg"])
def either_store(request: pytest.FixtureRequest,
                 make_database: Callable[[str, str], str]) -> Iterator[Store]:
    """``direct_store``, and the same on psycopg 3 with the test URL as it is."""
    url = make_database("airflow3", "postgresql")
    store = _open(_psycopg2(url) if request.param == "psycopg2" else url)
    yield store
    store.dispose()


def _prepared_here(store: Store) -> list[str]:
    """What the read pool's (one, reused) connection has prepared on its server by SQL
    (psycopg 3's own preparing, by the protocol, is left out)."""
    raw = store.read_engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE from_sql "
                       "ORDER BY prepare_time")
        return [row[0] for row in cursor.fetchall()]
    finally:
        raw.close()


def _direct(url: str | None) -> bool:
    """Whether the tests' PostgreSQL URL reaches the server itself (the postgres
    environment) rather than one of the PgBouncers (the pgbouncer environment)."""
    assert url, "API_PLUGIN_TEST_PG_URL names the test server"
    port = make_url(url).port
    return all(make_url(f"postgresql://{address}").port != port for name in (
        "API_PLUGIN_TEST_PGBOUNCER_ADDRESS", "API_PLUGIN_TEST_PGBOUNCER_PREPARED_ADDRESS")
        if (address := os.environ.get(name)))


@pytest.mark.postgres
def test_a_read_is_prepared_from_its_sixth_run_on_a_direct_connection(
        direct_store: Store) -> None:
    query = direct_store.prepared(_pool_by_name)
    answers = [query.all(name="default_pool") for _ in range(DIRECT_PREPARE_THRESHOLD + 3)]
    assert all(answer == answers[0] for answer in answers)
    assert [tuple(row) for row in answers[0]] == [("default_pool", 128)]
    assert query.all(name="nothing") == []
    direct = _direct(os.environ.get("API_PLUGIN_TEST_PG_URL"))
    statements = _prepared_here(direct_store)
    written = direct_store.engine.raw_connection()  # the write pool prepares nothing
    try:
        assert not server_statements.prepares(written.dbapi_connection)
    finally:
        written.close()
    if direct:
        assert len(statements) == 1 and statements[0].startswith("PREPARE api_plugin_")
        assert "slot_pool.pool = $1" in statements[0]
    else:  # through PgBouncer: never
        assert statements == []


@pytest.mark.postgres
def test_a_psycopg2_url_saying_none_never_prepares(
        make_database: Callable[[str, str], str]) -> None:
    """``?prepare_threshold=none`` with psycopg2: the store connects (libpq is not handed
    the option) and answers, and its reads stay plain text, wherever the server is."""
    store = _open(_psycopg2(make_database("airflow3", "postgresql"))
                  + "?prepare_threshold=none")
    try:
        query = store.prepared(_pool_by_name)
        for _ in range(DIRECT_PREPARE_THRESHOLD + 3):
            assert [tuple(row) for row in query.all(name="default_pool")] == [
                ("default_pool", 128)]
        assert _prepared_here(store) == []
        raw = store.read_engine.raw_connection()
        try:
            assert not server_statements.prepares(raw.dbapi_connection)
        finally:
            raw.close()
    finally:
        store.dispose()


@pytest.mark.postgres
def test_a_statement_the_server_cannot_prepare_runs_as_text(direct_store: Store) -> None:
    query = direct_store.prepared(_untyped)
    for _ in range(DIRECT_PREPARE_THRESHOLD + 3):
        assert query.first(v=None).missing is True
        assert query.first(v=3).missing is False
    assert _prepared_here(direct_store) == []


@pytest.mark.postgres
def test_a_statement_the_server_forgot_is_prepared_again(direct_store: Store) -> None:
    """``DEALLOCATE ALL`` (or ``DISCARD ALL``) on the connection: the next read is still
    answered, its statement prepared anew under a new name."""
    query = direct_store.prepared(_pool_by_name)
    for _ in range(DIRECT_PREPARE_THRESHOLD + 1):
        query.all(name="default_pool")
    first = _prepared_here(direct_store)
    raw = direct_store.read_engine.raw_connection()
    try:
        raw.cursor().execute("DEALLOCATE ALL")
    finally:
        raw.close()
    assert [tuple(row) for row in query.all(name="default_pool")] == [("default_pool", 128)]
    again = _prepared_here(direct_store)
    if _direct(os.environ.get("API_PLUGIN_TEST_PG_URL")):
        assert len(first) == len(again) == 1 and first != again
    else:
        assert first == again == []


@pytest.mark.postgres
def test_a_prepared_lookup_still_refuses_a_revoked_token(either_store: Store) -> None:
    """The token lookup that rides ahead of a read as its guard is prepared too, and a
    revoked token's still stops the read. On psycopg 3 the guarded read is sent as text
    unless the URL fixes ``prepare_threshold`` (then psycopg prepares, and the lookup
    goes in its pipeline)."""
    store = either_store
    check = revoked_token_check(store)
    assert check is not None
    query = store.prepared(_pool_by_name)

    def verdict(rows: list[Any]) -> None:
        if rows:
            raise Unauthorized("revoked")

    good = uuid.uuid4().hex
    for _ in range(DIRECT_PREPARE_THRESHOLD + 2):
        read = check.later(good, verdict)
        assert read is not None
        with deferred(read):
            assert [row.slots for row in query.all(name="default_pool")] == [128]
        assert read.rows == []
    psycopg3 = store.read_engine.dialect.driver == "psycopg"
    fixed = psycopg3 and prepare_threshold(store.read_engine.url) not in (AUTO, None)
    direct = _direct(os.environ.get("API_PLUGIN_TEST_PG_URL"))
    raw = store.read_engine.raw_connection()
    try:
        cursor = raw.cursor()
        as_text = server_statements.text_cursor(cursor) is not None
        cursor.close()
        assert server_statements.prepares(raw.dbapi_connection) == (direct and not fixed)
    finally:
        raw.close()
    assert as_text == (not fixed)
    if direct and not fixed:
        assert len(_prepared_here(store)) == 2  # the guard and the read
    else:
        assert _prepared_here(store) == []
    revoke(store, good)
    read = check.later(good, verdict)
    assert read is not None
    with deferred(read), pytest.raises(Unauthorized):
        query.all(name="default_pool")  # the guard fails the message: raised at once
        read.settle()  # in psycopg's pipeline the lookup's row is judged after the read
    assert read.rows
