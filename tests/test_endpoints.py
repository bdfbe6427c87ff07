"""Every endpoint and every error of the REST API reference (docs/rest-api-ref.rst), in
every flavor, on every configured backend."""

from __future__ import annotations

import json
import pickle
import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from api_plugin.store.safe_pickle import loads_conf
from api_plugin.store.tables import AIRFLOW1, AIRFLOW2, AIRFLOW3
from conftest import ApiHarness

BAD_DATE = ("Given execution date, {}, could not be identified as a date. "
            "Example date format: 2015-11-16T14:34:15+00:00")


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    return response.get_json()


def error(response: Any, status: int) -> str:
    body = ok(response, status)
    assert set(body) == {"error"}
    return str(body["error"])


def trigger(api: ApiHarness, dag_id: str = "example_etl", **body: Any) -> Any:
    return api.post(f"/dags/{dag_id}/dag_runs", json=body)


# 1. /test

def test_test_endpoint(api: ApiHarness) -> None:
    assert ok(api.get("/test")) == {"status": "OK"}


def test_head_works_where_get_does(api: ApiHarness) -> None:
    response = api.call("HEAD", "/test")
    assert response.status_code == 200
    assert response.get_data() == b""
    assert int(response.headers["Content-Length"]) == len(b'{"status":"OK"}')


def test_unknown_path_is_json_404(api: ApiHarness) -> None:
    assert "Not found" in error(api.get("/nope"), 404)
    assert "Not found" in error(api.client.get("/elsewhere"), 404)


def test_wrong_method_is_json_405_with_allow(api: ApiHarness) -> None:
    response = api.call("PUT", "/test")
    error(response, 405)
    assert response.headers["Allow"] == "GET, HEAD"
    response = api.call("PATCH", "/pools")
    error(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


# 2. trigger

def test_trigger_defaults(api: ApiHarness) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    body = ok(trigger(api))
    when = datetime.fromisoformat(body["execution_date"])
    assert when.microsecond == 0 and before <= when <= datetime.now(UTC)
    assert body["run_id"] == f"manual__{when.isoformat()}"
    if api.flavor == AIRFLOW1:
        assert body["message"] == (f"Created <DagRun example_etl @ {when}: {body['run_id']}, "
                                   "externally triggered: True>")
    else:
        assert body["message"].startswith(f"Created <DagRun example_etl @ {when}: "
                                          f"{body['run_id']}, state:queued, queued_at: ")
        ending = (". run_type: manual>" if api.flavor == AIRFLOW3
                  else ". externally triggered: True>")
        assert body["message"].endswith(ending)
    t = api.store.tables
    with api.store.read() as conn:
        run = conn.execute(select(t.dag_run)).one()
        tis = conn.execute(select(t.task_instance)).all()
    assert run.state == ("running" if api.flavor == AIRFLOW1 else "queued")
    if api.flavor == AIRFLOW1:
        assert run.external_trigger
        assert run.conf is None and run.start_date is not None
    elif api.flavor == AIRFLOW2:
        assert run.external_trigger
        assert loads_conf(run.conf) == {}
        assert run.run_type == "manual" and run.clear_number == 0 and run.queued_at
        assert run.log_template_id == (1 if api.backend == "sqlite" else None)
        assert run.data_interval_end == when.replace(hour=0, minute=0, second=0)
    else:
        # As Airflow 3's own REST API writes a run (open backend: no user).
        assert run.conf == {} and run.logical_date == when
        assert (run.run_type, run.triggered_by, run.triggering_user_name) == (
            "manual", "REST_API", None)
        assert run.clear_number == 0 and run.span_status == "not_started"
        assert run.queued_at == run.run_after == run.created_at == run.updated_at
        assert run.log_template_id == 2
        # example_etl runs @daily: a cron trigger timetable, no data interval before it.
        assert run.data_interval_start == run.data_interval_end == when
        with api.store.read() as conn:
            version = conn.execute(select(t.dag_version.c.id).where(
                t.dag_version.c.dag_id == "example_etl")).scalar_one()
            audit = conn.execute(select(t.log)).one()
        assert run.created_dag_version_id == version
        assert {ti.dag_version_id for ti in tis} == {version}
        assert all(uuid.UUID(ti.id).version == 7 for ti in tis)
        assert {ti.executor_config for ti in tis} == {pickle.dumps({}, protocol=5)}
        assert (audit.event, audit.dag_id, audit.run_id, audit.logical_date) == (
            "trigger_dag_run", "example_etl", None, None)
    weights = {ti.task_id: ti.priority_weight for ti in tis}
    assert weights == {"extract": 6, "transform": 5, "load": 4, "report": 1}
    assert {ti.state for ti in tis} == {None}
    assert {ti.max_tries for ti in tis} == {2}


def test_trigger_seed_curl_example_conf_string(api: ApiHarness) -> None:
    body = ok(trigger(api, conf='{"key":"value"}'))
    t = api.store.tables
    with api.store.read() as conn:
        raw = conn.execute(select(t.dag_run.c.conf).where(
            t.dag_run.c.run_id == body["run_id"])).scalar_one()
        text = (conn.exec_driver_sql("SELECT CAST(conf AS TEXT) FROM dag_run").scalar_one()
                if api.flavor == AIRFLOW3 else None)
    if api.flavor == AIRFLOW3:  # JSON text, as Airflow 3 writes it
        assert raw == {"key": "value"} and json.loads(text) == {"key": "value"}
    else:
        assert pickle.loads(raw) == {"key": "value"}
        assert raw[1] == 4  # pickle protocol 4


def test_trigger_conf_object_and_offset_date(api: ApiHarness) -> None:
    body = ok(trigger(api, conf={"a": [1, 2]}, execution_date="2025-07-01T06:30:00+02:00"))
    assert body["execution_date"] == "2025-07-01T06:30:00+02:00"
    assert body["run_id"] == "manual__2025-07-01T06:30:00+02:00"
    if api.flavor == AIRFLOW1:
        assert "@ 2025-07-01T06:30:00+02:00: " in body["message"]
    else:
        # Airflow 2.10 writes the parsed date with str(), keeping the client's offset.
        assert "@ 2025-07-01 06:30:00+02:00: " in body["message"]
    runs = ok(api.get("/dags/example_etl/dag_runs"))
    assert runs[0]["execution_date"] == "2025-07-01T04:30:00+00:00"
    state = ok(api.get("/dags/example_etl/dag_runs/2025-07-01T04:30:00Z"))
    assert state == {"state": runs[0]["state"]}


@pytest.mark.parametrize("date", ["2025-07-01T06:30:00 02:00", "2025-07-01T06:30:00%2B02:00"])
def test_trigger_accepts_form_encoded_offsets(api: ApiHarness, date: str) -> None:
    ok(trigger(api, execution_date="2025-07-01T06:30:00+02:00"))
    assert ok(api.get(f"/dags/example_etl/dag_runs/{date}")) != {}


def test_trigger_with_run_id_and_microseconds(api: ApiHarness) -> None:
    body = ok(trigger(api, run_id="my_run", execution_date="2025-03-01T00:00:00.123456"))
    assert body == {**body, "run_id": "my_run",
                    "execution_date": "2025-03-01T00:00:00.123456+00:00"}
    body = ok(trigger(api, execution_date="2025-03-02T00:00:00.5", replace_microseconds="true"))
    assert body["execution_date"] == "2025-03-02T00:00:00+00:00"
    body = ok(trigger(api, execution_date="2025-03-03T00:00:00.5", replace_microseconds=False))
    assert body["execution_date"] == "2025-03-03T00:00:00.500000+00:00"


def test_trigger_unknown_dag(api: ApiHarness) -> None:
    assert error(trigger(api, "nope"), 404) == "Dag id nope not found in DagModel"


@pytest.mark.parametrize("value", ["not-a-date", "2025-13-01", "", "2025-01-01T25:00:00"])
def test_trigger_bad_date(api: ApiHarness, value: str) -> None:
    assert error(trigger(api, execution_date=value), 400) == BAD_DATE.format(value)
    assert ok(api.get("/dags/example_etl/dag_runs")) == []


@pytest.mark.parametrize("conf", [[1, 2], "[1]", 3, "not json", True])
def test_trigger_conf_must_be_a_dict(api: ApiHarness, conf: Any) -> None:
    assert error(trigger(api, conf=conf), 400) == (
        "Dag Run conf must be a dictionary object, other types are not supported")


def test_trigger_before_default_args_start_date(api: ApiHarness) -> None:
    assert error(trigger(api, "etl_nightly", execution_date="2023-06-01T00:00:00"), 400) == (
        "The execution_date [2023-06-01T00:00:00+00:00] should be >= start_date "
        "[2024-01-01T00:00:00+00:00] from DAG's default_args")


def test_trigger_skips_tasks_that_start_later(api: ApiHarness) -> None:
    ok(trigger(api, "etl_nightly", execution_date="2025-01-01T00:00:00"))
    ok(trigger(api, "etl_nightly", execution_date="2025-07-01T00:00:00"))
    t = api.store.tables
    with api.store.read() as conn:
        rows = conn.execute(select(t.task_instance.c.task_id, t.task_instance.c.pool,
                                   t.task_instance.c.operator)).all()
    ids = sorted(r.task_id for r in rows)
    assert ids == ["extract", "extract", "load", "transform", "transform"]
    assert {r.pool for r in rows} == {"default_pool"}
    ops = {r.task_id: r.operator for r in rows}
    assert ops["transform"] == ("DummyOperator" if api.flavor == AIRFLOW1 else "EmptyOperator")


def test_trigger_duplicates_are_409(api: ApiHarness) -> None:
    ok(trigger(api, run_id="r1", execution_date="2025-05-01T00:00:00+00:00"))
    dup_run_id = error(trigger(api, run_id="r1", execution_date="2025-05-02T00:00:00"), 409)
    dup_date = error(trigger(api, run_id="r2", execution_date="2025-05-01T00:00:00+00:00"), 409)
    if api.flavor == AIRFLOW1:
        assert dup_run_id == "Run id r1 already exists for dag id example_etl"
        assert dup_date == "Run id r2 already exists for dag id example_etl"
    else:
        assert dup_run_id == ("A DAG Run already exists for DAG example_etl at "
                              "2025-05-02 00:00:00+00:00 with run id r1")
        assert dup_date == ("A DAG Run already exists for DAG example_etl at "
                            "2025-05-01 00:00:00+00:00 with run id r2")
    assert len(ok(api.get("/dags/example_etl/dag_runs"))) == 1


@pytest.mark.parametrize("raw", [b"not json", b"[1,2]", b"", b"\xff\xfe{", b"[" * 100000])
def test_trigger_body_must_be_a_json_object(api: ApiHarness, raw: bytes) -> None:
    response = api.post("/dags/example_etl/dag_runs", data=raw,
                        headers={"Content-Type": "application/json"})
    assert error(response, 400)
    assert ok(api.get("/dags/example_etl/dag_runs")) == []


def test_body_over_the_limit_is_413(api: ApiHarness) -> None:
    big = b'{"conf": {"x": "' + b"a" * (1024 * 1024) + b'"}}'
    assert error(api.post("/dags/example_etl/dag_runs", data=big), 413)


@pytest.mark.parametrize("field,value", [("run_id", ""), ("run_id", 5), ("run_id", "x" * 251),
                                         ("replace_microseconds", "maybe")])
def test_trigger_bad_fields(api: ApiHarness, field: str, value: Any) -> None:
    assert field in error(trigger(api, **{field: value}), 400)


# 3. run list

def test_run_list_shape_order_and_filters(api: ApiHarness) -> None:
    ok(trigger(api, execution_date="2025-02-01T00:00:00"))
    ok(trigger(api, execution_date="2025-01-01T00:00:00"))
    ok(trigger(api, execution_date="2025-03-01T00:00:00"))
    runs = ok(api.get("/dags/example_etl/dag_runs"))
    # In date order; on Airflow 3 in run_after order (when each run was made), since a
    # run there may have no date at all.
    order = (["2025-02-01", "2025-01-01", "2025-03-01"] if api.flavor == AIRFLOW3
             else ["2025-01-01", "2025-02-01", "2025-03-01"])
    assert [r["execution_date"][:10] for r in runs] == order
    first = next(r for r in runs if r["execution_date"].startswith("2025-01-01"))
    assert set(first) == {"id", "run_id", "state", "dag_id", "execution_date", "start_date",
                          "dag_run_url"}
    assert first["dag_id"] == "example_etl" and isinstance(first["id"], int)
    if api.flavor == AIRFLOW1:
        assert first["start_date"] != ""
        assert first["dag_run_url"] == ("/admin/airflow/graph?dag_id=example_etl&execution_date="
                                        "2025-01-01+00%3A00%3A00%2B00%3A00")
    elif api.flavor == AIRFLOW3:
        assert first["start_date"] == ""
        assert first["dag_run_url"] == (
            "/dags/example_etl/runs/manual__2025-01-01T00%3A00%3A00%2B00%3A00")
    else:
        assert first["start_date"] == ""
        assert first["dag_run_url"] == ("/dags/example_etl/graph?execution_date="
                                        "2025-01-01+00%3A00%3A00%2B00%3A00")
    state = first["state"]
    assert len(ok(api.get(f"/dags/example_etl/dag_runs?state={state}"))) == 3
    assert ok(api.get("/dags/example_etl/dag_runs?state=nonsense")) == []
    page = ok(api.get("/dags/example_etl/dag_runs?limit=1&offset=1"))
    assert [r["execution_date"][:10] for r in page] == order[1:2]
    assert ok(api.get("/dags/example_etl/dag_runs?offset=2")) == runs[2:]


@pytest.mark.parametrize("query", ["limit=-1", "limit=abc", "offset=-5", "limit=1e3"])
def test_run_list_bad_paging(api: ApiHarness, query: str) -> None:
    assert error(api.get(f"/dags/example_etl/dag_runs?{query}"), 400)


def test_run_list_unknown_dag_is_400(api: ApiHarness) -> None:
    assert error(api.get("/dags/nope/dag_runs"), 400) == "Dag id nope not found in DagModel"


# 4. run state

def test_run_state(api: ApiHarness) -> None:
    ok(trigger(api, execution_date="2025-04-01T00:00:00"))
    expected = "running" if api.flavor == AIRFLOW1 else "queued"
    assert ok(api.get("/dags/example_etl/dag_runs/2025-04-01T00:00:00")) == {"state": expected}
    assert ok(api.get("/dags/example_etl/dag_runs/2025-04-01T02:00:00+02:00")) == {
        "state": expected}
    shown = "2025-04-02T00:00:00+00:00" if api.flavor == AIRFLOW1 else "2025-04-02 00:00:00+00:00"
    assert error(api.get("/dags/example_etl/dag_runs/2025-04-02T00:00:00"), 404) == (
        f"Dag Run for date {shown} not found in dag example_etl")
    assert error(api.get("/dags/nope/dag_runs/2025-04-01T00:00:00"), 404) == (
        "Dag id nope not found in DagModel")
    assert error(api.get("/dags/example_etl/dag_runs/yesterday"), 400) == BAD_DATE.format(
        "yesterday")


# 5. task

def test_task(api: ApiHarness) -> None:
    task = ok(api.get("/dags/etl_nightly/tasks/transform"))
    assert all(isinstance(v, str) for v in task.values())
    assert task["task_id"] == "transform"
    assert task["owner"] == "ops"
    assert task["retries"] == "2"
    assert task["trigger_rule"] == "all_done"
    assert task["retry_delay"] == "0:03:00"
    # Airflow 1.10's dates are pendulum 1 objects, whose str() has a "T"; it keeps the
    # task graph in private attributes (compared with the real 1.10.15 in tests/compat).
    sep = "T" if api.flavor == AIRFLOW1 else " "
    assert task["start_date"] == f"2024-01-01{sep}00:00:00+00:00"
    if api.flavor != AIRFLOW1:
        assert task["downstream_task_ids"] == "{'load'}"
        assert task["upstream_task_ids"] == "{'extract'}"
    else:
        assert "downstream_task_ids" not in task
    assert not any(" at 0x" in v for v in task.values())
    load = ok(api.get("/dags/etl_nightly/tasks/load"))
    assert load["start_date"] == f"2025-06-01{sep}00:00:00+00:00"
    assert load["bash_command"] == "echo load"


def test_task_errors(api: ApiHarness) -> None:
    assert error(api.get("/dags/nope/tasks/x"), 404) == "Dag id nope not found in DagModel"
    assert error(api.get("/dags/etl_nightly/tasks/x"), 404) == "Task x not found in dag etl_nightly"


# 6. task instance

def test_task_instance(api: ApiHarness) -> None:
    ok(trigger(api, "etl_nightly", execution_date="2025-07-01T00:00:00"))
    ti = ok(api.get("/dags/etl_nightly/dag_runs/2025-07-01T00:00:00/tasks/extract"))
    assert all(isinstance(v, str) for v in ti.values())
    assert ti["task_id"] == "extract" and ti["dag_id"] == "etl_nightly"
    assert ti["state"] == "None" and ti["max_tries"] == "2" and ti["pool"] == "default_pool"
    assert ti["priority_weight"] == "3" and ti["operator"] == "BashOperator"
    if api.flavor == AIRFLOW1:
        assert list(ti) == ["dag_id", "task_id", "execution_date", "state", "max_tries",
                            "operator", "pool", "pool_slots", "queue", "priority_weight",
                            "start_date", "end_date", "duration", "hostname", "unixname",
                            "job_id", "pid", "queued_dttm", "executor_config", "test_mode"]
        assert ti["execution_date"] == "2025-07-01 00:00:00+00:00"
    else:
        assert ti["run_id"] == "manual__2025-07-01T00:00:00+00:00"
        assert ti["map_index"] == "-1"
        assert ti["dag_run"].startswith(
            "<DagRun etl_nightly @ 2025-07-01 00:00:00+00:00: manual__2025-07-01T00:00:00+00:00,"
            " state:queued, queued_at: ")
    if api.flavor == AIRFLOW3:
        assert ti["dag_run"].endswith(". run_type: manual>")
        assert uuid.UUID(ti["id"]).version == 7 and uuid.UUID(ti["dag_version_id"]).version == 7
        assert ti["executor_config"] == "{}" and ti["custom_operator_name"] == "BashOperator"


def test_task_instance_errors(api: ApiHarness) -> None:
    ok(trigger(api, "etl_nightly", execution_date="2025-01-01T00:00:00"))
    base = "/dags/etl_nightly/dag_runs"
    shown = "2025-01-01T00:00:00+00:00" if api.flavor == AIRFLOW1 else "2025-01-01 00:00:00+00:00"
    assert error(api.get(f"{base}/2025-01-01T00:00:00/tasks/load"), 404) == (
        f"Task load instance for date {shown} not found")
    assert error(api.get(f"{base}/2025-01-02T00:00:00/tasks/load"), 404) == (
        f"Dag Run for date {shown.replace('01 00', '02 00').replace('01T00', '02T00')} "
        "not found in dag etl_nightly")
    assert error(api.get(f"{base}/2025-01-01T00:00:00/tasks/zzz"), 404) == (
        "Task zzz not found in dag etl_nightly")
    assert error(api.get("/dags/nope/dag_runs/2025-01-01T00:00:00/tasks/load"), 404) == (
        "Dag id nope not found in DagModel")
    assert error(api.get(f"{base}/garbage/tasks/load"), 400) == BAD_DATE.format("garbage")


# 7, 8. pause

def test_pause_and_unpause(api: ApiHarness) -> None:
    assert ok(api.get("/dags/example_etl/paused/true")) == {"response": "ok"}
    assert ok(api.get("/dags/example_etl/paused")) == {"is_paused": True}
    assert ok(api.get("/dags/example_etl/paused/false")) == {"response": "ok"}
    assert ok(api.get("/dags/example_etl/paused")) == {"is_paused": False}


def test_pause_errors(api: ApiHarness) -> None:
    assert error(api.get("/dags/nope/paused/true"), 404)
    assert error(api.get("/dags/nope/paused"), 404)
    assert error(api.get("/dags/example_etl/paused/maybe"), 400)
    # Exactly "true" or "false" (SPEC 7.9): another spelling neither pauses nor un-pauses.
    for value in ("TRUE", "True", "FALSE", "1", "yes", "true%20", "%00"):
        assert error(api.get(f"/dags/example_etl/paused/{value}"), 400)
    assert ok(api.get("/dags/example_etl/paused")) == {"is_paused": False}


# 9. latest runs

def test_latest_runs(api: ApiHarness) -> None:
    assert ok(api.get("/latest_runs")) == {"items": []}
    ok(trigger(api, execution_date="2025-01-01T00:00:00"))
    ok(trigger(api, execution_date="2025-03-01T00:00:00"))
    ok(trigger(api, "etl_nightly", execution_date="2025-02-01T00:00:00"))
    items = ok(api.get("/latest_runs"))["items"]
    assert [(i["dag_id"], i["execution_date"]) for i in items] == [
        ("etl_nightly", "2025-02-01T00:00:00+00:00"),
        ("example_etl", "2025-03-01T00:00:00+00:00"),
    ]
    assert set(items[0]) == {"dag_id", "execution_date", "start_date", "dag_run_url"}
    # Any change committed by anyone shows at once (SQLite serves a cached copy only
    # while the database is unchanged): here a scheduler-like write from outside.
    assert (items[0]["start_date"] == "") == (api.flavor != AIRFLOW1)
    with api.store.engine.begin() as conn:
        conn.execute(update(api.store.tables.dag_run).where(
            api.store.tables.dag_run.c.dag_id == "etl_nightly").values(
            start_date=datetime(2025, 2, 1, 0, 5, tzinfo=UTC)))
    items = ok(api.get("/latest_runs"))["items"]
    assert items[0]["start_date"] == "2025-02-01T00:05:00+00:00"
    if api.backend == "sqlite":
        external = sqlite3.connect(api.url.removeprefix("sqlite:///"))
        external.execute("UPDATE dag_run SET state = 'x' WHERE dag_id = 'example_etl'")
        external.execute("DELETE FROM dag_run WHERE dag_id = 'etl_nightly'")
        external.commit()
        external.close()
    else:
        with api.store.engine.begin() as conn:
            conn.execute(delete(api.store.tables.dag_run).where(
                api.store.tables.dag_run.c.dag_id == "etl_nightly"))
    items = ok(api.get("/latest_runs"))["items"]
    assert [i["dag_id"] for i in items] == ["example_etl"]


def test_latest_runs_is_each_dags_newest_run(api: ApiHarness) -> None:
    """Several DAGs with several runs each, inserted out of date order (a newer row with
    an older date): each DAG's run that comes last in the flavor's order (3.x:
    ``run_after``, whose logical date may be older, or none), with its dates written as
    the run list writes them (microseconds only when there are some, no start date
    ``""``) and its UI link as the flavor builds it; on every backend's query form."""
    t = api.store.tables
    ok(trigger(api, execution_date="2024-12-01T00:00:00"))
    with api.store.engine.begin() as conn:
        template = dict(conn.execute(select(t.dag_run)).mappings().one())
        conn.execute(delete(t.dag_run))
    airflow3 = api.flavor == AIRFLOW3

    def when(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    # (dag_id, order date, logical date (3.x only, else the order date), start date),
    # in insertion order: the expected newest run of each DAG is marked.
    runs = [
        ("b_dag", "2025-03-01T00:00:00", None, "2025-03-01T00:00:05.5"),  # newest
        ("b_dag", "2025-01-01T00:00:00", None, None),
        ("b_dag", "2025-02-01T00:00:00", None, "2025-02-01T00:01:00"),
        ("a.dag-1", "2025-01-05T00:00:00", None, None),
        ("a.dag-1", "2025-06-01T12:30:00.250000", None, "2025-06-01T12:31:00"),  # newest
        ("c dag/é", "2025-04-02T00:00:00", None, "2025-04-02T00:00:00"),
        ("c dag/é", "2025-04-03T00:00:00.000001", None, None),  # newest
        ("c dag/é", "2025-04-01T00:00:00", None, "2025-04-01T00:00:00"),
        ("d_dag", "2025-05-01T00:00:00", "2025-01-01T00:00:00", None),  # newest
        ("d_dag", "2025-04-01T00:00:00", "2025-04-01T00:00:00", None),
        ("e_dag", "2025-02-01T00:00:00", "2025-02-01T00:00:00", None),
        ("e_dag", "2025-07-01T00:00:00", "", "2025-07-01T00:00:00"),  # newest
        ("single", "2024-01-01T00:00:00", None, "2024-01-01T00:00:00.000010"),  # newest
    ]
    rows, newest = [], {}
    for number, (dag_id, order, logical, started) in enumerate(runs):
        run_date = when(order)
        if airflow3 and logical is not None:
            run_date = when(logical) if logical else None  # 3.x: "" is a run with none
        row = {**template, "dag_id": dag_id, "run_id": f"manual__{number}",
               t.run_date.key: run_date, "start_date": started and when(started)}
        row.pop("id")
        if airflow3:
            row["run_after"] = when(order)
        rows.append(row)
        if dag_id not in newest or when(order) > newest[dag_id][0]:
            newest[dag_id] = (when(order), row)
    with api.store.engine.begin() as conn:
        conn.execute(insert(t.dag_run), rows)
    items = ok(api.get("/latest_runs"))["items"]
    flavor = api.store.flavor
    assert items == [
        {"dag_id": dag_id,
         "execution_date": None if row[t.run_date.key] is None
         else row[t.run_date.key].isoformat(),
         "start_date": row["start_date"].isoformat() if row["start_date"] else "",
         "dag_run_url": flavor.run_url(dag_id, row[t.run_date.key], row["run_id"], "")}
        for dag_id, (_, row) in sorted(newest.items())
    ]
    assert [i["dag_id"] for i in items] == ["a.dag-1", "b_dag", "c dag/é", "d_dag", "e_dag",
                                            "single"]
    assert [i["execution_date"] for i in items] == [
        "2025-06-01T12:30:00.250000+00:00", "2025-03-01T00:00:00+00:00",
        "2025-04-03T00:00:00.000001+00:00",
        "2025-01-01T00:00:00+00:00" if airflow3 else "2025-05-01T00:00:00+00:00",
        None if airflow3 else "2025-07-01T00:00:00+00:00", "2024-01-01T00:00:00+00:00"]
    assert [i["start_date"] for i in items] == [
        "2025-06-01T12:31:00+00:00", "2025-03-01T00:00:05.500000+00:00", "", "",
        "2025-07-01T00:00:00+00:00", "2024-01-01T00:00:00.000010+00:00"]


# 10-13. pools

def test_pools(api: ApiHarness) -> None:
    pools = ok(api.get("/pools"))
    assert [p["pool"] for p in pools] == ["default_pool"]
    expected_keys = {"id", "pool", "slots", "description"}
    if api.flavor != AIRFLOW1:
        expected_keys.add("include_deferred")
    assert set(pools[0]) == expected_keys
    created = ok(api.post("/pools", json={"name": "p1", "slots": 5, "description": "d"}))
    assert (created["pool"], created["slots"], created["description"]) == ("p1", 5, "d")
    updated = ok(api.post("/pools", json={"name": "p1", "slots": "7", "description": "e"}))
    assert updated["id"] == created["id"] and updated["slots"] == 7
    assert ok(api.get("/pools/p1")) == updated
    assert ok(api.delete("/pools/p1")) == updated
    assert error(api.get("/pools/p1"), 404) == "Pool 'p1' doesn't exist"
    assert error(api.delete("/pools/p1"), 404) == "Pool 'p1' doesn't exist"
    assert error(api.delete("/pools/default_pool"), 400) == "default_pool cannot be deleted"


@pytest.mark.parametrize("body,message", [
    ({"name": "", "slots": 1, "description": ""}, "Pool name shouldn't be empty"),
    ({"name": "p", "slots": "x", "description": ""}, "Bad value for `slots`: x"),
    ({"name": "p", "slots": 1.5, "description": ""}, "Bad value for `slots`: 1.5"),
    ({"name": "p", "slots": 2**40, "description": ""}, "Bad value for `slots`"),
    ({"name": "p", "description": ""}, "slots"),
    ({"slots": 1, "description": ""}, "name"),
])
def test_pool_create_errors(api: ApiHarness, body: dict[str, Any], message: str) -> None:
    assert message in error(api.post("/pools", json=body), 400)
    assert len(ok(api.get("/pools"))) == 1


# 3b.

def test_info_code_openapi(api: ApiHarness) -> None:
    assert ok(api.get("/info"))["flavor"] == api.flavor
    code = api.get("/dags/etl_nightly/code")
    assert code.status_code == 200
    assert code.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "etl_nightly" in code.get_data(as_text=True)
    assert error(api.get("/dags/nope/code"), 404)
    spec = ok(api.get("/openapi.json"))
    assert spec["openapi"].startswith("3.1")
    assert "/dags/{dag_id}/dag_runs" in spec["paths"]


def test_delete_dag(api: ApiHarness) -> None:
    ok(trigger(api, execution_date="2025-01-01T00:00:00"))
    body = ok(api.delete("/dags/example_etl"))
    # run, task instances, dag (3.x: and its version and source); serialized_dag and the
    # audit log are uncounted, as in Airflow
    assert body["count"] == 1 + 4 + 1 + (2 if api.flavor == AIRFLOW3 else 0)
    assert body["message"] == f"Removed {body['count']} record(s)"
    assert error(api.get("/dags/example_etl/paused"), 404)
    assert error(api.delete("/dags/example_etl"), 404) == "Dag id example_etl not found"
