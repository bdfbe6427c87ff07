"""GET /lineage (docs/rest-api-ref.rst): what a run's tasks pushed as inlets and outlets, per
flavor, and the reading of stored XCom values as each reference's webserver shows them."""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from api_plugin.cli.dagfiles import load_dags
from api_plugin.services.lineage import _value
from api_plugin.store.serialized import decode_value
from api_plugin.store.tables import AIRFLOW1, AIRFLOW3
from conftest import ApiHarness
from tests.test_endpoints import BAD_DATE, error, ok, trigger


def _push_lineage(api: ApiHarness, when: datetime, run_id: str, task_id: str, key: str,
                  value: bytes, at: datetime) -> None:
    """An XCom row as the flavor's Airflow writes it when a task with lineage runs."""
    x = api.store.tables.xcom
    row: dict[str, Any] = {"key": key, "value": value, "timestamp": at, "task_id": task_id,
                           "dag_id": "etl_nightly"}
    if api.flavor == AIRFLOW1:
        row["execution_date"] = when
    else:
        with api.store.read() as conn:
            pk = conn.execute(select(api.store.tables.dag_run.c.id).where(
                api.store.tables.dag_run.c.run_id == run_id)).scalar_one()
        row.update(dag_run_id=pk, run_id=run_id, map_index=-1)
    with api.store.write() as conn:
        conn.execute(x.insert().values(**row))


def lineage_answer(response: Any) -> Any:
    """The lineage answer, checked to repeat itself under ``message`` (for Airflow 2's
    json_client, which returns that key) and returned without it."""
    body = ok(response)
    message = body.pop("message")
    assert message == body
    return body


def test_lineage(api: ApiHarness) -> None:
    run = ok(trigger(api, "etl_nightly", execution_date="2025-07-01T00:00:00+00:00"))
    when, base = datetime(2025, 7, 1, tzinfo=UTC), "/lineage/etl_nightly"
    assert lineage_answer(api.get(f"{base}/2025-07-01T00:00:00")) == {"task_ids": {}}
    t1, t2 = datetime(2025, 7, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, 2, tzinfo=UTC)
    if api.flavor == AIRFLOW3:
        pass  # no lineage XComs there: see test_airflow3_lineage_is_what_tasks_declare
    elif api.flavor == AIRFLOW1:
        # Airflow 1.10 pickles DataSet.as_dict() of each inlet and outlet.
        inlet = {"typeName": "file", "attributes": {"name": "/data/in.csv"}}
        _push_lineage(api, when, run["run_id"], "extract", "pipeline_inlets",
                      pickle.dumps([inlet]), t1)
        _push_lineage(api, when, run["run_id"], "extract", "pipeline_outlets",
                      pickle.dumps([{"typeName": "file", "attributes": {"name": "/o"}}]), t1)
        _push_lineage(api, when, run["run_id"], "load", "pipeline_outlets",
                      pickle.dumps(OrderedDict(a=1)), t2)
        assert lineage_answer(api.get(f"{base}/2025-07-01T00:00:00")) == {"task_ids": {
            "extract": {"inlets": [inlet],
                        "outlets": [{"typeName": "file", "attributes": {"name": "/o"}}]},
            # a pickle naming a class is never loaded: shown as null
            "load": {"outlets": None}}}
    else:
        dataset = {"__classname__": "airflow.datasets.Dataset", "__version__": 0,
                   "__data__": {"uri": "s3://out/x", "extra": {}}}
        _push_lineage(api, when, run["run_id"], "extract", "pipeline_inlets",
                      b'["s3://in/a.csv", {"k": [1, 2]}]', t1)
        _push_lineage(api, when, run["run_id"], "load", "pipeline_outlets",
                      json_bytes([dataset, {"__classname__": "builtins.tuple",
                                            "__version__": 1, "__data__": ["a", 2]}]), t2)
        assert lineage_answer(api.get(f"{base}/2025-07-01T00:00:00%2B00:00")) == {"task_ids": {
            "extract": {"inlets": ["s3://in/a.csv", {"k": [1, 2]}]},
            "load": {"outlets": ["airflow.datasets.Dataset@version=0(uri=s3://out/x,extra={})",
                                 "(a,2)"]}}}
    shown = "2025-07-02T00:00:00+00:00" if api.flavor == AIRFLOW1 else "2025-07-02 00:00:00+00:00"
    assert error(api.get(f"{base}/2025-07-02T00:00:00"), 404) == (
        f"Dag Run for date {shown} not found in dag etl_nightly")
    assert error(api.get("/lineage/nope/2025-07-01T00:00:00"), 404) == (
        "Dag id nope not found in DagModel")
    assert error(api.get(f"{base}/someday"), 400) == BAD_DATE.format("someday")


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize("stored,shown", [
    (None, None),
    (b'"plain"', "plain"),
    (b'{"a": {"__classname__": "x.Y", "__version__": 2, "__data__": 5}}',
     {"a": "x.Y@version=2(5)"}),
    # serde's own oddity: a list payload's str() joined character by character
    (b'{"__classname__": "x.Y", "__version__": 0, "__data__": ["a"]}', "x.Y@version=0([,',a,',])"),
    (b'{"__classname__": "builtins.set", "__version__": 1, "__data__": [1, 2]}', "(1,2)"),
    (b'{"__type": "dict", "__var": {"k": 1}}', {"k": 1}),
    (b'{"__type": "x.Old", "__var": {"k": null}}', "x.Old@version=0(k=None)"),
    (b'{"__classname__": 5, "__version__": 0}', {"__classname__": 5, "__version__": 0}),
    (pickle.dumps({"a": [1]}), {"a": [1]}),
    (pickle.dumps(OrderedDict(a=1)), None),  # names a class: never loaded
    (b"\xff not json", "\ufffd not json"),
])
def test_stored_values_read_as_the_reference_shows_them(stored: Any, shown: Any) -> None:
    assert _value(stored) == shown


@pytest.mark.parametrize("flavor", [AIRFLOW3])
def test_airflow3_lineage_is_what_tasks_declare(api: ApiHarness, tmp_path: Any) -> None:
    (tmp_path / "with_lineage.yaml").write_text(
        "dag_id: with_lineage\nschedule: null\nstart_date: 2024-01-01\n"
        "tasks:\n  - {task_id: produce, operator: EmptyOperator, outlets: [s3://out/a]}\n"
        "  - {task_id: consume, operator: EmptyOperator, upstream: [produce],"
        " inlets: [s3://out/a]}\n  - {task_id: quiet, operator: EmptyOperator}\n")
    load_dags(api.store, tmp_path)
    ok(trigger(api, "with_lineage", execution_date="2025-07-01T00:00:00+00:00"))
    assert ok(api.get("/lineage/with_lineage/2025-07-01T00:00:00"))["task_ids"] == {
        "consume": {"inlets": ["s3://out/a"]}, "produce": {"outlets": ["s3://out/a"]}}
    assert error(api.get("/lineage/with_lineage/2025-07-02T00:00:00"), 404)


def test_airflow3_assets_render_as_airflow_shows_them() -> None:
    asset = {"__type": "asset", "__var": {"name": "a", "uri": "s3://a", "group": "asset",
                                          "extra": {}}}
    assert str(decode_value(asset)) == (
        "Asset(name='a', uri='s3://a', group='asset', extra={}, watchers=[])")
    both = {"__type": "asset_all", "__var": {"objects": [asset]}}
    assert str(decode_value(both)).startswith("AssetAll(Asset(name='a'")
