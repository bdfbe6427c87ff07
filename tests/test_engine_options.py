"""The driver options every PostgreSQL connection gets (``store/engine.py``): with
psycopg 3, server-side prepared statements only on connections that reach the server
directly (never through PgBouncer), or as the URL says, on both engines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from api_plugin.store.engine import (
    AUTO,
    DIRECT_PREPARE_THRESHOLD,
    make_engine,
    make_read_engine,
    postgres_connect_args,
    prepare_threshold,
)


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql+psycopg://u@h/airflow", {"connect_timeout": 5, "prepare_threshold": None}),
    ("postgresql+psycopg://u@h/airflow?prepare_threshold=5",
     {"connect_timeout": 5, "prepare_threshold": 5}),
    ("postgresql+psycopg://u@h/airflow?prepare_threshold=None",
     {"connect_timeout": 5, "prepare_threshold": None}),
    ("postgresql+psycopg://u@h/airflow?prepare_threshold=0",
     {"connect_timeout": 5, "prepare_threshold": 0}),
    ("postgresql+psycopg://u@h/airflow?prepare_threshold=auto",
     {"connect_timeout": 5, "prepare_threshold": None}),
    ("postgresql+psycopg2://u@h/airflow", {"connect_timeout": 5}),
    ("postgresql+psycopg2://u@h/airflow?prepare_threshold=none", {"connect_timeout": 5}),
    ("postgresql+psycopg2://u@h/airflow?prepare_threshold=auto", {"connect_timeout": 5}),
])
def test_postgres_connect_args(url: str, expected: dict[str, object]) -> None:
    assert postgres_connect_args(make_url(url)) == expected


def test_plain_postgresql_url_follows_sqlalchemys_default_driver() -> None:
    """``postgresql://`` is psycopg 3 on SQLAlchemy 2.1 and psycopg2 on 2.0: the options
    follow the driver the URL resolves to."""
    url = make_url("postgresql://u@h/airflow")
    args = postgres_connect_args(url)
    if url.get_driver_name() == "psycopg":
        assert args["prepare_threshold"] is None
    else:
        assert "prepare_threshold" not in args


@pytest.mark.parametrize("value", ["five", "-1", "1.5"])
def test_a_bad_prepare_threshold_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(ValueError, match="prepare_threshold"):
        make_engine(f"postgresql+psycopg://u@h/airflow?prepare_threshold={value}")


def test_a_psycopg2_url_refuses_a_number_of_executions() -> None:
    """psycopg2 has no threshold of its own: a URL naming one is refused, saying why."""
    with pytest.raises(ValueError, match="psycopg2 database URL must be 'auto' or 'none'"):
        postgres_connect_args(make_url("postgresql+psycopg2://u@h/airflow?prepare_threshold=5"))


class Recorded(Exception):
    """Raised in place of connecting, once the connect arguments are seen."""


def _driver_options(url: str) -> list[dict[str, object]]:
    """What the driver would be called with by each engine for ``url`` (the write
    engine's, then the hot reads'), caught by SQLAlchemy's ``do_connect`` event before
    any connection is made. Each engine still has ``url``'s query."""
    seen: list[dict[str, object]] = []

    def record(_dialect: object, _record: object, _cargs: object,
               cparams: dict[str, object]) -> None:
        seen.append(dict(cparams))
        raise Recorded

    engine = make_engine(url)
    for each in (engine, make_read_engine(engine)):
        event.listen(each, "do_connect", record)
        with pytest.raises(Recorded):
            each.connect()
        assert each.url.query == make_url(url).query
    assert all(options["connect_timeout"] == 5 for options in seen)
    return seen


@pytest.mark.postgres  # needs the psycopg driver installed (the postgres extra), no server
def test_both_engines_open_connections_without_prepares() -> None:
    seen = _driver_options("postgresql+psycopg://u@h:5/airflow")
    assert [options.get("prepare_threshold", "unset") for options in seen] == [None, None]


@pytest.mark.postgres  # needs psycopg2 installed (the postgres extra), no server
def test_psycopg2_is_not_handed_the_plugins_threshold() -> None:
    """libpq knows no ``prepare_threshold`` and would refuse to connect: neither engine
    calls psycopg2 with it, and each keeps it in its URL for the plugin to read."""
    seen = _driver_options("postgresql+psycopg2://u@h:5/airflow?prepare_threshold=none")
    assert ["prepare_threshold" in options for options in seen] == [False, False]


@pytest.mark.parametrize(("query", "expected"), [
    ("", AUTO), ("?prepare_threshold=auto", AUTO), ("?prepare_threshold=AUTO", AUTO),
    ("?prepare_threshold=none", None), ("?prepare_threshold=7", 7)])
def test_prepare_threshold_is_auto_unless_the_url_says(query: str, expected: object) -> None:
    assert prepare_threshold(make_url(f"postgresql+psycopg://u@h/airflow{query}")) == expected


def _psycopg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(
        hide_password=False)


def _engines(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    yield engine
    yield make_read_engine(engine)


def _first_connections(url: str) -> Iterator[Any]:
    """The first DBAPI connection of each engine for ``url`` (the write engine's, then
    the hot reads'), given back and its engine disposed of once the caller moves on."""
    for engine in _engines(url):
        try:
            raw = engine.raw_connection()
            try:
                assert raw.dbapi_connection is not None
                yield raw.dbapi_connection
            finally:
                raw.close()
        finally:
            engine.dispose()


def _run_a_query(connection: Any) -> None:
    connection.execute("SELECT count(*) FROM pg_class WHERE relname = %s",
                       ("pg_class",)).fetchall()


def _thresholds(url: str) -> list[object]:
    """Each engine's first connection's prepare_threshold, and whether a query run six
    times on it left a statement prepared on its server connection."""
    seen: list[object] = []
    for connection in _first_connections(url):
        for _ in range(DIRECT_PREPARE_THRESHOLD + 1):
            _run_a_query(connection)
        prepared = connection.execute(
            "SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
        seen.append((connection.prepare_threshold, prepared > 0))
        connection.rollback()
    return seen


@pytest.mark.postgres
def test_a_connection_straight_to_the_server_prepares_statements() -> None:
    url = os.environ.get("API_PLUGIN_TEST_PG_URL")
    assert url, "API_PLUGIN_TEST_PG_URL names the test PostgreSQL server"
    direct = _psycopg_url(url)
    assert _thresholds(direct) == [(DIRECT_PREPARE_THRESHOLD, True)] * 2
    assert _thresholds(direct + "?prepare_threshold=none") == [(None, False)] * 2


@pytest.mark.postgres
def test_a_connection_through_a_unix_socket_does_not_prepare() -> None:
    """No port to compare: such a connection may lead to PgBouncer's socket."""
    url = make_url(_psycopg_url(os.environ.get("API_PLUGIN_TEST_PG_URL") or ""))
    engine = make_engine(url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        directories = conn.exec_driver_sql("SHOW unix_socket_directories").scalar_one()
    engine.dispose()
    folder = str(directories).split(",")[0].strip()
    assert folder, "the test server listens on a Unix-domain socket"
    local = url.set(host=None).update_query_dict({"host": folder, "port": str(url.port)})
    assert _thresholds(local.render_as_string(hide_password=False)) == [(None, False)] * 2


@pytest.mark.postgres
def test_a_connection_through_pgbouncer_does_not_prepare() -> None:
    """Through a transaction pooler the backend's pid and the client socket it sees are
    not this connection's; preparing stays off, on both engines."""
    url = os.environ.get("API_PLUGIN_TEST_PGBOUNCER_URL")
    assert url, "API_PLUGIN_TEST_PGBOUNCER_URL names the test PgBouncer (.ci/pgbouncer.sh)"
    seen = []
    for connection in _first_connections(_psycopg_url(url)):
        for _ in range(DIRECT_PREPARE_THRESHOLD + 3):  # would fail once prepared
            _run_a_query(connection)
            connection.rollback()
        seen.append(connection.prepare_threshold)
    assert seen == [None, None]


@pytest.mark.postgres
def test_through_a_pgbouncer_that_keeps_prepared_statements_the_url_turns_them_on() -> None:
    """PgBouncer 1.22 and later, given ``max_prepared_statements``, prepares a client's
    statement again on whichever server connection runs it. Nothing tells such a pooler
    from another, so ``auto`` leaves preparing off there too; ``?prepare_threshold=5``
    turns it on, and a statement prepared in one transaction serves the next ones,
    whatever server connection they get."""
    url = os.environ.get("API_PLUGIN_TEST_PGBOUNCER_PREPARED_URL")
    assert url, ("API_PLUGIN_TEST_PGBOUNCER_PREPARED_URL names the test PgBouncer that "
                 "keeps prepared statements (.ci/pgbouncer.sh)")
    assert [connection.prepare_threshold
            for connection in _first_connections(_psycopg_url(url))] == [None, None]
    told = _psycopg_url(url) + "?prepare_threshold=5"
    seen = []
    for connection in _first_connections(told):
        # Each in a transaction of its own, committed (psycopg forgets what it prepared
        # on a ROLLBACK), which PgBouncer may run on any of its server connections.
        for _ in range(DIRECT_PREPARE_THRESHOLD + 3):
            with connection.transaction():
                _run_a_query(connection)
        # The query once more, then what the server connection that ran it holds.
        with connection.transaction():
            answer = connection.execute("SELECT count(*) FROM pg_class WHERE relname = %s",
                                        ("pg_class",)).fetchone()[0]
            statements = [row[0] for row in connection.execute(
                "SELECT statement FROM pg_prepared_statements").fetchall()]
        seen.append((connection.prepare_threshold, answer,
                     any("relname" in statement for statement in statements)))
    assert seen == [(DIRECT_PREPARE_THRESHOLD, 1, True)] * 2
