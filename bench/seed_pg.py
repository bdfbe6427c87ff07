"""PostgreSQL benchmark databases, in the airflow2 flavor's schema, written fast.

    python bench/seed_pg.py --dags 10000 --runs 100 --big-dag-runs 100000

A fresh database on the server of ``API_PLUGIN_TEST_PG_URL`` gets the plugin's schema
(``api-plugin db init``'s), the example DAG, ``dags - 1`` copies of it (``dag`` and
``serialized_dag`` rows, sent with COPY), ``runs - 1`` scheduled runs per DAG and
``big_dag_runs - 1`` for example_etl, each run with one task instance per task, all made
by the server itself (``INSERT ... SELECT`` over ``generate_series``: nothing crosses
the wire row by row), then the run at 2025-01-01 the benchmarks read, triggered through
the service as a user would. 10,000 DAGs with a million runs and four million task
instances take a few minutes on two cores, mostly index maintenance.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api_plugin import services
from api_plugin.cli.dagfiles import load_dags
from api_plugin.cli.main import example_dags_dir
from api_plugin.store import Store

RUN_DATE = "2025-01-01T00:00:00+00:00"
TASKS = ("extract", "transform", "load", "report")


def admin_url() -> str:
    url = os.environ.get("API_PLUGIN_TEST_PG_URL")
    if not url:
        raise SystemExit("API_PLUGIN_TEST_PG_URL is needed: see .ci/postgres.sh")
    return url


def create_database(prefix: str = "bench") -> str:
    """A new empty database on the test server; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return admin_url().rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def seed_postgresql(dags: int, runs_per_dag: int, big_dag_runs: int | None = None,
                    say: bool = False) -> str:
    """A new database with ``dags`` DAGs and their runs and task instances; its URL."""
    started = time.monotonic()

    def step(what: str) -> None:
        if say:
            print(f"  seed: {what} ({time.monotonic() - started:.0f} s)", flush=True)

    url = create_database()
    store = Store.open(url, create=True)
    load_dags(store, example_dags_dir())
    t = store.tables
    with store.read() as conn:
        template = conn.execute(t.serialized_dag.select()).one()._asdict()
        dag_row = conn.execute(t.dag.select()).one()._asdict()
    raw = store.engine.raw_connection()
    try:
        cursor = raw.cursor()
        _copy_dags(cursor, template, dag_row, dags)
        raw.commit()
        step(f"{dags} DAGs")
        cursor.execute(
            "INSERT INTO dag_run (dag_id, run_id, execution_date, state, run_type,"
            " external_trigger, start_date, end_date, queued_at, data_interval_start,"
            " data_interval_end, clear_number)"
            " SELECT d.dag_id, 'scheduled__' || n, w, 'success', 'scheduled', false,"
            " w, w + interval '5 minutes', w, w - interval '1 hour', w, 0"
            " FROM dag d, generate_series(0, CASE WHEN d.dag_id = 'example_etl'"
            " THEN %(big)s ELSE %(runs)s END - 2) n,"
            " LATERAL (SELECT timestamptz '2010-01-01 00:00+00' + n * interval '1 hour') s(w)",
            {"big": big_dag_runs or runs_per_dag, "runs": runs_per_dag})
        raw.commit()
        step("runs")
        cursor.execute(
            "INSERT INTO task_instance (task_id, dag_id, run_id, map_index, start_date,"
            " end_date, duration, state, try_number, max_tries, hostname, unixname, pool,"
            " pool_slots, queue, priority_weight, operator, updated_at)"
            " SELECT k.task_id, r.dag_id, r.run_id, -1, r.start_date, r.end_date, 300,"
            " 'success', 1, 2, 'worker-1', 'airflow', 'default_pool', 1, 'default', 1,"
            " 'BashOperator', r.end_date"
            " FROM dag_run r, unnest(%(tasks)s::text[]) k(task_id)",
            {"tasks": list(TASKS)})
        raw.commit()
        step("task instances")
        raw.dbapi_connection.autocommit = True  # type: ignore[union-attr]
        cursor.execute("VACUUM ANALYZE")
        step("vacuum analyze")
    finally:
        raw.close()
    store.dispose()
    store = Store.open(url)
    services.trigger_dag(store, "example_etl", execution_date=RUN_DATE)
    store.dispose()
    return url


def _copy_dags(cursor: object, template: dict[str, object], dag_row: dict[str, object],
               dags: int) -> None:
    """``dags - 1`` copies of the example DAG (its row and its serialized document)."""
    sd_cols = list(template)
    dag_cols = list(dag_row)
    with cursor.copy(  # type: ignore[attr-defined]
            f"COPY dag ({', '.join(dag_cols)}) FROM STDIN") as out:
        for i in range(1, dags):
            out.write_row([f"bench_dag_{i:05d}" if c == "dag_id" else dag_row[c]
                           for c in dag_cols])
    with cursor.copy(  # type: ignore[attr-defined]
            f"COPY serialized_dag ({', '.join(sd_cols)}) FROM STDIN") as out:
        for i in range(1, dags):
            dag_id = f"bench_dag_{i:05d}"
            doc = copy.deepcopy(template["data"])
            doc["dag"]["_dag_id"] = dag_id  # type: ignore[index]
            text_doc = json.dumps(doc)
            row = {**template, "dag_id": dag_id, "data": text_doc,
                   "dag_hash": hashlib.md5(text_doc.encode(),
                                           usedforsecurity=False).hexdigest()}
            out.write_row([row[c] for c in sd_cols])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100, help="runs per DAG")
    parser.add_argument("--big-dag-runs", type=int, default=None,
                        help="runs of example_etl (default: --runs)")
    args = parser.parse_args()
    print(seed_postgresql(args.dags, args.runs, args.big_dag_runs, say=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
