"""The per-process cache of parsed DAG definitions is bounded: reading every DAG of a
large installation keeps at most ``MAX_PARSED_DAGS`` of them, and a dropped one is
parsed again, with the same answer, when next asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api_plugin.cli.dagfiles import load_dags
from api_plugin.store.serialized import DagSpec, TaskSpec
from conftest import ApiHarness

DAGS = [f"bounded_{n}" for n in range(6)]


def test_parsed_dags_are_bounded(api: ApiHarness, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    for dag_id in DAGS:
        (folder / f"{dag_id}.yaml").write_text(
            f"dag_id: {dag_id}\nschedule: '@daily'\nstart_date: 2024-01-01\n"
            "tasks:\n  - {task_id: only, operator: BashOperator, bash_command: echo hi}\n")
    load_dags(api.store, folder)
    monkeypatch.setattr(api.store._dags, "size", 3)
    first = [api.get(f"/dags/{dag_id}/tasks/only") for dag_id in DAGS]
    assert [answer.status_code for answer in first] == [200] * len(DAGS)
    assert len(api.store._dags) == 3
    assert set(api.store._dags) == set(DAGS[-3:])
    again = api.get(f"/dags/{DAGS[0]}/tasks/only")  # dropped: parsed again
    assert again.get_json() == first[0].get_json()
    assert len(api.store._dags) == 3 and DAGS[0] in api.store._dags


def test_a_task_answer_is_made_once_per_dag_version(api: ApiHarness, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A task's answer depends on the DAG's definition alone: it is made at the first
    request and served as made while the DAG's hash stays; a new version of the DAG
    (another hash) is answered from its own definition."""
    folder = tmp_path / "dags"
    folder.mkdir()
    dag_file = folder / "versioned.yaml"

    def write(command: str) -> None:
        dag_file.write_text(
            "dag_id: versioned\nschedule: '@daily'\nstart_date: 2024-01-01\n"
            f"tasks:\n  - {{task_id: only, operator: BashOperator, bash_command: {command}}}\n")
        load_dags(api.store, folder)

    made: list[str] = []
    flavor = api.store.flavor
    real = flavor.task_attributes

    def counted(spec: DagSpec, task: TaskSpec) -> dict[str, Any]:
        made.append(task.task_id)
        return real(spec, task)

    monkeypatch.setattr(flavor, "task_attributes", counted)
    write("echo one")
    answers = [api.get("/dags/versioned/tasks/only") for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert {a.get_json()["bash_command"] for a in answers} == {"echo one"}
    assert made == ["only"]
    assert api.get("/dags/versioned/tasks/other").status_code == 404  # nothing kept for it
    write("echo two")
    changed = api.get("/dags/versioned/tasks/only")
    assert changed.get_json()["bash_command"] == "echo two"
    assert changed.get_json() == {**answers[0].get_json(), "bash_command": "echo two"}
    assert made == ["only", "only"]
