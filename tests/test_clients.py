"""Parity: json_client (against a real server process) and local_client give the same
results and the same errors for every method, in both flavors; plus the CLI on top."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from api_plugin.cli.dagfiles import load_dags
from api_plugin.cli.main import example_dags_dir
from api_plugin.client import get_client
from api_plugin.client.base import ApiClient, ClientConnectionError
from api_plugin.client.json_client import JsonClient
from api_plugin.client.local_client import LocalClient, LocalTransport
from api_plugin.client.transport import Answer
from api_plugin.errors import ApiError, MethodNotAllowed, NotFound
from api_plugin.settings.config import Config
from api_plugin.store import Store
from conftest import seed_airflow_rows
from tests.servers import Server

#: Values that belong to the moment a call ran, not to what it did (Airflow 3's UUIDv7
#: ids included: they start with the time).
MOMENT = re.compile(
    r"queued_at: [^.>]*(\.\d+)?\+00:00|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+\+00:00"
    r"|\b[0-9a-f]{12}7[0-9a-f]{19}\b"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\b"
)


def normalise(value: Any) -> Any:
    text = json.dumps(value, sort_keys=True)
    return json.loads(MOMENT.sub("<now>", text))


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", normalise(call()))
    except ApiError as exc:
        return ("error", exc.status, exc.message)


SCENARIO: list[tuple[str, Callable[[ApiClient], Any]]] = [
    ("test", lambda c: c.test()),
    ("trigger", lambda c: c.trigger_dag("example_etl", conf={"k": "v"},
                                        execution_date="2025-07-01T06:30:00+02:00")),
    ("trigger run_id", lambda c: c.trigger_dag("example_etl", run_id="mine",
                                               execution_date="2025-07-02T00:00:00")),
    ("trigger µs", lambda c: c.trigger_dag("example_etl", execution_date="2025-07-03T00:00:00.5",
                                           replace_microseconds=True)),
    ("trigger conf string", lambda c: c.trigger_dag("example_etl", conf='{"a": 1}',
                                                    execution_date="2025-07-04T00:00:00")),
    ("trigger dup", lambda c: c.trigger_dag("example_etl", run_id="mine",
                                            execution_date="2025-08-01T00:00:00")),
    ("trigger unknown", lambda c: c.trigger_dag("nope")),
    ("trigger bad date", lambda c: c.trigger_dag("example_etl", execution_date="soon")),
    ("trigger bad conf", lambda c: c.trigger_dag("example_etl", conf=[1])),
    ("trigger early", lambda c: c.trigger_dag("etl_nightly", execution_date="2020-01-01")),
    ("runs", lambda c: c.get_dag_runs("example_etl")),
    ("runs page", lambda c: c.get_dag_runs("example_etl", limit=1, offset=1)),
    ("runs state", lambda c: c.get_dag_runs("example_etl", state="nonsense")),
    ("runs unknown", lambda c: c.get_dag_runs("nope")),
    ("state", lambda c: c.get_dag_run_state("example_etl", "2025-07-02T00:00:00+00:00")),
    ("state missing", lambda c: c.get_dag_run_state("example_etl", "2030-01-01T00:00:00")),
    ("state bad", lambda c: c.get_dag_run_state("example_etl", "bad")),
    ("task", lambda c: c.get_task("etl_nightly", "load")),
    ("task unknown", lambda c: c.get_task("etl_nightly", "zzz")),
    ("ti", lambda c: {k: v for k, v in c.get_task_instance(
        "example_etl", "2025-07-02T00:00:00", "load").items() if k != "updated_at"}),
    ("ti missing", lambda c: c.get_task_instance("example_etl", "2031-01-01", "load")),
    ("pause", lambda c: c.pause_dag("example_etl")),
    ("paused", lambda c: c.get_paused("example_etl")),
    ("unpause", lambda c: c.unpause_dag("example_etl")),
    ("pause unknown", lambda c: c.pause_dag("nope")),
    ("latest", lambda c: c.latest_runs()),
    ("pools", lambda c: c.get_pools()),
    ("pool create", lambda c: c.create_pool("p1", 3, "three")),
    ("pool update", lambda c: c.create_pool("p1", 4, "four")),
    ("pool bad", lambda c: c.create_pool("", 4, "x")),
    ("pool", lambda c: c.get_pool("p1")),
    ("pool delete", lambda c: c.delete_pool("p1")),
    ("pool missing", lambda c: c.get_pool("p1")),
    ("pool default", lambda c: c.delete_pool("default_pool")),
    ("pool ñ/space", lambda c: c.create_pool("a pool ñ", 1, "")),
    ("pool get ñ/space", lambda c: c.get_pool("a pool ñ")),
    ("info", lambda c: c.info()),
    ("code", lambda c: c.get_dag_code("etl_nightly")),
    ("code unknown", lambda c: c.get_dag_code("nope")),
    ("lineage", lambda c: c.get_lineage("example_etl", "2025-07-02T00:00:00+00:00")),
    ("lineage missing", lambda c: c.get_lineage("example_etl", "2030-01-01T00:00:00")),
    ("delete unknown", lambda c: c.delete_dag("nope")),
    ("delete", lambda c: c.delete_dag("etl_nightly")),
    ("deleted", lambda c: c.get_dag_runs("etl_nightly")),
]


def seeded_database(make_database: Callable[[str, str], str], flavor: str) -> str:
    url = make_database(flavor, "sqlite")
    store = Store.open(url)
    seed_airflow_rows(store)
    load_dags(store, example_dags_dir())
    store.dispose()
    return url


@pytest.fixture
def server(flavor: str, make_database: Callable[[str, str], str],
           spawn_server: Callable[..., Server]) -> tuple[str, str]:
    """A real ``api-plugin serve`` over a seeded database: (endpoint_url, database url)."""
    url = seeded_database(make_database, flavor)
    return spawn_server(url).base, url


def test_json_and_local_clients_agree(server: tuple[str, str], flavor: str,
                                      make_database: Callable[[str, str], str]) -> None:
    endpoint, _ = server
    remote = JsonClient(endpoint)
    local = LocalClient(Store.open(seeded_database(make_database, flavor)))
    try:
        for name, step in SCENARIO:
            got_remote = outcome(lambda s=step: s(remote))  # type: ignore[misc]
            got_local = outcome(lambda s=step: s(local))  # type: ignore[misc]
            assert got_remote == got_local, name
        assert outcome(lambda: remote.get_pool("zzz")) == ("error", 404,
                                                           "Pool 'zzz' doesn't exist")
        assert len(remote.get_dag_runs("example_etl")) == 4
    finally:
        remote.close()
        local.close()


def test_json_client_keeps_endpoint_prefix_and_reports_unreachable() -> None:
    client = JsonClient("http://127.0.0.1:9/airflow")
    assert client.base == "http://127.0.0.1:9/airflow/api/experimental"
    with pytest.raises(ClientConnectionError):
        client.test()


def test_client_chosen_by_config_and_airflow_aliases(tmp_path: Path) -> None:
    config = Config.load(tmp_path / "x.cfg", environ={}, cli__api_client=(
        "airflow.api.client.json_client"), cli__endpoint_url="http://h:1/p")
    client = get_client(config)
    assert isinstance(client, JsonClient) and client.base == "http://h:1/p/api/experimental"
    with pytest.raises(ValueError, match="unknown api_client"):
        get_client(config, "rest")


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "api_plugin.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_session(server: tuple[str, str], tmp_path: Path, flavor: str) -> None:
    """The README's CLI session: trigger a run and inspect it, over HTTP."""
    endpoint, _ = server
    env = {**os.environ, "API_PLUGIN_CONFIG": str(tmp_path / "none.cfg"),
           "API_PLUGIN__CLI__ENDPOINT_URL": endpoint}
    done = run_cli("trigger", "example_etl", "--conf", '{"key": "value"}',
                   "--exec-date", "2025-07-01T00:00:00+00:00", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1] == "execution_date  2025-07-01T00:00:00+00:00"
    runs = run_cli("runs", "example_etl", "--json", env=env)
    assert [r["run_id"] for r in json.loads(runs.stdout)] == [
        "manual__2025-07-01T00:00:00+00:00"]
    state = run_cli("state", "example_etl", "2025-07-01T00:00:00+00:00", env=env)
    assert state.stdout.split() in (["state", "queued"], ["state", "running"])
    ti = run_cli("task-instance", "example_etl", "2025-07-01T00:00:00+00:00", "load", "--json",
                 env=env)
    assert json.loads(ti.stdout)["priority_weight"] == "4"
    missing = run_cli("state", "example_etl", "2030-01-01T00:00:00+00:00", env=env)
    assert missing.returncode == 1 and missing.stdout == ""
    shown = "2030-01-01T00:00:00+00:00" if flavor == "airflow1" else "2030-01-01 00:00:00+00:00"
    assert missing.stderr.strip() == (f"error: Dag Run for date {shown} "
                                      "not found in dag example_etl (HTTP 404)")
    down = run_cli("test", "--endpoint-url", "http://127.0.0.1:9", env=env)
    assert down.returncode == 3 and len(down.stderr.strip().splitlines()) == 1


def test_local_transport_builds_the_environ_a_server_would() -> None:
    """Paths relative to the prefix, decoded as a WSGI server decodes them; the query and
    the JSON body; no auth in between, and ``REMOTE_USER`` only when one is given."""
    seen: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        seen.append({**environ, "body": environ["wsgi.input"].read()})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"[]"]

    as_alice = LocalTransport(app, prefix="/api/experimental/", remote_user="alice")
    answer = as_alice.request("POST", "/pools/a%20pool%20%C3%B1", json={"k": "v"},
                              params={"limit": 2, "state": "a b"})
    assert (answer.status, answer.body) == (200, b"[]")
    environ = seen[-1]
    assert environ["SCRIPT_NAME"] == "/api/experimental"
    assert environ["PATH_INFO"].encode("latin-1").decode() == "/pools/a pool ñ"
    assert environ["QUERY_STRING"] == "limit=2&state=a+b"
    assert (environ["REQUEST_METHOD"], environ["REMOTE_USER"]) == ("POST", "alice")
    assert json.loads(environ["body"]) == {"k": "v"}
    LocalTransport(app).request("GET", "/test")
    assert "REMOTE_USER" not in seen[-1]


def test_local_client_skips_auth_and_rebuilds_errors(tmp_path: Path,
                                                     make_database: Callable[[str, str], str]
                                                     ) -> None:
    url = seeded_database(make_database, "airflow2")
    config = Config.load(tmp_path / "none.cfg", environ={}, cli__api_client="local_client",
                         database__sql_alchemy_conn=url, api__auth_backends="deny_all")
    client = get_client(config)
    try:
        assert isinstance(client, LocalClient) and client.test() == {"status": "OK"}
        assert client.info()["flavor"] == "airflow2"
        with pytest.raises(MethodNotAllowed) as refused:
            client._call("PUT", "/pools")
        assert refused.value.header("Allow") == "GET, HEAD, POST"
        with pytest.raises(NotFound):
            client.get_pool("zzz")
    finally:
        client.close()


class Canned:
    """A transport with one answer for every request."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def request(self, method: str, path: str, **_: Any) -> Answer:
        return self.answer

    def close(self) -> None:
        pass


def test_the_client_reads_every_answer_alike() -> None:
    def client(status: int, body: bytes, *headers: tuple[str, str]) -> ApiClient:
        return ApiClient(Canned(Answer(status, "Reason", list(headers), body, "here")))

    with pytest.raises(ClientConnectionError, match="later"):
        client(503, b'{"error":"later"}', ("Retry-After", "1")).test()
    with pytest.raises(ApiError) as proxy:
        client(502, b"<html>\nbad gateway").test()
    assert (proxy.value.status, proxy.value.message) == (502, "HTTP 502: <html>")
    with pytest.raises(ApiError) as empty:
        client(500, b"").test()
    assert empty.value.message == "HTTP 500: Reason"
    with pytest.raises(ApiError, match="non-JSON answer from here"):
        client(200, b"<html>").test()
    with pytest.raises(ApiError) as challenged:
        client(401, b'{"error":"who"}', ("WWW-Authenticate", "Bearer")).test()
    assert challenged.value.headers == (("WWW-Authenticate", "Bearer"),)
    assert client(200, b"def x(): pass").get_dag_code("d") == "def x(): pass"


def test_not_found_is_the_same_exception_type() -> None:
    assert isinstance(ApiError("x", 404), ApiError)
    assert NotFound("a") == ApiError("a", 404)


JWT_SECRET = "c" * 64


def airflow_token(jti: str, key: str = JWT_SECRET) -> str:
    """A token as Airflow 3's ``/auth/token`` issues it."""
    now = int(time.time())
    return jwt.encode({"sub": "admin", "role": "admin", "jti": jti, "aud": "apache-airflow",
                       "nbf": now, "exp": now + 600, "iat": now}, key, algorithm="HS512",
                      headers={"kid": "not-used"})


@pytest.fixture
def jwt_server(make_database: Callable[[str, str], str],
               spawn_server: Callable[..., Server]) -> Iterator[tuple[str, Store]]:
    """``api-plugin serve`` with ``airflow_jwt`` alone, over a database that has Airflow 3's
    ``revoked_token`` table: (endpoint_url, store)."""
    url = seeded_database(make_database, "airflow2")
    store = Store.open(url)
    with store.engine.begin() as conn:  # the table as Airflow 3.3.2 creates it
        conn.exec_driver_sql("CREATE TABLE revoked_token (jti VARCHAR(32) NOT NULL, "
                             "exp TIMESTAMP NOT NULL, CONSTRAINT revoked_token_pkey "
                             "PRIMARY KEY (jti))")
    try:
        server = spawn_server(url, settings={"api__auth_backends": "airflow_jwt"},
                              environ={"AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET})
        yield server.base, store  # a 401 answer to /test counted as up
    finally:
        store.dispose()


def test_json_client_with_a_bearer_token(jwt_server: tuple[str, Store]) -> None:
    endpoint, store = jwt_server
    anonymous = JsonClient(endpoint)
    with pytest.raises(ApiError) as refused:
        anonymous.test()
    assert refused.value.status == 401
    client = JsonClient(endpoint, token=airflow_token("a" * 32))
    try:
        assert client.test() == {"status": "OK"}
        made = client.trigger_dag("example_etl", execution_date="2025-07-01T00:00:00")
        assert made["run_id"] == "manual__2025-07-01T00:00:00+00:00"
        assert [p["pool"] for p in client.get_pools()] == ["default_pool"]
        with store.engine.begin() as conn:  # the token is logged out in Airflow
            conn.exec_driver_sql("INSERT INTO revoked_token VALUES (?, ?)",
                                 ("a" * 32, "2099-01-01 00:00:00.000000"))
        with pytest.raises(ApiError) as revoked:  # at once, whichever worker answers
            client.test()
        assert (revoked.value.status, revoked.value.message) == (401, "Token has been revoked")
    finally:
        client.close()
        anonymous.close()
    with pytest.raises(ValueError, match="line breaks"):
        JsonClient(endpoint, token="abc\r\nX-Injected: 1")
    with pytest.raises(ValueError, match="either auth or token"):
        JsonClient(endpoint, token="abc", auth=("u", "p"))


def test_cli_token_from_option_environment_and_config(jwt_server: tuple[str, Store],
                                                     tmp_path: Path) -> None:
    endpoint, _ = jwt_server
    env = {k: v for k, v in os.environ.items() if "TOKEN" not in k}
    env.update({"API_PLUGIN_CONFIG": str(tmp_path / "none.cfg"),
                "API_PLUGIN__CLI__ENDPOINT_URL": endpoint})
    good, bad = airflow_token("b" * 32), airflow_token("c" * 32, key="x" * 64)
    assert run_cli("test", "--token", good, env=env).returncode == 0
    assert run_cli("test", env={**env, "API_PLUGIN_TOKEN": good}).returncode == 0
    assert run_cli("test", env={**env, "API_PLUGIN__CLI__API_TOKEN": good}).returncode == 0
    from_basic_config = {**env, "API_PLUGIN__CLI__USERNAME": "admin",
                         "API_PLUGIN__CLI__PASSWORD": "pw", "API_PLUGIN_TOKEN": good}
    assert run_cli("test", env=from_basic_config).returncode == 0  # the token wins
    refused = run_cli("test", "--token", bad, env=env)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "error: Invalid token (HTTP 401)"
    anonymous = run_cli("test", env=env)
    assert anonymous.returncode == 1 and "(HTTP 401)" in anonymous.stderr
