"""What server-side prepared statements save on a direct PostgreSQL.

The plugin's psycopg 3 connections prepare statements on the server (after 5
executions) only when they reach it directly, never through a pooler
(``api_plugin.store.engine.reaches_server_directly``); ``?prepare_threshold=none`` in the
URL turns that off. This measures the endpoints in-process, one client, the same store
with the default and with preparing off, in alternating rounds so both arms share the
machine's drift, and prints the time per request and the ratio.

    python bench/prepares.py [--url postgresql+psycopg://postgres@127.0.0.1:15432/postgres]
                             [--rounds 7] [--requests 300] [--runs 1000]

``--url`` (default ``API_PLUGIN_TEST_PG_URL``) names a server on which a scratch database
is created and dropped again. Nothing here asserts timings: the numbers are for people.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from werkzeug.test import Client

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from api_plugin.cli.dagfiles import load_dags  # noqa: E402
from api_plugin.cli.main import example_dags_dir  # noqa: E402
from api_plugin.serving.mount import build_api  # noqa: E402
from api_plugin.settings.config import Config  # noqa: E402
from api_plugin.store import Store  # noqa: E402

RUN_DATE = "2025-01-01T00:00:00+00:00"
ENDPOINTS: dict[str, str] = {
    "paused": "/dags/example_etl/paused",
    "dag_runs": "/dags/example_etl/dag_runs?limit=100",
    "dag_run_state": f"/dags/example_etl/dag_runs/{RUN_DATE}",
    "task_instance": f"/dags/example_etl/dag_runs/{RUN_DATE}/tasks/extract",
    "latest_runs": "/latest_runs",
    "pools": "/pools",
    "pool": "/pools/default_pool",
}


def scratch_database(server: str) -> str:
    """A new empty database on ``server``; its URL, with the server URL's driver."""
    name = f"bench_prepares_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False)


def drop_database(server: str, url: str) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def seed(url: str, runs: int) -> None:
    """example_etl with ``runs`` runs (one at RUN_DATE) and their task instances
    (``db init`` made default_pool)."""
    store = Store.open(url, create=True)
    load_dags(store, example_dags_dir())
    t = store.tables
    start = datetime(2025, 1, 1, tzinfo=UTC)
    run_rows = [{"dag_id": "example_etl", "run_id": f"scheduled__{n}", "state": "success",
                 "execution_date": start - timedelta(hours=n), "run_type": "scheduled",
                 "start_date": start, "external_trigger": False}
                for n in range(runs)]
    with store.write() as conn:
        conn.execute(insert(t.dag_run), [{k: v for k, v in row.items() if k in t.dag_run.c}
                                         for row in run_rows])
        conn.execute(insert(t.task_instance), [
            {"dag_id": "example_etl", "task_id": task, "run_id": row["run_id"],
             "map_index": -1, "state": "success", "pool": "default_pool", "pool_slots": 1,
             "try_number": 1, "max_tries": 0, "priority_weight": 1, "queue": "default"}
            for row in run_rows for task in ("extract", "transform", "load", "report")])
    if store.is_postgresql:
        # Statistics as autovacuum would keep them on a live database: without them every
        # index of dag_run looks alike to the planner, and a trigger's checks may read
        # every run of the DAG.
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    store.dispose()


def open_arm(url: str, prepares: bool) -> tuple[Store, Client]:
    """The plugin's store and app; without ``prepares``, the URL turns preparing off."""
    if not prepares:
        url = make_url(url).update_query_dict(
            {"prepare_threshold": "none"}).render_as_string(hide_password=False)
    store = Store.open(url)
    config = Config.load(environ={}, database__sql_alchemy_conn=url,
                         api__auth_backend="default")
    return store, Client(build_api(config, store))


def prepared_on_server(store: Store) -> int:
    """How many statements one of the read engine's connections holds prepared."""
    raw = store.read_engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        row = cursor.fetchone()
        assert row is not None, "count(*) always answers a row"
        return int(row[0])
    finally:
        raw.close()


def per_request_us(call: Callable[[], Any], requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        call()
    return (time.perf_counter() - started) / requests * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("API_PLUGIN_TEST_PG_URL"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=1000)
    args = parser.parse_args()
    if not args.url:
        parser.error("--url or API_PLUGIN_TEST_PG_URL: a PostgreSQL server")
    server = make_url(args.url)
    if server.get_driver_name() != "psycopg":
        server = server.set(drivername="postgresql+psycopg")
    server_url = server.render_as_string(hide_password=False)
    url = scratch_database(server_url)
    try:
        seed(url, args.runs)
        arms = {"no prepares": open_arm(url, False), "prepares": open_arm(url, True)}
        samples: dict[tuple[str, str], list[float]] = {}
        serial = 0
        for _ in range(args.rounds):
            for arm, (_store, client) in arms.items():
                for name, path in ENDPOINTS.items():
                    def get(path: str = path, client: Client = client) -> Any:
                        response = client.get(path,
                                              environ_base={"REMOTE_ADDR": "127.0.0.1"})
                        assert response.status_code == 200, (path, response.data[:200])
                    samples.setdefault((arm, name), []).append(
                        per_request_us(get, args.requests))

                def trigger(client: Client = client) -> Any:
                    nonlocal serial
                    serial += 1
                    when = (datetime(2026, 1, 1, tzinfo=UTC)
                            + timedelta(minutes=serial)).isoformat()
                    response = client.post("/dags/example_etl/dag_runs",
                                           json={"execution_date": when},
                                           environ_base={"REMOTE_ADDR": "127.0.0.1"})
                    assert response.status_code == 200, response.data[:200]
                samples.setdefault((arm, "trigger"), []).append(
                    per_request_us(trigger, max(args.requests // 3, 1)))
        held = {arm: prepared_on_server(store) for arm, (store, _client) in arms.items()}
        for store, _client in arms.values():
            store.dispose()
    finally:
        drop_database(server_url, url)
    print(f"PostgreSQL direct, psycopg 3, in-process, one client; median of {args.rounds} "
          f"rounds x {args.requests} requests ({args.runs} runs in the database)")
    print(f"statements prepared on a read connection afterwards: {held}")
    print(f"{'endpoint':<16}{'no prepares µs':>16}{'prepares µs':>14}{'ratio':>8}")
    for name in [*ENDPOINTS, "trigger"]:
        off = statistics.median(samples["no prepares", name])
        on = statistics.median(samples["prepares", name])
        print(f"{name:<16}{off:>16.0f}{on:>14.0f}{off / on:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
