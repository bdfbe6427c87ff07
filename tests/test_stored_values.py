"""Stored data cannot hang or crash a worker: every decoder of stored values (pickles,
JSON, serialized DAGs, lineage XComs) works within a budget of size, nodes and depth,
and what exceeds it is shown as unreadable, as other refused values are.

The values planted here are ones a DAG author can have Airflow itself write: an
``executor_config`` or an XCom is whatever the author's code hands over."""

from __future__ import annotations

import json
import pickle
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from api_plugin.store.decode_budget import DOCUMENT_BUDGET
from api_plugin.store.tables import AIRFLOW1
from conftest import ApiHarness
from tests.test_endpoints import error, ok, trigger
from tests.test_lineage import _push_lineage, lineage_answer

WHEN = "2025-07-01T00:00:00+00:00"


def shared_references(levels: int = 30) -> Any:
    """x_k = [x_{k-1}, x_{k-1}]: small in memory and as a pickle (about 200 bytes),
    2**levels elements to walk or print."""
    value: Any = []
    for _ in range(levels):
        value = [value, value]
    return value


def nested_lists(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


PLANTED_PICKLES = {
    "shared references": pickle.dumps(shared_references(), protocol=4),
    "400 kB int": pickle.dumps(1 << (400_000 * 8 - 1)),
    "nested 200 deep": pickle.dumps(nested_lists(200)),
    "5 MB pickle": pickle.dumps({"s": "x" * (5 << 20)}),
    "text repeated": pickle.dumps(["y" * 100_000] * 200),
}


def test_the_planted_pickle_is_small() -> None:
    assert len(PLANTED_PICKLES["shared references"]) < 250
    assert len(PLANTED_PICKLES["400 kB int"]) > 400_000


def plant_executor_config(api: ApiHarness, value: bytes) -> str:
    """A run of example_etl whose ``load`` instance has ``value`` as executor_config."""
    ok(trigger(api, execution_date=WHEN))
    ti = api.store.tables.task_instance
    with api.store.write() as conn:
        conn.execute(update(ti).where(ti.c.task_id == "load").values(executor_config=value))
    return f"/dags/example_etl/dag_runs/{WHEN}/tasks/load"


@pytest.mark.parametrize("planted", list(PLANTED_PICKLES))
def test_a_planted_executor_config_reads_as_unreadable(api: ApiHarness, planted: str) -> None:
    path = plant_executor_config(api, PLANTED_PICKLES[planted])
    body = ok(api.get(path))
    assert body["executor_config"] == "<unreadable executor_config>"
    assert body["task_id"] == "load" and body["state"] == "None"


def test_an_executor_config_within_budget_still_reads(api: ApiHarness) -> None:
    value = {"KubernetesExecutor": {"image": "x", "deep": nested_lists(60), "n": 10**100}}
    body = ok(api.get(plant_executor_config(api, pickle.dumps(value, protocol=4))))
    assert body["executor_config"] == str(value)


LINEAGE_VALUES = {
    **{f"pickle {name}": data for name, data in PLANTED_PICKLES.items()},
    "json nested 900 deep": json.dumps(nested_lists(900)).encode(),
    "json nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "json 5 MB": json.dumps(["z" * (5 << 20)]).encode(),
}


@pytest.mark.parametrize("flavor", ["airflow2", "airflow1"])  # Airflow 3 reads no XComs
@pytest.mark.parametrize("planted", list(LINEAGE_VALUES))
def test_a_planted_lineage_xcom_reads_as_unreadable(api: ApiHarness, planted: str) -> None:
    run = ok(trigger(api, "etl_nightly", execution_date=WHEN))
    when = datetime(2025, 7, 1, tzinfo=UTC)
    _push_lineage(api, when, run["run_id"], "extract", "pipeline_inlets",
                  LINEAGE_VALUES[planted], when)
    _push_lineage(api, when, run["run_id"], "extract", "pipeline_outlets",
                  json.dumps(["s3://ok"]).encode(), when)
    body = lineage_answer(api.get(f"/lineage/etl_nightly/{WHEN}"))
    assert body == {"task_ids": {"extract": {"inlets": None, "outlets": ["s3://ok"]}}}


@pytest.mark.parametrize("flavor", ["airflow2"])
def test_planted_next_kwargs_read_as_unreadable(api: ApiHarness) -> None:
    """``next_kwargs`` (JSON, Airflow 2) is decoded by the plugin within the budget,
    not by the database driver."""
    path = plant_executor_config(api, pickle.dumps({}, protocol=4))
    ti = api.store.tables.task_instance
    for planted, shown in [(nested_lists(900), "<unreadable next_kwargs>"),
                           (nested_lists(3), "[[[0]]]")]:
        with api.store.write() as conn:
            conn.execute(update(ti).where(ti.c.task_id == "load").values(next_kwargs=planted))
        assert ok(api.get(path))["next_kwargs"] == shown


def plant_document(api: ApiHarness, data: Any, compressed: bytes | None = None) -> None:
    sd = api.store.tables.serialized_dag
    values: dict[str, Any] = {"data": data, "dag_hash": "f" * 32}
    if compressed is not None:
        values["data_compressed"] = compressed
    with api.store.write() as conn:
        conn.execute(update(sd).where(sd.c.dag_id == "example_etl").values(**values))


def over_budget_documents(flavor: str) -> list[tuple[Any, bytes | None]]:
    deep = {"__version": 1, "dag": {"_dag_id": "example_etl", "tasks": [],
                                    "default_args": nested_lists(DOCUMENT_BUDGET.max_depth)}}
    documents: list[tuple[Any, bytes | None]] = [(deep, None)]
    if flavor != AIRFLOW1:  # Airflow 2 may store the document zlib-compressed
        bomb = zlib.compress(b" " * (DOCUMENT_BUDGET.max_bytes + 1), 9)
        documents.append((None, bomb))
    return documents


def test_an_over_budget_serialized_dag_is_a_dag_without_definition(api: ApiHarness) -> None:
    for data, compressed in over_budget_documents(api.flavor):
        plant_document(api, data, compressed)
        assert error(api.get("/dags/example_etl/tasks/load"), 404) == (
            "Dag id example_etl not found")
        assert error(trigger(api, execution_date=WHEN), 404) == "Dag id example_etl not found"
        assert ok(api.get("/dags/example_etl/paused")) == {"is_paused": False}


def test_the_budget_measures_shared_parts_once_and_counts_them_everywhere() -> None:
    """A 60-level shared-reference value (2**60 elements to print) is refused at once,
    a cycle is refused by depth, and a shared part met deeper down counts there."""
    from api_plugin.store.decode_budget import OverBudget, check_value

    with pytest.raises(OverBudget, match="more than"):
        check_value(shared_references(60))
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(OverBudget, match="nested"):
        check_value(cycle)
    part = nested_lists(40)
    check_value([part, part])  # 41 levels: fine
    deeper: Any = part
    for _ in range(30):
        deeper = [deeper]
    with pytest.raises(OverBudget, match="nested"):
        check_value([part, deeper])  # the same part again, 30 levels further down
    check_value(shared_references(15))  # 65 535 values: within the budget
