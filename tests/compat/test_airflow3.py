"""Side by side with a real Apache Airflow 3.3.2, the plugin hosted in its api-server.

Airflow migrates a database (SQLite, and a database of its own on the PostgreSQL server of
``API_PLUGIN_TEST_PG_URL``) and serializes ``dags3/``. Two copies are served by two
``airflow api-server`` processes, each with api_plugin pip-installed beside Airflow: on
copy "v2" runs are triggered through Airflow's own ``POST /api/v2/dags/{id}/dagRuns``,
on copy "ours" the same runs through the plugin's ``/api/experimental``, both with a
token from Airflow's ``POST /auth/token``. The rows each wrote are compared column by
column, and then what each side reads of them. Finally, on a third copy, runs triggered
through the plugin (hosted, and standalone with ``api-plugin --airflow-config``) are run
to success by ``airflow scheduler``, and Airflow's v2 API lists every run the plugin made.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.compat.airflow_env import (
    AIRFLOW3_PASSWORDS,
    PG_URL,
    AirflowHome,
    make_home,
    spawn,
    start_api_server,
    stop,
)
from tests.compat.normalise import Answer
from tests.servers import free_port, start_server

pytestmark = pytest.mark.compat
PREFIX = "/api/experimental"
STARTED = datetime.now(UTC)
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def call(port: int, method: str, path: str, body: Any = None, token: str | None = None,
         raw: bytes | None = None, normalised: bool = True) -> tuple[Answer, dict[str, str]]:
    """One request to 127.0.0.1:port; the answer (normalised: timestamps of the moment
    replaced, see normalise.py) and the headers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (None if body is None else json.dumps(body))
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        content_type = response.getheader("Content-Type", "")
        payload = response.read()
        answer = (Answer.parse(response.status, content_type, payload, STARTED) if normalised
                  else Answer(response.status, content_type, json.loads(payload)))
        return answer, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def get_token(port: int, user: str = "admin") -> str:
    """A bearer token from Airflow's own ``POST /auth/token``."""
    answer, _ = call(port, "POST", "/auth/token",
                     {"username": user, "password": AIRFLOW3_PASSWORDS[user]})
    assert answer.status == 201, answer
    return str(answer.body["access_token"])


def query(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def home3(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHome]:
    made = make_home(tmp_path_factory.mktemp(f"airflow3_{request.param}"), "airflow3",
                     str(request.param))
    yield made
    made.drop_databases()


def test_airflow_migrated_and_serialized(home3: AirflowHome) -> None:
    """(a) Airflow 3.3.2 made the database; the plugin recognises it as airflow3."""
    from api_plugin.store import Store

    assert query(home3.database, "SELECT version_num FROM alembic_version") == [
        {"version_num": "d2f4e1b3c5a7"}]
    dags = query(home3.database, "SELECT d.dag_id, count(s.id) AS versions FROM dag d "
                 "JOIN serialized_dag s ON s.dag_id = d.dag_id GROUP BY d.dag_id "
                 "ORDER BY d.dag_id")
    assert dags == [{"dag_id": "chain", "versions": 1}, {"dag_id": "etl_nightly", "versions": 1},
                    {"dag_id": "paused_dag", "versions": 1}]
    store = Store.open(home3.database)
    try:
        assert store.flavor.name == "airflow3"
    finally:
        store.dispose()


# The runs triggered on both sides: (dag, run_id, logical date, conf).
TRIGGERS = [
    ("etl_nightly", "cmp_dated", "2025-01-01T00:00:00+00:00", {"a": 1, "b": [1, 2]}),
    ("chain", "cmp_micro", "2025-03-01T10:00:00.123456+00:00", {}),
    ("etl_nightly", "cmp_after_start", "2025-07-01T04:30:00+00:00", {"when": "july"}),
]
#: Columns that cannot be equal: row ids, the moment of the request, and the
#: OpenTelemetry trace id the v2 API draws at random for each request.
NOT_COMPARED = {
    "dag_run": {"id", "queued_at", "run_after", "created_at", "updated_at",
                "context_carrier"},
    "task_instance": {"id", "updated_at", "context_carrier"},
    "log": {"id", "dttm", "extra"},
}


@dataclass
class Pair:
    """Two api-servers on two copies of one database, and the rows each trigger wrote."""

    home: AirflowHome
    v2_db: str
    ours_db: str
    v2_port: int
    ours_port: int
    token: str
    triggers: list[tuple[Answer, Answer]]
    rows: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]
    duplicates: list[tuple[Answer, Answer]]


def written(url: str, table: str, log_after: int) -> list[dict[str, Any]]:
    """The rows the triggers wrote, in a stable order, without the uncomparable columns."""
    if table == "dag_run":
        rows = query(url, "SELECT * FROM dag_run WHERE run_id LIKE 'cmp_%' ORDER BY run_id")
    elif table == "task_instance":
        rows = query(url, "SELECT * FROM task_instance WHERE run_id LIKE 'cmp_%' "
                     "ORDER BY run_id, task_id")
    else:
        rows = query(url, "SELECT * FROM log WHERE id > :after AND event = 'trigger_dag_run' "
                     "ORDER BY id", after=log_after)
    return [{k: v for k, v in row.items() if k not in NOT_COMPARED[table]} for row in rows]


@pytest.fixture(scope="module")
def pair(home3: AirflowHome) -> Iterator[Pair]:
    v2_db, ours_db = home3.copy_database("v2"), home3.copy_database("ours")
    log_after = max(row["id"] for row in query(home3.database, "SELECT id FROM log"))
    v2 = start_api_server(home3, v2_db, v2_port := free_port())
    ours = start_api_server(home3, ours_db, ours_port := free_port())
    try:
        token = get_token(v2_port)
        triggers = [
            (call(v2_port, "POST", f"/api/v2/dags/{dag_id}/dagRuns",
                  {"dag_run_id": run_id, "logical_date": when, "conf": conf}, token)[0],
             call(ours_port, "POST", f"{PREFIX}/dags/{dag_id}/dag_runs",
                  {"run_id": run_id, "execution_date": when, "conf": conf,
                   "replace_microseconds": "false"}, token)[0])
            for dag_id, run_id, when, conf in TRIGGERS]
        rows = {table: (written(v2_db, table, log_after), written(ours_db, table, log_after))
                for table in NOT_COMPARED}
        dag_id, run_id, when, _conf = TRIGGERS[0]
        duplicates = [
            (call(v2_port, "POST", f"/api/v2/dags/{dag_id}/dagRuns",
                  {"dag_run_id": run_id, "logical_date": "2025-02-02T00:00:00Z"}, token)[0],
             call(ours_port, "POST", f"{PREFIX}/dags/{dag_id}/dag_runs",
                  {"run_id": run_id, "execution_date": "2025-02-02T00:00:00Z"}, token)[0]),
            (call(v2_port, "POST", f"/api/v2/dags/{dag_id}/dagRuns",
                  {"dag_run_id": "other", "logical_date": when}, token)[0],
             call(ours_port, "POST", f"{PREFIX}/dags/{dag_id}/dag_runs",
                  {"run_id": "other", "execution_date": when}, token)[0]),
        ]
        yield Pair(home3, v2_db, ours_db, v2_port, ours_port, token, triggers, rows,
                   duplicates)
    finally:
        stop(v2)
        stop(ours)


def test_triggers_accepted(pair: Pair) -> None:
    """(b) The same runs are accepted by Airflow's v2 API and by the hosted plugin."""
    for (theirs, ours), (dag_id, run_id, _when, _conf) in zip(pair.triggers, TRIGGERS,
                                                             strict=True):
        assert theirs.status == 200, theirs
        assert ours.status == 200, ours
        assert ours.body["run_id"] == theirs.body["dag_run_id"] == run_id
        assert ours.body["message"].startswith(f"Created <DagRun {dag_id} @ "), ours


@pytest.mark.parametrize("table", list(NOT_COMPARED))
def test_rows_written_alike(pair: Pair, table: str) -> None:
    """(b) The plugin's trigger writes what Airflow's v2 API writes, column by column."""
    theirs, ours = pair.rows[table]
    assert len(theirs) >= len(TRIGGERS), theirs  # a run, its task instances, its audit row
    differences = [
        f"{table} #{i}: {key}: airflow={a.get(key, '<absent>')!r} "
        f"plugin={b.get(key, '<absent>')!r}"
        for i, (a, b) in enumerate(zip(theirs, ours, strict=False))
        for key in sorted(a.keys() | b.keys()) if a.get(key, "<absent>") != b.get(key, "<absent>")]
    assert len(ours) == len(theirs), ours
    assert not differences, "\n".join(differences)


def test_duplicates_refused_alike(pair: Pair) -> None:
    """(b) A run_id or logical date taken: 409 on both sides, nothing written."""
    for theirs, ours in pair.duplicates:
        assert (theirs.status, ours.status) == (409, 409), (theirs, ours)
        assert ours.is_json and "error" in ours.body
    for url in (pair.v2_db, pair.ours_db):
        assert query(url, "SELECT count(*) AS n FROM dag_run WHERE run_id LIKE 'cmp_%' "
                     "OR run_id = 'other'") == [{"n": len(TRIGGERS)}]


def _without_ids(value: Any) -> Any:
    """Task instances' ``id`` (a random UUIDv7) dropped, everything else kept."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def reads() -> list[str]:
    """What both sides read after the triggers: Airflow's v2 API and the plugin's."""
    paths = []
    for dag_id, run_id, when, _conf in TRIGGERS:
        date = when.replace("+", "%2B")
        paths += [f"/api/v2/dags/{dag_id}/dagRuns/{run_id}",
                  f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                  f"{PREFIX}/dags/{dag_id}/dag_runs/{date}",
                  f"{PREFIX}/dags/{dag_id}/dag_runs"]
    paths += [f"{PREFIX}/dags/etl_nightly/dag_runs/2025-01-01T00:00:00%2B00:00/tasks/{task}"
              for task in ("extract", "transform", "load")]
    paths += [f"{PREFIX}/dags/chain/dag_runs/2025-03-01T10:00:00.123456/tasks/{task}"
              for task in ("start", "left", "right", "end")]
    paths += [f"{PREFIX}/latest_runs", "/api/v2/dags/~/dagRuns?order_by=run_id"]
    return list(dict.fromkeys(paths))  # each once


def differences(theirs: Any, ours: Any, where: str = "") -> list[str]:
    """Every path at which two JSON values differ, with both values."""
    if isinstance(theirs, dict) and isinstance(ours, dict):
        return [line for key in sorted(theirs.keys() | ours.keys())
                for line in differences(theirs.get(key, "<absent>"), ours.get(key, "<absent>"),
                                        f"{where}.{key}")]
    if isinstance(theirs, list) and isinstance(ours, list) and len(theirs) == len(ours):
        return [line for i, (a, b) in enumerate(zip(theirs, ours, strict=True))
                for line in differences(a, b, f"{where}[{i}]")]
    return [] if theirs == ours else [f"{where or '.'}: airflow={theirs!r} plugin={ours!r}"]


@pytest.mark.parametrize("path", reads())
def test_each_side_reads_alike(pair: Pair, path: str) -> None:
    """(b) Reading the run Airflow wrote and the run the plugin wrote gives the same
    answers, through Airflow's v2 API and through the plugin alike."""
    theirs, _ = call(pair.v2_port, "GET", path, token=pair.token)
    ours, _ = call(pair.ours_port, "GET", path, token=pair.token)
    assert theirs.status < 500 and theirs.is_json, theirs
    found = differences([theirs.status, _without_ids(theirs.body)],
                        [ours.status, _without_ids(ours.body)])
    assert not found, "\n".join(found)


def test_hosted_plugin_authenticates_with_airflow_tokens(pair: Pair) -> None:
    """(c) Inside the api-server the plugin's own auth applies: Airflow's token in,
    nothing or a forged token out (Airflow itself lets plugin apps through)."""
    ok, _ = call(pair.ours_port, "GET", f"{PREFIX}/test", token=pair.token)
    assert (ok.status, ok.body) == (200, {"status": "OK"})
    viewer, _ = call(pair.ours_port, "GET", f"{PREFIX}/test",
                     token=get_token(pair.ours_port, "viewer"))
    assert viewer.status == 200
    for token in (None, pair.token[:-4] + "AAAA", "garbage"):
        refused, headers = call(pair.ours_port, "GET", f"{PREFIX}/test", token=token)
        assert refused.status == 401 and refused.is_json, refused
        assert headers.get("www-authenticate", "").startswith("Bearer"), headers
    plugins, _ = call(pair.ours_port, "GET", "/api/v2/plugins", token=pair.token)
    assert [p["name"] for p in plugins.body["plugins"]] == ["api_plugin"], plugins


def start_standalone(home: AirflowHome, database: str) -> tuple[subprocess.Popen[bytes], int]:
    """``api-plugin --airflow-config auto serve`` beside Airflow: its settings from
    AIRFLOW_HOME's airflow.cfg and the AIRFLOW__ variables Airflow itself runs with."""
    server = start_server(home.path, base_environ=home.env(database),
                          options=["--airflow-config", "auto"], new_session=True)
    return server.proc, server.port


def test_scheduler_runs_what_the_plugin_triggered(home3: AirflowHome) -> None:
    """(c) and (d): runs triggered through the plugin hosted in the api-server and through
    the standalone plugin are executed to success by ``airflow scheduler`` (its tasks
    report through that api-server's execution API), and Airflow's v2 API then lists and
    shows every run the plugin made."""
    database = home3.copy_database("e2e")
    port = free_port()
    # Task processes report to this api-server's execution API.
    execution = {"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/"}
    server = start_api_server(home3, database, port, execution)
    standalone, standalone_port = start_standalone(home3, database)
    scheduler = None
    try:
        token = get_token(port)
        unpaused, _ = call(port, "GET", f"{PREFIX}/dags/chain/paused/false", token=token)
        assert unpaused.status == 200, unpaused
        made = []
        for where, run_id, when in ((port, "e2e_hosted", "2025-10-01T00:00:00+00:00"),
                                    (standalone_port, "e2e_standalone",
                                     "2025-10-02T00:00:00+00:00")):
            answer, _ = call(where, "POST", f"{PREFIX}/dags/chain/dag_runs",
                             {"run_id": run_id, "execution_date": when,
                              "conf": {"who": run_id}}, token)
            assert answer.status == 200, answer
            made.append((run_id, when.replace("+", "%2B")))
        # Runs the plugin made otherwise: defaults (now), conf as a JSON string, paused DAG.
        for dag_id, body in (("etl_nightly", {}),
                             ("etl_nightly", {"conf": '{"k": "v"}',
                                              "replace_microseconds": "false"}),
                             ("paused_dag", {"execution_date": "2025-05-05T05:05:05Z"})):
            answer, _ = call(standalone_port, "POST", f"{PREFIX}/dags/{dag_id}/dag_runs",
                             body, token)
            assert answer.status == 200, answer
        scheduler = spawn(home3, ["scheduler", "--skip-serve-logs"], database,
                          home3.path / "scheduler.log", execution)
        states: dict[str, str] = {}
        for _attempt in range(150):  # polled every 2 s, up to about 5 minutes
            time.sleep(2)
            for run_id, date in made:
                answer, _ = call(standalone_port, "GET",
                                 f"{PREFIX}/dags/chain/dag_runs/{date}", token=token)
                assert answer.status == 200, answer
                states[run_id] = answer.body["state"]
            if set(states.values()) <= {"success", "failed"}:
                break
        assert states == {"e2e_hosted": "success", "e2e_standalone": "success"}, \
            (home3.path / "scheduler.log").read_text()[-4000:]
        for _run_id, date in made:
            for task in ("start", "left", "right", "end"):
                ti, _ = call(port, "GET", f"{PREFIX}/dags/chain/dag_runs/{date}/tasks/{task}",
                             token=token)
                assert ti.status == 200 and ti.body["state"] == "success", ti
        # (d) Airflow's v2 API lists every run the plugin made, and shows each.
        ours = {(run["dag_id"], run["dag_run_id"]) for run in query_runs(database)}
        assert len(ours) == 5, ours
        listed, _ = call(port, "GET", "/api/v2/dags/~/dagRuns?limit=100", token=token,
                         normalised=False)
        assert listed.status == 200, listed
        assert ours <= {(r["dag_id"], r["dag_run_id"]) for r in listed.body["dag_runs"]}
        for dag_id in ("chain", "etl_nightly", "paused_dag"):
            one_dag, _ = call(port, "GET", f"/api/v2/dags/{dag_id}/dagRuns", token=token)
            assert one_dag.status == 200, one_dag
        for dag_id, run_id in sorted(ours):
            shown, _ = call(port, "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", token=token)
            assert shown.status == 200, shown
            assert shown.body["triggered_by"] == "rest_api", shown
            assert shown.body["triggering_user_name"] == "admin", shown
            if dag_id == "chain":  # the two runs the scheduler executed
                assert shown.body["state"] == "success", shown
                assert shown.body["conf"] == {"who": run_id}, shown
    finally:
        if scheduler is not None:
            stop(scheduler)
        stop(standalone)
        stop(server)


def query_runs(database: str) -> list[dict[str, Any]]:
    """The runs triggered through the REST API (the plugin's; the scheduler made none:
    the DAGs with a schedule stay paused)."""
    return query(database, "SELECT dag_id, run_id AS dag_run_id FROM dag_run "
                 "WHERE triggered_by = 'REST_API'")


def test_open_backend_refused_inside_the_api_server(home3: AirflowHome) -> None:
    """With ``[api_plugin] auth_backends = default`` and no explicit allowance Airflow
    records the plugin as an import error and mounts nothing."""
    env = {**home3.env(), "AIRFLOW__API_PLUGIN__AUTH_BACKENDS": "default"}
    probe = ("from airflow import plugins_manager as p; "
             "print(len(p.get_fastapi_plugins()[0])); print(p.get_import_errors())")
    done = subprocess.run([str(home3.venv / "bin" / "python"), "-c", probe], env=env,
                          cwd=home3.path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    mounted, errors = done.stdout.strip().splitlines()[-2:]
    assert mounted == "0"
    assert "allow_open_api = True" in errors and "api_plugin.serving.airflow_plugin" in errors
    env["AIRFLOW__API_PLUGIN__ALLOW_OPEN_API"] = "True"
    done = subprocess.run([str(home3.venv / "bin" / "python"), "-c", probe], env=env,
                          cwd=home3.path, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-2:] == ["1", "{}"], done.stderr

