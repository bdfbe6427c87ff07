"""psycopg2's hot reads prepared on the server with ``PREPARE`` and ``EXECUTE``
(``store/server_statements.py``): only on a connection that reaches the server directly,
from a statement's sixth run on it, with the same answers as the plain text, and never
through PgBouncer."""

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
from api_plugin.store.engine import DIRECT_PREPARE_THRESHOLD
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


@pytest.fixture
def direct_store(make_database: Callable[[str, str], str]) -> Iterator[Store]:
    """A psycopg2 store on the test server, reached directly, with one read connection."""
    store = Store.open(_psycopg2(make_database("airflow3", "postgresql")))
    seed_airflow_rows(store)
    store.read_engine.dispose()
    yield store
    store.dispose()


def _prepared_here(store: Store) -> list[str]:
    """What the read pool's (one, reused) connection has prepared on its server."""
    raw = store.read_engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT statement FROM pg_prepared_statements ORDER BY prepare_time")
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
def test_a_prepared_lookup_still_refuses_a_revoked_token(direct_store: Store) -> None:
    """The token lookup that rides ahead of a read as its guard is prepared too, and a
    revoked token's still stops the read."""
    check = revoked_token_check(direct_store)
    assert check is not None
    query = direct_store.prepared(_pool_by_name)

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
    if _direct(os.environ.get("API_PLUGIN_TEST_PG_URL")):
        assert len(_prepared_here(direct_store)) == 2  # the guard and the read
        raw = direct_store.read_engine.raw_connection()
        try:
            assert server_statements.prepares(raw.dbapi_connection)
        finally:
            raw.close()
    revoke(direct_store, good)
    read = check.later(good, verdict)
    assert read is not None
    with deferred(read), pytest.raises(Unauthorized):
        query.all(name="default_pool")
    assert read.rows
