"""The per-process cache of parsed DAG definitions is bounded: reading every DAG of a
large installation keeps at most ``MAX_PARSED_DAGS`` of them, and a dropped one is
parsed again, with the same answer, when next asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

import api_plugin.store
from api_plugin.cli.dagfiles import load_dags
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
    monkeypatch.setattr(api_plugin.store, "MAX_PARSED_DAGS", 3)
    first = [api.get(f"/dags/{dag_id}/tasks/only") for dag_id in DAGS]
    assert [answer.status_code for answer in first] == [200] * len(DAGS)
    assert len(api.store._dags) == 3
    assert set(api.store._dags) == set(DAGS[-3:])
    again = api.get(f"/dags/{DAGS[0]}/tasks/only")  # dropped: parsed again
    assert again.get_json() == first[0].get_json()
    assert len(api.store._dags) == 3 and DAGS[0] in api.store._dags
