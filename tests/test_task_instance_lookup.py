"""The task instance read finds the instance of the DAG's own run at the date asked for,
among several DAGs and runs that share run ids and dates. Its query names every table
by the bound DAG id and date, with the run's key found by a scalar subquery (no join
clause between the large tables, which PostgreSQL's planner is slow to estimate), so
these cases check that nothing is mixed up between DAGs or runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from conftest import ApiHarness

DATES = ("2025-05-01T00:00:00+00:00", "2025-05-02T00:00:00+00:00", "2025-05-03T00:00:00+00:00")


def run_id_of(shift: int, n: int) -> str:
    return f"shared_{(n + shift) % len(DATES)}"


def test_each_dag_and_date_gets_its_own_instance(api: ApiHarness) -> None:
    t = api.store.tables
    ti = t.task_instance
    for shift, dag_id in enumerate(("etl_nightly", "example_etl")):
        for n, when in enumerate(DATES):
            body: dict[str, Any] = {"execution_date": when}
            if "run_id" in ti.c:
                # The same run ids in both DAGs, at different dates.
                body["run_id"] = run_id_of(shift, n)
            response = api.post(f"/dags/{dag_id}/dag_runs", json=body)
            assert response.status_code == 200, response.get_data(as_text=True)
    key = "run_id" if "run_id" in ti.c else "execution_date"
    with api.store.write() as conn:
        for dag_id in ("etl_nightly", "example_etl"):
            runs = conn.execute(t.dag_run.select().where(t.dag_run.c.dag_id == dag_id)).all()
            for run in runs:
                conn.execute(update(ti).where(ti.c.dag_id == dag_id,
                                              ti.c[key] == getattr(run, key))
                             .values(hostname=f"{dag_id}@{run.run_id}"))
    for shift, dag_id in enumerate(("etl_nightly", "example_etl")):
        for n, when in enumerate(DATES):
            response = api.get(f"/dags/{dag_id}/dag_runs/{when}/tasks/extract")
            assert response.status_code == 200, response.get_data(as_text=True)
            answer = response.get_json()
            assert answer["dag_id"] == dag_id and answer["task_id"] == "extract"
            run_id = run_id_of(shift, n) if "run_id" in ti.c else f"manual__{when}"
            assert answer["hostname"] == f"{dag_id}@{run_id}"


def test_a_run_without_the_instance_is_a_404_not_another_runs(api: ApiHarness) -> None:
    t = api.store.tables
    ti = t.task_instance
    for when in DATES[:2]:
        assert api.post("/dags/etl_nightly/dag_runs",
                        json={"execution_date": when}).status_code == 200
    key = "run_id" if "run_id" in ti.c else "execution_date"
    with api.store.write() as conn:
        first = conn.execute(t.dag_run.select().where(
            t.dag_run.c.dag_id == "etl_nightly").order_by(t.run_order)).first()
        assert first is not None
        conn.execute(ti.delete().where(ti.c.dag_id == "etl_nightly",
                                       ti.c[key] == getattr(first, key)))
    gone = api.get(f"/dags/etl_nightly/dag_runs/{DATES[0]}/tasks/extract")
    assert gone.status_code == 404
    assert "Task extract instance for date" in gone.get_json()["error"]
    assert api.get(f"/dags/etl_nightly/dag_runs/{DATES[1]}/tasks/extract").status_code == 200
