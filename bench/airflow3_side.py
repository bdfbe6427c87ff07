"""The Airflow 3 side of the benchmark: the same work through Airflow 3.3.2's own v2 API
and through the plugin, on one database Airflow 3.3.2 migrated and filled.

    python bench/airflow3_side.py --airflow3 .tox/airflow-3.3.2   # a venv made by
                                      # tests/compat/install_airflow.sh 3.3.2 (plugin inside)

Three servers, each with 2 worker processes, all authenticated with the same bearer token
from Airflow's ``POST /auth/token`` (the plugin's ``airflow_jwt`` backend validates it as
the api-server does):

- Airflow's ``airflow api-server --workers 2`` answering its v2 API (uvicorn);
- the plugin hosted in that same api-server, at ``/api/experimental`` (its ASGI bridge);
- the plugin standalone, ``api_plugin.wsgi`` under gunicorn with 2 workers (the worker
  ``api-plugin serve`` runs), reading Airflow's configuration (``[airflow] config = auto``);
- with ``--postgresql`` and a PgBouncer (``API_PLUGIN_TEST_PGBOUNCER_URL``), the same
  standalone plugin reaching the database through it.

The database's 100 runs (one with task instances) are triggered through the v2 API first.
Equivalent operations: trigger a run, list runs (100), one run's state, one task
instance, the pools, one pool, one task, and the DAG (its paused flag). latest_runs and
``/test`` have no v2 counterpart. Prints requests/s, p50/p99 and the plugin's ratio to Airflow's.
Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import HERE, Result, free_port, gunicorn, wrk  # noqa: E402

DAG_ID = "etl_nightly"
TASK_ID = "extract"
RUN_DATE = "2025-01-01T00:00:00+00:00"
RUN_ID = "bench_run"
WORKERS = 2

#: operation -> (v2 path, experimental path); None: the trigger (a wrk script).
DATE = RUN_DATE.replace("+", "%2B")
OPERATIONS = {
    "trigger": (f"/api/v2/dags/{DAG_ID}/dagRuns", f"/api/experimental/dags/{DAG_ID}/dag_runs"),
    "run list": (f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100",
                 f"/api/experimental/dags/{DAG_ID}/dag_runs?limit=100"),
    "run state": (f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}",
                  f"/api/experimental/dags/{DAG_ID}/dag_runs/{DATE}"),
    "task instance": (f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances/{TASK_ID}",
                      f"/api/experimental/dags/{DAG_ID}/dag_runs/{DATE}/tasks/{TASK_ID}"),
    "pools": ("/api/v2/pools", "/api/experimental/pools"),
    "pool": ("/api/v2/pools/default_pool", "/api/experimental/pools/default_pool"),
    "task": (f"/api/v2/dags/{DAG_ID}/tasks/{TASK_ID}",
             f"/api/experimental/dags/{DAG_ID}/tasks/{TASK_ID}"),
    "paused": (f"/api/v2/dags/{DAG_ID}", f"/api/experimental/dags/{DAG_ID}/paused"),
}
#: Servers in the order they are measured (each has its own dates for its triggers).
SIDES = ["v2", "hosted", "standalone", "pgbouncer"]


def seed(port: int, bearer: str, runs: int = 100) -> None:
    """``runs`` runs of etl_nightly written by Airflow's own v2 API (one of them
    ``bench_run`` at RUN_DATE, whose task instances the reads ask for)."""
    start = datetime(2025, 6, 1, tzinfo=UTC)
    bodies = [{"dag_run_id": f"seed_{n}", "logical_date": (start + timedelta(hours=n)).isoformat()}
              for n in range(runs - 1)] + [{"dag_run_id": RUN_ID, "logical_date": RUN_DATE}]
    for body in bodies:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v2/dags/{DAG_ID}/dagRuns", method="POST",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60):
            pass


def token(port: int) -> str:
    from tests.compat.airflow_env import AIRFLOW3_PASSWORDS

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/token", method="POST",
        data=json.dumps({"username": "admin", "password": AIRFLOW3_PASSWORDS["admin"]}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(json.loads(answer.read())["access_token"])


def check(base: str, side: int, bearer: str, prefix: str) -> None:
    """One request per operation before measuring: a wrong answer is named, so a table
    of error answers is not read as a speed."""
    for name, paths in OPERATIONS.items():
        body = None
        if name == "trigger":
            day = 10 + SIDES.index(prefix)
            when, run_id = f"2024-12-{day}T00:00:00+00:00", f"check_{prefix}"
            body = json.dumps({"logical_date": when, "dag_run_id": run_id} if side == 0
                              else {"execution_date": when, "run_id": run_id}).encode()
        request = urllib.request.Request(
            base + paths[side], data=body, method="POST" if body else "GET",
            headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30):
                pass
        except urllib.error.HTTPError as exc:
            print(f"!! {name} on {base + paths[side]}: {exc.code} {exc.read()[:300]!r} "
                  "(measured anyway: see non-2xx)", flush=True)


def standalone(env: dict[str, str], bearer: str, args: argparse.Namespace,
               prefix: str) -> dict[str, Result]:
    """The plugin under gunicorn on its own (``env`` names the database), measured on
    its experimental paths, then stopped."""
    port = free_port()
    server = gunicorn("api_plugin.wsgi:application", port, env, "/api/experimental/openapi.json")
    try:
        return measure(f"http://127.0.0.1:{port}", 1, bearer, args.seconds, args.connections,
                       prefix)
    finally:
        server.terminate()
        server.wait()


def measure(base: str, side: int, bearer: str, seconds: int, connections: int,
            prefix: str) -> dict[str, Result]:
    """wrk over every operation; ``side`` picks the v2 (0) or experimental (1) path."""
    headers = {"Authorization": f"Bearer {bearer}"}
    check(base, side, bearer, prefix)
    results = {}
    for name, paths in OPERATIONS.items():
        script = str(HERE / "trigger.lua") if name == "trigger" else None
        env = {"BENCH_RUN_PREFIX": prefix, "BENCH_API": "v2" if side == 0 else "experimental",
               "BENCH_DATE_OFFSET": str(100_000_000 * SIDES.index(prefix))}
        results[name] = wrk(base + paths[side], seconds, connections, script, env, headers)
    return results


def report(connections: int, results: dict[str, dict[str, Result]], backend: str) -> None:
    airflow = results["v2"]
    print(f"\n== Airflow 3.3.2: its v2 API vs the plugin, one Airflow-made {backend} database "
          f"({DAG_ID}, 100 runs), {WORKERS} workers each, {connections} connections, "
          f"one bearer token")
    plugins = [side for side in SIDES[1:] if side in results]
    print(f"{'operation':<15}{'v2 r/s':>9}{'v2 p99':>9}"
          + "".join(f"{side + ' r/s':>16}{'p99':>8}{'x v2':>7}" for side in plugins))
    for name, theirs in airflow.items():
        print(f"{name:<15}{theirs.rps:>9.1f}{theirs.p99_ms:>9.2f}" + "".join(
            f"{results[side][name].rps:>16.0f}{results[side][name].p99_ms:>8.2f}"
            f"{results[side][name].rps / theirs.rps:>7.1f}" for side in plugins))
    bad = {side: sum(r.non_2xx for r in res.values()) for side, res in results.items()}
    print(f"non-2xx answers: {bad}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow3", required=True, help="virtualenv of apache-airflow 3.3.2")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--postgresql", action="store_true",
                        help="on a database of the server of API_PLUGIN_TEST_PG_URL "
                        "(default: SQLite, where Airflow's own writers contend)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    os.environ["AIRFLOW3_VENV"] = str(Path(args.airflow3).resolve())
    from tests.compat import airflow_env

    venv = Path(args.airflow3).resolve()
    airflow_env.AIRFLOWS["airflow3"] = (venv, airflow_env.AIRFLOWS["airflow3"][1])
    work = Path(tempfile.mkdtemp(prefix="api_plugin_bench3_"))
    backend = "postgresql" if args.postgresql else "sqlite"
    home = airflow_env.make_home(work / "airflow_home", "airflow3", backend)
    try:
        results: dict[str, dict[str, Result]] = {}
        port = free_port()
        server = airflow_env.start_api_server(home, home.database, port, workers=WORKERS)
        try:
            bearer = token(port)
            seed(port, bearer)
            base = f"http://127.0.0.1:{port}"
            results["v2"] = measure(base, 0, bearer, args.seconds, args.connections, "v2")
            results["hosted"] = measure(base, 1, bearer, args.seconds, args.connections,
                                        "hosted")
        finally:
            airflow_env.stop(server)
        env = {**home.env(), "API_PLUGIN_CONFIG": str(work / "none.cfg"),
               "API_PLUGIN__AIRFLOW__CONFIG": "auto", "PYTHONPATH": str(ROOT)}
        results["standalone"] = standalone(env, bearer, args, "standalone")
        if args.postgresql and os.environ.get("API_PLUGIN_TEST_PGBOUNCER_URL"):
            from bench.pg import pgbouncer_url

            results["pgbouncer"] = standalone(
                {**env, "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": pgbouncer_url(home.database)},
                bearer, args, "pgbouncer")
        report(args.connections, results, backend)
    finally:
        home.drop_databases()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
