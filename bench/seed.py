"""Benchmark databases: N copies of the example DAG, each with M runs, bulk-inserted."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from api_plugin.cli.dagfiles import load_dags
from api_plugin.cli.main import example_dags_dir
from api_plugin.services import trigger_dag
from api_plugin.store import Store


def seed_database(path: Path, dags: int, runs_per_dag: int) -> str:
    """Create the database and return its URL; example_etl has a run at 2025-01-01."""
    url = f"sqlite:///{path}"
    store = Store.open(url, create=True)
    load_dags(store, example_dags_dir())
    t = store.tables
    with store.read() as conn:
        template = conn.execute(t.serialized_dag.select()).one()._asdict()
        dag_row = conn.execute(t.dag.select()).one()._asdict()
    dag_rows, sd_rows = [], []
    for i in range(1, dags):
        dag_id = f"bench_dag_{i:04d}"
        doc = copy.deepcopy(template["data"])
        doc["dag"]["_dag_id"] = dag_id
        sd_rows.append({**template, "dag_id": dag_id, "data": doc,
                        "dag_hash": hashlib.md5(json.dumps(doc).encode(),
                                                usedforsecurity=False).hexdigest()})
        dag_rows.append({**dag_row, "dag_id": dag_id})
    start = datetime(2024, 6, 1, tzinfo=UTC)
    run_rows = [
        {"dag_id": dag_id, "run_id": f"scheduled__{n}",
         "execution_date": start + timedelta(hours=n),
         "state": "success", "run_type": "scheduled", "external_trigger": False,
         "start_date": start + timedelta(hours=n), "clear_number": 0}
        for dag_id in ["example_etl"] + [r["dag_id"] for r in dag_rows]
        for n in range(runs_per_dag - 1)
    ]
    with store.write() as conn:
        if dag_rows:
            conn.execute(insert(t.dag), dag_rows)
            conn.execute(insert(t.serialized_dag), sd_rows)
        for chunk in range(0, len(run_rows), 10_000):
            conn.execute(insert(t.dag_run), run_rows[chunk:chunk + 10_000])
    trigger_dag(store, "example_etl", execution_date="2025-01-01T00:00:00+00:00")
    store.dispose()
    return url
