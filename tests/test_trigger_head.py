"""A trigger on PostgreSQL writes from the DAG's head kept from its last trigger, and its
one statement checks that head is still the DAG's (``store/dag_head.py``): a trigger of
a DAG triggered before is one round trip, and whatever changed in between (a new
definition, a state column, a deleted or stale DAG, a start date) answers as if the
head had been read first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from api_plugin.cli.dagfiles import load_dags
from api_plugin.store.tables import AIRFLOW2, AIRFLOW3
from conftest import ApiHarness
from tests.test_airflow3 import REFUSALS
from tests.test_endpoints import error, ok, trigger
from tests.test_trigger_write import _exchanges, trace_round_trips

#: These tests are about PostgreSQL's write: the ``api`` fixture on PostgreSQL only.
on_postgresql = pytest.mark.parametrize("backend", ["postgresql"])


def _run_count(api: ApiHarness) -> int:
    t = api.store.tables
    with api.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(t.dag_run)
                                .where(t.dag_run.c.dag_id == "example_etl")).scalar_one())


@on_postgresql
def test_a_dag_triggered_before_is_triggered_in_one_round_trip(
        api: ApiHarness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The first trigger reads the head, then writes; the next ones only write, and a
    clash is the same one statement."""
    assert api.store.read_engine.dialect.driver == "psycopg", "the postgres env's default"
    trace = tmp_path / "trace"
    trace_round_trips(api.store, monkeypatch, trace)
    ok(trigger(api, execution_date="2025-03-01T00:00:00+00:00"))
    assert _exchanges(trace) == [["SELECT"], ["WITH"]]
    trace.write_text("")
    ok(trigger(api, execution_date="2025-03-02T00:00:00+00:00"))
    assert _exchanges(trace) == [["WITH"]]
    trace.write_text("")
    error(trigger(api, execution_date="2025-03-02T00:00:00+00:00"), 409)
    assert _exchanges(trace) == [["WITH"]]
    assert _run_count(api) == 2


@on_postgresql
def test_a_new_definition_is_seen_by_the_next_trigger(api: ApiHarness, tmp_path: Path
                                                      ) -> None:
    """A DAG file changed after a trigger: the next run gets the new file's tasks."""
    ok(trigger(api, execution_date="2025-03-01T00:00:00+00:00"))
    (tmp_path / "example_etl.yaml").write_text(
        "dag_id: example_etl\nschedule: '@daily'\nstart_date: 2024-01-01\n"
        "tasks:\n  - {task_id: only, operator: BashOperator, bash_command: echo v2}\n")
    load_dags(api.store, tmp_path)
    ok(trigger(api, execution_date="2025-03-02T00:00:00+00:00"))
    ti = api.store.tables.task_instance
    with api.store.read() as conn:
        tasks = conn.scalars(select(ti.c.task_id).where(ti.c.dag_id == "example_etl")
                             .order_by(ti.c.task_id)).all()
    assert tasks == ["extract", "load", "only", "report", "transform"]  # 4 first, then 1
    assert _run_count(api) == 2


@on_postgresql
@pytest.mark.parametrize("flavor", [AIRFLOW2])
def test_a_deleted_dag_is_not_triggered(api: ApiHarness) -> None:
    ok(trigger(api, execution_date="2025-03-01T00:00:00+00:00"))
    t = api.store.tables
    with api.store.write() as conn:
        conn.execute(delete(t.serialized_dag).where(t.serialized_dag.c.dag_id == "example_etl"))
    assert error(trigger(api, execution_date="2025-03-02T00:00:00+00:00"), 404) == (
        "Dag id example_etl not found")
    with api.store.write() as conn:
        conn.execute(delete(t.dag).where(t.dag.c.dag_id == "example_etl"))
    assert error(trigger(api, execution_date="2025-03-03T00:00:00+00:00"), 404) == (
        "Dag id example_etl not found in DagModel")
    assert _run_count(api) == 1


@on_postgresql
@pytest.mark.parametrize("flavor", [AIRFLOW3])
@REFUSALS
def test_a_state_that_refuses_comes_after_a_kept_head(
        api: ApiHarness, column: str, value: Any, status: int, text: str) -> None:
    ok(trigger(api, execution_date="2025-03-01T00:00:00+00:00"))
    t = api.store.tables
    with api.store.write() as conn:
        conn.execute(update(t.dag).where(t.dag.c.dag_id == "example_etl")
                     .values(**{column: value}))
    assert error(trigger(api, execution_date="2025-03-02T00:00:00+00:00"), status) == text
    assert _run_count(api) == 1


@on_postgresql
@pytest.mark.parametrize("flavor", [AIRFLOW3])
def test_a_changed_state_column_goes_into_the_next_run(api: ApiHarness) -> None:
    """3.x's run takes the DAG's ``bundle_version``: changed after a trigger, the next
    run has the new one."""
    ok(trigger(api, execution_date="2025-03-01T00:00:00+00:00"))
    t = api.store.tables
    with api.store.write() as conn:
        conn.execute(update(t.dag).where(t.dag.c.dag_id == "example_etl")
                     .values(bundle_version="v2"))
    body = ok(trigger(api, execution_date="2025-03-02T00:00:00+00:00"))
    with api.store.read() as conn:
        assert conn.scalar(select(t.dag_run.c.bundle_version)
                           .where(t.dag_run.c.run_id == body["run_id"])) == "v2"


@on_postgresql
def test_a_date_before_the_start_date_is_refused_after_a_kept_head(api: ApiHarness) -> None:
    ok(trigger(api, execution_date="2025-03-01T00:00:00+00:00"))
    assert "should be >= start_date" in error(
        trigger(api, execution_date="2020-01-01T00:00:00+00:00"), 400)
    assert _run_count(api) == 1
