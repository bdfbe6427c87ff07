"""``airflow_jwt``'s ``revoked_token`` lookup sent with the request's first query
(``store/deferred.py``): on PostgreSQL (psycopg 3 and psycopg2) it costs no round trip of
its own, and a revoked token is still refused on every kind of request, before anything
is written or sent. On SQLite the lookup is made on its own, first, as before: every test
here runs on both and expects the same answers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import Integer, Select, String, bindparam, cast, func, select, text
from werkzeug.test import Client

from api_plugin.auth.base import Authenticated, AuthMiddleware, Denied
from api_plugin.errors import Unauthorized
from api_plugin.serving.mount import build_api, json_not_found, mount_into
from api_plugin.settings.config import Config
from api_plugin.store import Store
from api_plugin.store.boundary import DatabaseFailure
from api_plugin.store.deferred import deferred
from api_plugin.store.prepared import REFUSAL
from api_plugin.store.tables import Tables
from api_plugin.store.tokens import _revoked_query, revoked_token_check
from conftest import PREFIX
from tests.test_trigger_write import _exchanges, statement_kinds, trace_round_trips

SECRET = "s" * 64
DATE = "2025-01-01T00:00:00+00:00"
RUN = f"{PREFIX}/dags/etl_nightly/dag_runs/{DATE.replace('+', '%2B')}"


def mint(jti: str) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "admin", "role": "admin", "jti": jti, "aud": "apache-airflow",
                       "nbf": now, "exp": now + 3600, "iat": now}, SECRET, algorithm="HS512",
                      headers={"kid": "not-used"})


@pytest.fixture
def airflow3(backend: str, make_seeded_store: Callable[[str, str], Store]) -> Store:
    return make_seeded_store("airflow3", backend)


def client(store: Store, backends: str = "airflow_jwt") -> Client:
    config = Config.load(environ={}, database__sql_alchemy_conn=str(store.engine.url),
                         api__auth_backends=backends, api_auth__jwt_secret=SECRET)
    return Client(mount_into(json_not_found, build_api(config, store), PREFIX))


def revoke(store: Store, jti: str) -> None:
    """What ``/api/v2/auth/logout`` writes."""
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO revoked_token (jti, exp) VALUES (:jti, :exp)"),
                     {"jti": jti, "exp": "2099-01-01 00:00:00"})


def lookups_alone(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``revoked_token`` lookups made on their own (not carried by another query)."""
    seen: list[str] = []
    query = store.prepared(_revoked_query)
    real = query.all

    def counted(**values: Any) -> Any:
        seen.append(values["jti"])
        return real(**values)

    monkeypatch.setattr(query, "all", counted)
    return seen


class Messages:
    """The statements (their first word) ``store``'s read pool sends from here on, one
    list per exchange with the server: psycopg 3's read from libpq's protocol trace
    (``test_trigger_write``), psycopg2's from the text of each ``execute``, which is one
    message and one wait for its answer (psycopg2 has no pipeline). Preparing is left
    out: psycopg 3 prepares by itself in the same exchange, and a read sent as text
    (``server_statements.py``) sends ``PREPARE`` once per statement and connection; an
    ``EXECUTE`` is noted as the statement it runs."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.path = path
        self.psycopg2: list[list[str]] | None = None
        if store.read_engine.dialect.driver == "psycopg":
            trace_round_trips(store, monkeypatch, path)
            return
        sent = self.psycopg2 = []
        pool = store.read_engine
        connect = pool.raw_connection
        monkeypatch.setattr(pool, "raw_connection", lambda: _Recorded(connect(), sent))

    def exchanges(self) -> list[list[str]]:
        if self.psycopg2 is not None:
            return list(self.psycopg2)
        return _exchanges(self.path) if self.path.exists() else []

    def clear(self) -> None:
        if self.psycopg2 is not None:
            self.psycopg2.clear()
        elif self.path.exists():
            self.path.write_text("")


class _Recorded:
    """A pooled psycopg2 connection whose cursors note the statements of each message."""

    def __init__(self, raw: Any, sent: list[list[str]]) -> None:
        self._raw, self._sent = raw, sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return _RecordingCursor(self._raw.cursor(*args, **kwargs), self._sent)


class _RecordingCursor:
    def __init__(self, cursor: Any, sent: list[list[str]]) -> None:
        self._cursor, self._sent = cursor, sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def execute(self, sql: str | bytes, *args: Any) -> Any:
        kinds = statement_kinds(sql.decode() if isinstance(sql, bytes) else sql)
        if kinds:
            self._sent.append(kinds)
        return self._cursor.execute(sql, *args)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


#: Requests that only read: (method, path, body).
READS = [
    ("GET", f"{PREFIX}/test", None),
    ("GET", f"{PREFIX}/pools", None),
    ("GET", f"{PREFIX}/pools/default_pool", None),
    ("GET", f"{PREFIX}/dags/etl_nightly/paused", None),
    ("GET", f"{PREFIX}/dags/etl_nightly/tasks/extract", None),
    ("GET", f"{PREFIX}/dags/etl_nightly/dag_runs", None),  # streamed: no limit
    ("GET", f"{PREFIX}/dags/etl_nightly/dag_runs?limit=5", None),
    ("GET", RUN, None),
    ("GET", f"{RUN}/tasks/extract", None),
    ("GET", f"{PREFIX}/latest_runs", None),
    ("HEAD", f"{PREFIX}/pools", None),
    ("GET", f"{PREFIX}/dags/nonexistent/paused", None),  # a 404 is refused alike
]


def _trigger(store: Store) -> None:
    assert client(store).post(f"{PREFIX}/dags/etl_nightly/dag_runs",
                              json={"execution_date": DATE},
                              headers=bearer(mint(uuid.uuid4().hex))).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), READS, ids=[r[1] for r in READS])
def test_a_revoked_token_is_refused_on_every_read(airflow3: Store, method: str, path: str,
                                                  body: Any) -> None:
    _trigger(airflow3)
    api = client(airflow3)
    token = mint(uuid.uuid4().hex)
    good = api.open(path, method=method, json=body, headers=bearer(token))
    assert good.status_code in (200, 404), good.get_data(as_text=True)
    revoke(airflow3, jwt.decode(token, options={"verify_signature": False})["jti"])
    refused = api.open(path, method=method, json=body, headers=bearer(token))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    if method != "HEAD":
        assert refused.get_json() == {"error": "Token has been revoked"}
    fresh = api.open(path, method=method, json=body, headers=bearer(mint(uuid.uuid4().hex)))
    assert fresh.status_code == good.status_code


def _runs(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(store.tables.dag_run))
                   .scalar_one())


def _state(store: Store) -> tuple[Any, ...]:
    t = store.tables
    with store.read() as conn:
        runs = conn.execute(select(func.count()).select_from(t.dag_run)).scalar_one()
        instances = conn.execute(select(func.count()).select_from(t.task_instance)).scalar_one()
        pools = sorted(conn.execute(select(t.slot_pool.c.pool, t.slot_pool.c.slots)).all())
        paused = conn.execute(select(t.dag.c.is_paused)
                              .where(t.dag.c.dag_id == "etl_nightly")).scalar_one()
    return runs, instances, pools, paused


#: Requests that write: (method, path, body).
WRITES = [
    ("POST", f"{PREFIX}/dags/etl_nightly/dag_runs",
     {"execution_date": "2025-03-01T00:00:00+00:00"}),
    ("GET", f"{PREFIX}/dags/etl_nightly/paused/false", None),  # the API pauses by GET
    ("POST", f"{PREFIX}/pools", {"name": "extra", "slots": 3, "description": "x"}),
    ("DELETE", f"{PREFIX}/pools/keep_me", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES,
                         ids=[f"{w[0]} {w[1]}" for w in WRITES])
def test_a_revoked_token_writes_nothing(airflow3: Store, method: str, path: str,
                                        body: Any) -> None:
    api = client(airflow3)
    setup = api.post(f"{PREFIX}/pools", json={"name": "keep_me", "slots": 1, "description": ""},
                     headers=bearer(mint(uuid.uuid4().hex)))
    assert setup.status_code == 200, setup.get_data(as_text=True)
    before = _state(airflow3)
    jti = uuid.uuid4().hex
    revoke(airflow3, jti)
    refused = api.open(path, method=method, json=body, headers=bearer(mint(jti)))
    assert (refused.status_code, refused.get_json()) == (401, {"error": "Token has been revoked"})
    assert _state(airflow3) == before
    allowed = api.open(path, method=method, json=body, headers=bearer(mint(uuid.uuid4().hex)))
    assert allowed.status_code == 200, allowed.get_data(as_text=True)
    assert _state(airflow3) != before


def test_the_lookup_rides_with_the_first_query_on_postgresql(
        airflow3: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On PostgreSQL (both drivers) a request that queries sends the lookup in the same
    message as its query, and one that does not (``/test``) makes it alone; SQLite always
    makes it alone.

    A trigger of a DAG triggered before reads nothing before its write (it writes from
    the DAG's kept head, ``store/dag_head.py``): its one statement carries the lookup as
    its guard on PostgreSQL (``test_a_trigger_carries_the_lookup_as_its_guard``)."""
    _trigger(airflow3)
    api = client(airflow3)
    alone = lookups_alone(airflow3, monkeypatch)
    rides = airflow3.is_postgresql
    messages = Messages(airflow3, monkeypatch, tmp_path / "trace") if rides else None
    token = mint("a" * 32)
    for path in (f"{RUN}/tasks/extract", f"{PREFIX}/pools", RUN):
        assert api.get(path, headers=bearer(token)).status_code == 200
        if messages is not None:  # the lookup, then the request's one query
            assert messages.exchanges() == [["SELECT", "SELECT"]], path
            messages.clear()
    assert alone == ([] if rides else ["a" * 32] * 3)
    alone.clear()
    assert api.post(f"{PREFIX}/dags/etl_nightly/dag_runs",
                    json={"execution_date": "2025-02-01T00:00:00+00:00"},
                    headers=bearer(token)).status_code == 200
    assert alone == ([] if rides else ["a" * 32])
    alone.clear()
    assert api.get(f"{PREFIX}/test", headers=bearer(token)).status_code == 200
    assert alone == ["a" * 32]


def test_a_revoked_token_stops_the_query_it_rides_with(
        airflow3: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A revoked token's lookup finds its row in the message it shares with the
    request's query: refused with the same answer as when the lookup is made alone, in
    that one exchange, and the connection serves the next request as before."""
    _trigger(airflow3)
    api = client(airflow3)
    alone = lookups_alone(airflow3, monkeypatch)
    messages = Messages(airflow3, monkeypatch, tmp_path / "trace") \
        if airflow3.is_postgresql else None
    jti = uuid.uuid4().hex
    revoke(airflow3, jti)
    for path in (f"{RUN}/tasks/extract", f"{PREFIX}/pools/default_pool", RUN):
        refused = api.get(path, headers=bearer(mint(jti)))
        assert (refused.status_code, refused.get_json()) == (
            401, {"error": "Token has been revoked"}), path
        if messages is not None:
            assert messages.exchanges() == [["SELECT", "SELECT"]], path
            messages.clear()
        assert api.get(path, headers=bearer(mint(uuid.uuid4().hex))).status_code == 200
        if messages is not None:
            messages.clear()
    if airflow3.is_postgresql:
        assert alone == []


def test_a_trigger_carries_the_lookup_as_its_guard(
        airflow3: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A trigger of a DAG triggered before is one statement on PostgreSQL (both drivers),
    the lookup in it: a revoked token is refused and writes nothing, a good one writes,
    and neither makes the lookup on its own. Elsewhere the lookup is made alone, first,
    with the same answers."""
    first = _state(airflow3)
    _trigger(airflow3)  # from here the DAG's head is kept
    per_run = _state(airflow3)[1] - first[1]
    api = client(airflow3)
    alone = lookups_alone(airflow3, monkeypatch)
    carried = airflow3.is_postgresql
    messages = Messages(airflow3, monkeypatch, tmp_path / "trace") if carried else None
    before = _state(airflow3)
    revoked, good = uuid.uuid4().hex, uuid.uuid4().hex
    revoke(airflow3, revoked)
    path = f"{PREFIX}/dags/etl_nightly/dag_runs"
    refused = api.post(path, json={"execution_date": "2025-03-01T00:00:00+00:00"},
                       headers=bearer(mint(revoked)))
    assert (refused.status_code, refused.get_json()) == (401, {"error": "Token has been revoked"})
    assert _state(airflow3) == before
    if messages is not None:
        assert messages.exchanges() == [["WITH"]]
        messages.clear()
    allowed = api.post(path, json={"execution_date": "2025-03-01T00:00:00+00:00"},
                       headers=bearer(mint(good)))
    assert allowed.status_code == 200, allowed.get_data(as_text=True)
    runs, instances, *_ = _state(airflow3)
    assert (runs, instances) == (before[0] + 1, before[1] + per_run)
    if messages is not None:
        assert messages.exchanges() == [["WITH"]]
    assert alone == ([] if carried else [revoked, good])


def _cast_to_integer(_tables: Tables) -> Select[Any]:
    """A query that fails as the refusing guard does (a text cast to integer), on a
    value the caller sends."""
    return select(cast(bindparam("text", type_=String), Integer).label("n"))


@pytest.mark.postgres
def test_only_the_guards_own_failure_refuses(
        make_seeded_store: Callable[[str, str], Store]) -> None:
    """A query whose own failure looks like the guard's (the same error, a text naming
    the guard's words without this process's number) fails as a query, and leaves the
    lookup it carried unanswered, to be read alone; the guard refuses only on its row."""
    store = make_seeded_store("airflow3", "postgresql")
    check = revoked_token_check(store)
    assert check is not None
    query = store.prepared(_cast_to_integer)
    lookalike = REFUSAL.rsplit(" ", 1)[0] + " 1"

    def verdict(rows: list[Any]) -> None:
        if rows:
            raise Unauthorized("revoked")

    read = check.later(uuid.uuid4().hex, verdict)
    assert read is not None
    with deferred(read), pytest.raises(DatabaseFailure):
        query.all(text=lookalike)
    assert read.rows is None
    with deferred(read):
        assert [row.n for row in query.all(text="7")] == [7]
    assert read.rows == []
    jti = uuid.uuid4().hex
    revoke(store, jti)
    read = check.later(jti, verdict)
    assert read is not None
    with deferred(read), pytest.raises(Unauthorized):
        query.all(text="7")  # psycopg2 refuses here, with the guard's failure
        read.settle()  # psycopg 3 brought the row with the query's
    assert read.rows


@pytest.mark.parametrize("backends", ["airflow_jwt,deny_all", "airflow_jwt,password",
                                      "password,airflow_jwt"])
def test_a_revoked_token_in_a_chain_is_answered_as_before(
        airflow3: Store, backends: str,
        make_seeded_store: Callable[[str, str], Store]) -> None:
    """The chain goes on after a refusal found late exactly as after one found at once
    (SQLite's lookup is made at once: the reference)."""
    jti = uuid.uuid4().hex
    reference = make_seeded_store("airflow3", "sqlite")
    answers = []
    for store in (reference, airflow3):
        revoke(store, jti)
        response = client(store, backends).get(f"{PREFIX}/pools", headers=bearer(mint(jti)))
        answers.append((response.status_code, response.get_json(),
                        response.headers.get("WWW-Authenticate")))
    assert answers[0] == answers[1]
    assert answers[0][0] in (401, 403)


class _Check:
    """A pending check that refuses or not, and notes whether it was answered inside the
    application's call."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.inside = False
        self.answered_inside: list[bool] = []

    @contextmanager
    def during(self) -> Iterator[None]:
        self.inside = True
        try:
            yield
        finally:
            self.inside = False

    def refusal(self) -> Denied | None:
        self.answered_inside.append(self.inside)
        return Denied(401, "Token has been revoked") if self.refuse else None


class _Pending:
    """A backend that authenticates everyone, leaving ``check`` pending."""

    name = "pending"

    def __init__(self, check: _Check) -> None:
        self.check = check

    def challenge(self) -> str:
        return "Bearer"

    def authenticate(self, environ: dict[str, Any]) -> Authenticated:
        return Authenticated("someone", pending=self.check)


@pytest.mark.parametrize("refuse", [False, True])
def test_another_application_is_called_only_once_the_check_is_answered(refuse: bool) -> None:
    """In front of any application but the plugin's own (a PasteDeploy pipeline), the
    middleware cannot know that the application settles the check before it writes: it
    answers the check first, and a refused request never reaches the application."""
    calls: list[str] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        calls.append(environ["REMOTE_USER"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"written"]

    check = _Check(refuse)
    response = Client(AuthMiddleware(app, [_Pending(check)])).get("/")
    assert check.answered_inside == [False]
    if refuse:
        assert response.status_code == 401 and calls == []
    else:
        assert (response.status_code, response.data, calls) == (200, b"written", ["someone"])


@pytest.mark.parametrize("refuse", [False, True])
def test_an_application_that_starts_its_answer_late_is_answered(refuse: bool) -> None:
    """An application that calls start_response only while its body is iterated (allowed
    by PEP 3333) gets its status through once the check is answered."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"late"

    check = _Check(refuse)
    middleware = AuthMiddleware(app, [_Pending(check)], app_settles_checks=True)
    response = Client(middleware).get("/")
    assert check.answered_inside == [True]
    if refuse:
        assert response.status_code == 401
        assert response.get_json() == {"error": "Token has been revoked"}
    else:
        assert (response.status_code, response.data) == (200, b"late")
