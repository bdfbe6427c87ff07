"""What only an Airflow 3 database has: runs without a date, refused triggers, versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from api_plugin.flavors.intervals import timetable_data_interval
from api_plugin.store.tables import AIRFLOW3
from conftest import ApiHarness
from tests.test_endpoints import error, ok, trigger

#: Tests over an Airflow 3 database (the ``api`` fixture, on every backend).
airflow3 = pytest.mark.parametrize("flavor", [AIRFLOW3])


def _dateless_run(api: ApiHarness, run_id: str, run_after: datetime) -> None:
    """A run as Airflow 3 makes it without a logical date (``logical_date: null``)."""
    t = api.store.tables
    with api.store.write() as conn:
        conn.execute(insert(t.dag_run).values(
            dag_id="example_etl", run_id=run_id, run_type="manual", state="queued",
            run_after=run_after, logical_date=None, conf={}))


@airflow3
def test_runs_without_a_date_are_listed_with_null(api: ApiHarness) -> None:
    ok(trigger(api, execution_date="2025-01-01T00:00:00"))
    _dateless_run(api, "manual__later", datetime(2099, 1, 1, tzinfo=UTC))
    _dateless_run(api, "manual__earlier", datetime(2000, 1, 1, tzinfo=UTC))
    runs = ok(api.get("/dags/example_etl/dag_runs"))
    assert [(r["run_id"], r["execution_date"]) for r in runs][::2] == [
        ("manual__earlier", None), ("manual__later", None)]
    assert runs[0]["dag_run_url"] == "/dags/example_etl/runs/manual__earlier"
    latest = ok(api.get("/latest_runs"))["items"]
    assert [(i["dag_id"], i["execution_date"]) for i in latest] == [("example_etl", None)]
    # Two runs without a date never collide, and a date still finds its own run.
    assert ok(api.get("/dags/example_etl/dag_runs/2025-01-01T00:00:00")) == {"state": "queued"}


#: ``dag`` states Airflow 3 refuses a trigger in: the column, its value, the answer.
REFUSALS = pytest.mark.parametrize("column,value,status,text", [
    ("is_stale", True, 404, "Dag id example_etl not found in DagModel"),
    ("has_import_errors", True, 400,
     "Dag with dag_id: 'example_etl' has import errors and cannot be triggered"),
    ("allowed_run_types", ["scheduled"], 400,
     "Dag with dag_id: 'example_etl' does not allow manual runs"),
])


@airflow3
@REFUSALS
def test_triggers_airflow3_refuses(api: ApiHarness, column: str, value: Any, status: int,
                                   text: str) -> None:
    t = api.store.tables
    with api.store.write() as conn:
        conn.execute(update(t.dag).where(t.dag.c.dag_id == "example_etl")
                     .values(**{column: value}))
    assert error(trigger(api), status) == text
    with api.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(t.dag_run)).scalar_one() == 0
    # Reads still see a stale DAG.
    assert ok(api.get("/dags/example_etl/tasks/extract"))["task_id"] == "extract"


@airflow3
def test_manual_runs_allowed_by_name(api: ApiHarness) -> None:
    t = api.store.tables
    with api.store.write() as conn:
        conn.execute(update(t.dag).where(t.dag.c.dag_id == "example_etl")
                     .values(allowed_run_types=["manual", "scheduled"]))
    ok(trigger(api))


@airflow3
def test_the_newest_version_is_the_definition(api: ApiHarness, tmp_path: Any) -> None:
    """A changed DAG file is a new version: tasks and source come from it, and new runs
    and their task instances point at it; the old version's rows stay."""
    (tmp_path / "example_etl.yaml").write_text(
        "dag_id: example_etl\nschedule: '@daily'\nstart_date: 2024-01-01\n"
        "tasks:\n  - {task_id: only, operator: BashOperator, bash_command: echo v2}\n")
    from api_plugin.cli.dagfiles import load_dags

    load_dags(api.store, tmp_path)
    load_dags(api.store, tmp_path)  # unchanged: no third version
    t = api.store.tables
    with api.store.read() as conn:
        versions = conn.execute(select(t.dag_version.c.id, t.dag_version.c.version_number)
                                .where(t.dag_version.c.dag_id == "example_etl")
                                .order_by(t.dag_version.c.version_number)).all()
    assert [v.version_number for v in versions] == [1, 2]
    assert error(api.get("/dags/example_etl/tasks/extract"), 404)
    assert ok(api.get("/dags/example_etl/tasks/only"))["bash_command"] == "echo v2"
    assert "echo v2" in api.get("/dags/example_etl/code").get_data(as_text=True)
    body = ok(trigger(api, execution_date="2025-02-01T00:00:00"))
    with api.store.read() as conn:
        run = conn.execute(select(t.dag_run).where(
            t.dag_run.c.run_id == body["run_id"])).one()
        tis = conn.execute(select(t.task_instance.c.task_id, t.task_instance.c.dag_version_id)
                           ).all()
    assert run.created_dag_version_id == versions[-1].id
    assert [(ti.task_id, ti.dag_version_id) for ti in tis] == [("only", versions[-1].id)]


@airflow3
def test_trigger_by_a_user_and_with_a_run_id(api: ApiHarness) -> None:
    environ = {"REMOTE_USER": "alice"}
    response = api.post("/dags/etl_nightly/dag_runs", environ_base=environ,
                        json={"run_id": "mine", "execution_date": "2025-07-01T00:00:00",
                              "conf": {"k": 1}})
    ok(response)
    t = api.store.tables
    with api.store.read() as conn:
        run = conn.execute(select(t.dag_run)).one()
        audit = conn.execute(select(t.log)).one()
    assert run.triggering_user_name == "alice" and run.conf == {"k": 1}
    assert (audit.owner, audit.owner_display_name, audit.run_id) == ("alice", "alice", "mine")
    assert audit.logical_date is None  # Airflow 3 leaves it empty, the date is in extra
    assert json.loads(audit.extra) == {"logical_date": "2025-07-01T00:00:00+00:00",
                                       "conf": {"k": 1}, "method": "POST",
                                       "dag_run_id": "mine"}


def test_timetable_intervals() -> None:
    at = datetime(2025, 3, 4, 5, 6, tzinfo=UTC)
    cron = {"__type": "airflow.timetables.trigger.CronTriggerTimetable",
            "__var": {"expression": "0 0 * * *", "timezone": "UTC", "interval": 3600.0}}
    assert timetable_data_interval(cron, at) == (datetime(2025, 3, 4, 4, 6, tzinfo=UTC), at)
    data = {"__type": "airflow.timetables.interval.CronDataIntervalTimetable",
            "__var": {"expression": "0 0 * * *", "timezone": "UTC"}}
    assert timetable_data_interval(data, at) == (datetime(2025, 3, 3, tzinfo=UTC),
                                                 datetime(2025, 3, 4, tzinfo=UTC))
    assert timetable_data_interval(None, at) == (at, at)
    assert timetable_data_interval({"__type": "x.Custom", "__var": 3}, at) == (at, at)


@pytest.mark.parametrize("name", ["airflow1", "airflow2", "airflow3"])
def test_tasks_inherit_the_dags_start_date(name: str) -> None:
    """A task with no start date of its own starts with its DAG (Airflow 3 leaves the
    inherited date out of the serialized task): no task instance before that date."""
    from api_plugin.flavors import TriggerInput, flavor_named
    from api_plugin.store.serialized import parse_dag

    start = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    spec = parse_dag({"__version": 3, "dag": {"dag_id": "d", "start_date": start, "tasks": [
        {"__type": "operator", "__var": {"task_id": "a", "task_type": "EmptyOperator",
                                         "downstream_task_ids": []}}]}})
    flavor = flavor_named(name)

    def rows(when: datetime) -> list[str]:
        asked = TriggerInput(dag_id="d", run_id="r", when=when, conf=None, now=when,
                             user=None, defaulted=False, run_id_given=True)
        return [row["task_id"] for row in flavor.task_instance_rows(spec, asked)]

    assert rows(datetime(2024, 6, 1, tzinfo=UTC)) == []
    assert rows(datetime(2025, 6, 1, tzinfo=UTC)) == ["a"]
