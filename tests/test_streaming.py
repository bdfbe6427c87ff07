"""A run list with no ``limit`` streams: fetched in bounded chunks, encoded as they come,
byte for byte the answer the unstreamed path gives; errors before the first chunk are
ordinary error answers, an error after it cuts the transfer off (never a short list
that parses as a whole one)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.test import EnvironBuilder

from api_plugin import services
from api_plugin.services import runs
from api_plugin.store import Store
from api_plugin.web.rendering import render_json
from conftest import PG_URL, PREFIX, ApiHarness, load_dags, seed_airflow_rows

CHUNK = 4
FIRST = 2


def trigger_runs(api: ApiHarness, count: int,
                 start: datetime = datetime(2025, 3, 1, tzinfo=UTC)) -> None:
    for n in range(count):
        response = api.post("/dags/example_etl/dag_runs", json={
            "execution_date": (start + timedelta(days=n)).isoformat()})
        assert response.status_code == 200, response.get_data(as_text=True)


def call(app: Callable[..., Any], path: str) -> tuple[str, dict[str, str], Iterator[bytes]]:
    """The app called as a server would: status, headers, and the body not yet read."""
    environ = EnvironBuilder(path=PREFIX + path, environ_base={"REMOTE_ADDR": "127.0.0.1"}
                             ).get_environ()
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
        answer.update(status=status, headers=dict(headers))

    body = iter(app(environ, start_response))
    return answer["status"], answer["headers"], body


def connections_back(store: Store) -> bool:
    """Every connection of both pools back (a stream on PostgreSQL runs on the read
    pool), none of them left inside a transaction."""
    if store.engine.pool.checkedout() or store.read_engine.pool.checkedout():  # type: ignore[attr-defined]
        return False
    if store.is_sqlite:
        return True
    with store.engine.connect() as conn:
        open_ones = conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()")).scalar()
    return open_ones == 0


@pytest.fixture
def chunked(monkeypatch: pytest.MonkeyPatch) -> int:
    """Fetches of CHUNK rows, the first of FIRST."""
    monkeypatch.setattr(runs, "STREAM_CHUNK", CHUNK)
    monkeypatch.setattr(runs, "FIRST_CHUNK", FIRST)
    return CHUNK


@pytest.mark.parametrize("count", [0, 2, 3, 6, 11])
def test_streamed_list_is_the_unstreamed_answer_in_chunks(
        api: ApiHarness, chunked: int, count: int) -> None:
    """A list longer than a first chunk streams; one that fits in it is answered whole
    from its first read. Either way the bytes are the unstreamed answer's."""
    trigger_runs(api, count)
    status, headers, body = call(api.client.application, "/dags/example_etl/dag_runs")
    assert status.startswith("200") and headers["Content-Type"] == "application/json"
    pieces = list(body)
    expected = render_json(services.get_dag_runs(api.store, "example_etl"))
    assert b"".join(pieces) == expected
    # The same list as a page (the unstreamed path through the web) is the same bytes.
    assert api.get("/dags/example_etl/dag_runs?limit=10000").get_data() == expected
    assert len(json.loads(expected)) == count
    if count <= FIRST:
        assert headers["Content-Length"] == str(len(expected)) and len(pieces) == 1
    else:
        assert "Content-Length" not in headers
        # One piece per fetch (FIRST rows, then at most CHUNK), then the closing bracket.
        assert len(pieces) == 1 + math.ceil((count - FIRST) / chunked) + 1
        assert pieces[0].count(b'"run_id"') == FIRST
        assert all(piece.count(b'"run_id"') <= chunked for piece in pieces)
    assert connections_back(api.store)


def test_a_list_found_short_is_read_as_a_page_next_time(
        api: ApiHarness, chunked: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a list with no limit fitted in a first chunk, the next one of the same DAG,
    state and offset is read as a page (the prepared statement), not streamed; grown
    past the page, it is streamed again, whole, and the bytes are always the
    unstreamed answer's."""
    streams: list[str] = []
    real_stream = api.store.stream

    def counted(*args: Any, **kwargs: Any) -> Any:
        streams.append(kwargs["dag_id"])
        return real_stream(*args, **kwargs)

    monkeypatch.setattr(api.store, "stream", counted)
    listed = ("example_etl", None, 0)

    def whole() -> tuple[dict[str, str], bytes]:
        _, headers, body = call(api.client.application, "/dags/example_etl/dag_runs")
        answer = b"".join(body)
        assert answer == render_json(services.get_dag_runs(api.store, "example_etl"))
        return headers, answer

    trigger_runs(api, FIRST)
    assert listed not in api.store.short_lists
    whole()
    assert len(streams) == 1 and listed in api.store.short_lists
    for _ in range(3):
        headers, answer = whole()
        assert len(json.loads(answer)) == FIRST and "Content-Length" in headers
    assert len(streams) == 1  # pages since
    trigger_runs(api, chunked, start=datetime(2025, 6, 1, tzinfo=UTC))  # past the page now
    headers, answer = whole()
    assert len(json.loads(answer)) == FIRST + chunked and "Content-Length" not in headers
    assert len(streams) == 2 and listed not in api.store.short_lists
    whole()
    assert len(streams) == 3  # streamed again until found short again
    # Only what the database knows, and words for states, are remembered.
    for path in ("/dags/nope/dag_runs", "/dags/example_etl/dag_runs?state=" + "x" * 65):
        call(api.client.application, path)
    assert set(api.store.short_lists) <= {listed}
    assert connections_back(api.store)


def test_filtered_and_offset_lists_stream_too(api: ApiHarness, chunked: int) -> None:
    trigger_runs(api, 6)
    for query in ("?state=queued", "?state=running", "?offset=1", "?offset=3", "?offset=99"):
        _, headers, body = call(api.client.application,
                                f"/dags/example_etl/dag_runs{query}")
        paged = api.get(f"/dags/example_etl/dag_runs{query}&limit=10000").get_data()
        assert b"".join(body) == paged, query
        assert ("Content-Length" in headers) == (len(json.loads(paged)) <= FIRST), query


def test_bad_requests_are_not_streamed(api: ApiHarness) -> None:
    status, headers, body = call(api.client.application, "/dags/nope/dag_runs")
    assert status.startswith("400") and "Content-Length" in headers
    assert "nope" in json.loads(b"".join(body))["error"]
    status, _, _ = call(api.client.application, "/dags/example_etl/dag_runs?offset=-1")
    assert status.startswith("400")


def test_a_query_that_fails_at_once_is_an_error_answer(api: ApiHarness) -> None:
    """The first chunk is fetched before the status is sent: a failing query (here its
    table gone) is a complete 500 JSON answer, not a broken stream."""
    trigger_runs(api, 2)
    with api.store.write() as conn:
        conn.execute(text("ALTER TABLE dag_run RENAME TO dag_run_gone"))
    status, headers, body = call(api.client.application, "/dags/example_etl/dag_runs")
    assert status.startswith("500")
    assert int(headers["Content-Length"]) == len(raw := b"".join(body))
    assert json.loads(raw) == {"error": "Internal database error"}
    assert connections_back(api.store)


def test_closing_a_stream_early_gives_its_connection_back(
        api: ApiHarness, chunked: int) -> None:
    trigger_runs(api, 9)
    _, _, body = call(api.client.application, "/dags/example_etl/dag_runs")
    next(body)
    body.close()  # type: ignore[attr-defined]  # what a server does when a client leaves
    assert connections_back(api.store)
    assert len(api.get("/dags/example_etl/dag_runs").get_json()) == 9


def pg_database(make_database: Callable[[str, str], str],
                driver: str | None = None) -> tuple[str, Store]:
    """A seeded PostgreSQL database, reached with ``driver`` when given."""
    if not PG_URL:
        pytest.fail("API_PLUGIN_TEST_PG_URL unset: see .ci/postgres.sh")
    from api_plugin.cli.main import example_dags_dir

    url = make_database("airflow2", "postgresql")
    if driver is not None:
        url = make_url(url).set(drivername=f"postgresql+{driver}").render_as_string(
            hide_password=False)
    store = Store.open(url)
    seed_airflow_rows(store)
    load_dags(store, example_dags_dir())
    return url, store


def app_over(url: str, store: Store) -> Callable[..., Any]:
    from api_plugin.serving.mount import build_api, json_not_found, mount_into
    from api_plugin.settings.config import Config

    config = Config.load(environ={}, database__sql_alchemy_conn=url, api__auth_backend="default")
    return mount_into(json_not_found, build_api(config, store), PREFIX)


def fetches_waiting(admin: Any) -> list[str]:
    """The last statement of each connection holding a streamed list's transaction open."""
    return [row[0] for row in admin.execute(text(
        "SELECT query FROM pg_stat_activity WHERE state = 'idle in transaction'"
        " AND query LIKE '%FETCH FORWARD%' AND pid <> pg_backend_pid()"))]


def admin_over(url: str) -> Any:
    return create_engine(make_url(url).set(drivername="postgresql+psycopg2"),
                         isolation_level="AUTOCOMMIT")


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_postgresql_fetches_through_a_server_side_cursor_and_a_cut_stream_is_not_json(
        make_database: Callable[[str, str], str], chunked: int, driver: str) -> None:
    """Mid-stream, the server holds the rest in a cursor: the first message begins the
    transaction, declares the cursor and fetches ``FIRST + 1`` rows (one round trip for
    the first chunk), then ``FETCH FORWARD 4`` at a time; killing that server connection
    then makes the transfer end in an error, with what was sent not parseable as JSON."""
    url, store = pg_database(make_database, driver)
    app = app_over(url, store)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for n in range(10):
        services.trigger_dag(
            store, "example_etl", execution_date=(start + timedelta(days=n)).isoformat())
    admin_engine = admin_over(url)
    admin = admin_engine.connect()
    try:
        status, _, body = call(app, "/dags/example_etl/dag_runs")
        sent = [next(body)]
        assert status.startswith("200")
        waiting = fetches_waiting(admin)
        assert len(waiting) == 1 and waiting[0].startswith("BEGIN READ ONLY; DECLARE ")
        assert waiting[0].endswith(f"; FETCH FORWARD {FIRST + 1} FROM api_plugin_stream")
        sent.append(next(body))
        waiting = fetches_waiting(admin)
        assert len(waiting) == 1 and waiting[0].startswith(f"FETCH FORWARD {chunked} FROM ")
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE state = 'idle in transaction' AND query LIKE "
                           "'FETCH FORWARD%' AND pid <> pg_backend_pid()"))
        with pytest.raises(Exception, match=r"terminat|closed|connection|unavailable"):
            sent.extend(body)
        with pytest.raises(json.JSONDecodeError):
            json.loads(b"".join(sent))
        assert store.read_engine.pool.checkedout() == 0
        # The pool heals: the next list is whole.
        assert len(json.loads(b"".join(call(app, "/dags/example_etl/dag_runs")[2]))) == 10
    finally:
        admin.close()
        admin_engine.dispose()
        store.dispose()


@pytest.mark.postgres
def test_a_streamed_list_leaves_the_connections_prepared_statements(
        make_database: Callable[[str, str], str]) -> None:
    """psycopg forgets every statement it prepared on a connection when it sees a
    ROLLBACK there: a list that ended its read transaction so would cost the next
    requests on that connection their prepared plans. A streamed list ends its read
    transaction with COMMIT, and the pages prepared before it stay prepared."""
    url, store = pg_database(make_database, "psycopg")
    app = app_over(url, store)
    try:
        start = datetime(2025, 3, 1, tzinfo=UTC)
        for n in range(3):
            services.trigger_dag(
                store, "example_etl", execution_date=(start + timedelta(days=n)).isoformat())
        for _ in range(8):  # prepared from the sixth on
            assert len(json.loads(b"".join(
                call(app, "/dags/example_etl/dag_runs?limit=100")[2]))) == 3
        assert len(json.loads(b"".join(call(app, "/dags/example_etl/dag_runs")[2]))) == 3
        assert store.read_engine.pool.checkedin() == 1  # type: ignore[attr-defined]
        raw = store.read_engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            statements = [row[0] for row in cursor.fetchall()]
            cursor.close()
        finally:
            raw.close()
        assert any("FROM dag_run" in statement for statement in statements), statements
    finally:
        store.dispose()


@pytest.mark.postgres
def test_postgresql_stream_is_one_snapshot_read_once(
        make_database: Callable[[str, str], str], chunked: int) -> None:
    """A run written while the list streams is not in it, nor is any run twice or
    missing: the first chunk and the rest come from one cursor in one transaction."""
    url, store = pg_database(make_database)
    app = app_over(url, store)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    try:
        for n in range(9):
            services.trigger_dag(
                store, "example_etl", execution_date=(start + timedelta(days=n)).isoformat())
        before = render_json(services.get_dag_runs(store, "example_etl"))
        status, _, body = call(app, "/dags/example_etl/dag_runs")
        sent = [next(body)]
        assert status.startswith("200")
        # Earlier and later than everything listed: either would show if read again.
        for when in (start - timedelta(days=30), start + timedelta(days=30)):
            services.trigger_dag(store, "example_etl", execution_date=when.isoformat())
        sent.extend(body)
        assert b"".join(sent) == before
        assert len(json.loads(before)) == 9
        assert len(api_list(app)) == 11
        assert connections_back(store)
    finally:
        store.dispose()


def api_list(app: Callable[..., Any]) -> list[Any]:
    return cast(list[Any], json.loads(b"".join(call(app, "/dags/example_etl/dag_runs")[2])))


@pytest.mark.postgres
def test_postgresql_stream_heals_a_dropped_connection_before_its_first_byte(
        make_database: Callable[[str, str], str], chunked: int) -> None:
    """The read pool has no ping: a pooled connection the server dropped is found by the
    stream's first message, and the list is read once more on a fresh pool, whole."""
    url, store = pg_database(make_database)
    app = app_over(url, store)
    start = datetime(2025, 3, 1, tzinfo=UTC)
    admin_engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        for n in range(7):
            services.trigger_dag(
                store, "example_etl", execution_date=(start + timedelta(days=n)).isoformat())
        assert len(api_list(app)) == 7  # the read pool now holds a connection
        with admin_engine.connect() as admin:
            killed = admin.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        assert killed
        status, headers, body = call(app, "/dags/example_etl/dag_runs")
        assert status.startswith("200") and "Content-Length" not in headers
        assert len(json.loads(b"".join(body))) == 7
        assert connections_back(store)
    finally:
        admin_engine.dispose()
        store.dispose()
