"""The task instance read finds the instance of the DAG's own run at the date asked for,
among several DAGs and runs that share run ids and dates. Its query names every table
by the bound DAG id and date, with the run's key found by a scalar subquery (no join
clause between the large tables, which PostgreSQL's planner is slow to estimate), so
these cases check that nothing is mixed up between DAGs or runs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import update

from api_plugin.services import tasks
from api_plugin.store import Store, kept
from api_plugin.store.kept import KeptAnswers
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


def _count_answers_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The task ids of the task instance answers made from rows from now on."""
    made: list[str] = []
    real = tasks._answer_of

    def counted(store: Store, head: Any) -> dict[str, str]:
        made.append(head.ti__task_id)
        return real(store, head)

    monkeypatch.setattr(tasks, "_answer_of", counted)
    return made


def test_an_unchanged_instance_is_answered_as_made_last_time(
        api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls of an instance whose row (its columns and its run's) has not changed get
    the answer made from that row the first time; any change makes a new one."""
    when = DATES[0]
    assert api.post("/dags/etl_nightly/dag_runs", json={"execution_date": when}
                    ).status_code == 200
    made = _count_answers_made(monkeypatch)
    path = f"/dags/etl_nightly/dag_runs/{when}/tasks/extract"
    first = [api.get(path).get_json() for _ in range(3)]
    assert first[0] == first[1] == first[2] and made == ["extract"]
    # The same instant written with another offset is the same instance.
    assert api.get("/dags/etl_nightly/dag_runs/2025-05-01T02:00:00+02:00/tasks/extract"
                   ).get_json() == first[0]
    assert made == ["extract"]
    t = api.store.tables
    with api.store.write() as conn:
        conn.execute(update(t.task_instance).where(t.task_instance.c.dag_id == "etl_nightly",
                                                   t.task_instance.c.task_id == "extract")
                     .values(state="running", hostname="worker-1"))
    running = api.get(path).get_json()
    assert (running["state"], running["hostname"]) == ("running", "worker-1")
    assert made == ["extract", "extract"]
    with api.store.write() as conn:  # the run's own columns are part of the answer too
        conn.execute(update(t.dag_run).where(t.dag_run.c.dag_id == "etl_nightly")
                     .values(state="failed"))
    answer = api.get(path).get_json()
    assert made == ["extract", "extract", "extract"]
    if "dag_run" in running:  # 1.10's answer holds nothing of the run
        assert answer["dag_run"] != running["dag_run"] and "failed" in answer["dag_run"]
    assert api.get(path).get_json() == answer and len(made) == 3


def test_kept_instance_answers_are_bounded(api: ApiHarness,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``size`` answers are kept, the oldest made going first; an answer longer
    than ``MAX_KEPT_ANSWER_BYTES`` is made for each request and never kept."""
    for when in DATES:
        assert api.post("/dags/etl_nightly/dag_runs", json={"execution_date": when}
                        ).status_code == 200
    monkeypatch.setattr(api.store, "answers", KeptAnswers(size=2))
    made = _count_answers_made(monkeypatch)
    paths = [f"/dags/etl_nightly/dag_runs/{when}/tasks/extract" for when in DATES]
    answers = [api.get(path).get_json() for path in paths]
    assert len({json.dumps(answer, sort_keys=True) for answer in answers}) == 3
    assert len(api.store.answers) == 2 and len(made) == 3
    assert api.get(paths[2]).get_json() == answers[2] and len(made) == 3  # kept
    assert api.get(paths[0]).get_json() == answers[0] and len(made) == 4  # aged out
    monkeypatch.setattr(kept, "MAX_KEPT_ANSWER_BYTES", 100)
    monkeypatch.setattr(api.store, "answers", KeptAnswers(size=2))
    for _ in range(2):
        assert api.get(paths[1]).get_json() == answers[1]
    assert len(made) == 6 and len(api.store.answers) == 0
