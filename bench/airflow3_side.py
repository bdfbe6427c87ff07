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

The database's 100 runs (one with task instances) are triggered through the v2 API first;
on PostgreSQL, 1,000 runs of another DAG are added beside them (``fill``).
Equivalent operations: trigger a run, list runs (100), one run's state, one task
instance, the pools, one pool, one task, and the DAG (its paused flag); and "no work"
(``/api/v2/version``, the plugin's ``/test``), which says what a request costs each
server before any endpoint's work, and so bounds what the hosted plugin can answer on
any operation. latest_runs has no v2 counterpart.

All servers are up at once, and each operation is measured on every server in turn
before the next operation, so each ratio compares the same half minute; ``--rounds``
repeats the whole table (the api-server's own rate moves a lot from one run to the
next) and the medians are printed: requests/s, p99 and the plugin's ratio to Airflow's.
A measurement on an api-server whose connections all went to one of its workers is made
again (``uneven``).
Nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import HERE, Result, free_port, gunicorn, wrk  # noqa: E402

DAG_ID = "etl_nightly"
TASK_ID = "extract"
RUN_DATE = "2025-01-01T00:00:00+00:00"
RUN_ID = "bench_run"
WORKERS = 2

#: The operation that does no work (see OPERATIONS).
NO_WORK = "no work"
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
    # No work at all: what answering a request costs each server before any endpoint's
    # work. The hosted plugin's rate here bounds its rate on every operation, whatever
    # it does, since the api-server's own layers (uvicorn, its middleware) run first.
    NO_WORK: ("/api/v2/version", "/api/experimental/test"),
}
#: Servers in the order they are measured (each has its own dates for its triggers):
#: Airflow's v2 API (and the plugin hosted in the same api-server), the plugin on its own
#: directly and through PgBouncer, and a second api-server through the same PgBouncer.
SIDES = ["v2", "hosted", "standalone", "pgbouncer", "v2_pgbouncer"]
#: The sides that are Airflow's own v2 API.
V2_SIDES = ("v2", "v2_pgbouncer")


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


#: Runs of another DAG put in ``dag_run`` before anything is measured (``fill``).
FILLER_RUNS = 1_000


def fill(url: str) -> None:
    """Gives ``dag_run`` ``FILLER_RUNS`` runs of a DAG no operation asks for, then
    analyses it, before any server's first trigger.

    Each new task instance's foreign key is checked against ``dag_run`` with a plan
    PostgreSQL makes once per connection and keeps until the table is analysed again.
    Made on the 100 seeded runs (two pages), that plan is a sequential scan, and the
    server whose connections made it would pay more for each trigger as the triggers grow
    the table (``pg.py``'s ``runs_before_triggers`` says by how much). Of another DAG,
    these runs change no answer: every operation reads etl_nightly's."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO dag_run (dag_id, run_id, logical_date, run_after, state, "
                "run_type, clear_number) SELECT 'bench_filler', 'filler_' || n, "
                "TIMESTAMPTZ '1990-01-01' + n * INTERVAL '1 minute', "
                "TIMESTAMPTZ '1990-01-01' + n * INTERVAL '1 minute', 'success', 'scheduled', 0 "
                "FROM generate_series(1, :count) AS n"), {"count": FILLER_RUNS})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) dag_run, task_instance")
    finally:
        engine.dispose()


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


def standalone(env: dict[str, str]) -> tuple[Any, str]:
    """The plugin under gunicorn on its own (``env`` names the database): the process
    and its base URL."""
    port = free_port()
    server = gunicorn("api_plugin.wsgi:application", port, env, "/api/experimental/openapi.json")
    return server, f"http://127.0.0.1:{port}"


def measure(bases: dict[str, str], bearer: str, args: argparse.Namespace,
            groups: dict[str, int]) -> tuple[dict[str, dict[str, list[Result]]], dict[str, int]]:
    """wrk over every operation, on every side in turn, ``args.rounds`` times; the v2
    side takes the v2 path, the others the experimental one. A side served by an
    api-server (``groups``: its process group) is measured again when its connections
    all went to one worker (``uneven``); how many times each side was, is returned too."""
    headers = {"Authorization": f"Bearer {bearer}"}
    for side, base in bases.items():
        check(base, _path_index(side), bearer, side)
    results: dict[str, dict[str, list[Result]]] = {side: {} for side in bases}
    redone = dict.fromkeys(groups, 0)
    for number in range(args.rounds):
        for name, paths in OPERATIONS.items():
            script = str(HERE / "trigger.lua") if name == "trigger" else None
            for side, base in bases.items():
                for attempt in range(UNEVEN_RETRIES + 1):
                    env = {"BENCH_RUN_PREFIX": f"{side}r{number}a{attempt}",
                           "BENCH_API": "v2" if side in V2_SIDES else "experimental",
                           "BENCH_DATE_OFFSET": str(100_000_000 * SIDES.index(side)
                                                    + 1_000_000 * number + 250_000 * attempt)}
                    before = group_cpu(groups[side]) if side in groups else None
                    result = wrk(base + paths[_path_index(side)], args.seconds,
                                 args.connections, script, env, headers)
                    if before is None or not uneven(before, group_cpu(groups[side])):
                        break
                    redone[side] += 1
                results[side].setdefault(name, []).append(result)
    return results, redone


#: How many times a measurement whose connections all went to one worker is made again.
UNEVEN_RETRIES = 3
#: A worker that used less than this share of the busiest worker's CPU did almost nothing.
UNEVEN_SHARE = 0.25


def group_cpu(group: int) -> dict[int, int]:
    """The CPU time (clock ticks) each process of process group ``group`` has used."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended
            continue
        if int(fields[2]) == group:
            ticks[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
    return ticks


def uneven(before: dict[int, int], after: dict[int, int]) -> bool:
    """Whether one of an api-server's ``WORKERS`` worker processes sat idle between the
    two readings of ``group_cpu``.

    uvicorn's workers share one listening socket and each keeps the connections it
    accepts. wrk's 4 keep-alive connections all land on one worker often enough (one
    measurement in three or four of the hosted plugin's here, fewer of v2's) that the
    server then answers at half its rate, the other worker idle: that measures a
    one-worker server, for the v2 API and the hosted plugin alike, and it moved one
    operation's rate 3x between rounds."""
    used = sorted((ticks - before.get(pid, 0) for pid, ticks in after.items()),
                  reverse=True)[:WORKERS]
    return len(used) == WORKERS and used[-1] < UNEVEN_SHARE * used[0]


def _path_index(side: str) -> int:
    return 0 if side in V2_SIDES else 1


def report(args: argparse.Namespace, results: dict[str, dict[str, list[Result]]],
           backend: str, redone: dict[str, int]) -> None:
    def rps(side: str, name: str) -> float:
        return statistics.median(r.rps for r in results[side][name])

    def p99(side: str, name: str) -> float:
        return statistics.median(r.p99_ms for r in results[side][name])

    print(f"\n== Airflow 3.3.2: its v2 API vs the plugin, one Airflow-made {backend} database "
          f"({DAG_ID}, 100 runs), {WORKERS} workers each, {args.connections} connections, "
          f"one bearer token; medians of {args.rounds} rounds")
    plugins = [side for side in SIDES if side in results and side not in V2_SIDES]
    pooled = "pgbouncer" in results and "v2_pgbouncer" in results
    print(f"{'operation':<15}{'v2 r/s':>9}{'v2 p99':>9}"
          + "".join(f"{side + ' r/s':>16}{'p99':>8}{'x v2':>7}" for side in plugins)
          + (f"{'v2 pgb r/s':>12}{'p99':>8}{'pgb x v2 pgb':>14}" if pooled else ""))
    for name in OPERATIONS:
        theirs = rps("v2", name)
        print(f"{name:<15}{theirs:>9.1f}{p99('v2', name):>9.2f}" + "".join(
            f"{rps(side, name):>16.0f}{p99(side, name):>8.2f}{rps(side, name) / theirs:>7.1f}"
            for side in plugins) + (
            f"{rps('v2_pgbouncer', name):>12.1f}{p99('v2_pgbouncer', name):>8.2f}"
            f"{rps('pgbouncer', name) / rps('v2_pgbouncer', name):>14.1f}" if pooled else ""))
    if pooled:
        print("'x v2': the plugin's rate over the v2 API's direct; 'pgb x v2 pgb': the plugin "
              "through PgBouncer over the v2 API through the same PgBouncer")
    if "hosted" in results:
        floor = rps("hosted", NO_WORK)
        print(f"hosted, at most: the api-server answers the hosted plugin's {NO_WORK!r} "
              f"({floor:.0f} r/s) before any endpoint's work, which bounds 'x v2' hosted at "
              + ", ".join(f"{name} {floor / rps('v2', name):.1f}"
                          for name in OPERATIONS if name != NO_WORK))
    if args.rounds > 1:
        for side in (*V2_SIDES, "hosted"):
            if side in results:
                print(f"{side} r/s per round: " + "; ".join(
                    f"{name} " + "/".join(f"{r.rps:.0f}" for r in results[side][name])
                    for name in OPERATIONS))
    print("measured again, all connections on one api-server worker: "
          + ", ".join(f"{side} {count}" for side, count in redone.items()))
    bad = {side: sum(r.non_2xx for rs in res.values() for r in rs)
           for side, res in results.items()}
    print(f"non-2xx answers: {bad}")
    for side, res in results.items():
        where = {name: sum(r.non_2xx for r in rs) for name, rs in res.items()}
        if any(where.values()):
            print(f"  {side}: " + ", ".join(f"{name} {count}" for name, count in where.items()
                                          if count))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow3", required=True, help="virtualenv of apache-airflow 3.3.2")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--postgresql", action="store_true",
                        help="on a database of the server of API_PLUGIN_TEST_PG_URL "
                        "(default: SQLite, where Airflow's own writers contend)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    os.environ["AIRFLOW3_VENV"] = str(Path(args.airflow3).resolve())
    from tests.compat import airflow_env

    venv = Path(args.airflow3).resolve()
    # The hosted plugin is the copy pip installed into Airflow's virtualenv, not this
    # checkout: installed again now, so the hosted side measures the code the others do.
    installed = subprocess.run(
        ["bash", str(ROOT / "tests" / "compat" / "install_airflow.sh"), "3.3.2", str(venv)],
        capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        raise SystemExit(f"installing the checkout into {venv} failed:\n{installed.stderr}")
    airflow_env.AIRFLOWS["airflow3"] = (venv, airflow_env.AIRFLOWS["airflow3"][1])
    work = Path(tempfile.mkdtemp(prefix="api_plugin_bench3_"))
    backend = "postgresql" if args.postgresql else "sqlite"
    home = airflow_env.make_home(work / "airflow_home", "airflow3", backend)
    servers: list[Any] = []
    airflows: list[Any] = []
    try:
        port = free_port()
        airflows.append(airflow_env.start_api_server(home, home.database, port,
                                                     workers=WORKERS))
        bearer = token(port)
        seed(port, bearer)
        if args.postgresql:
            fill(home.database)
        base = f"http://127.0.0.1:{port}"
        bases = {"v2": base, "hosted": base}
        env = {**home.env(), "API_PLUGIN_CONFIG": str(work / "none.cfg"),
               "API_PLUGIN__AIRFLOW__CONFIG": "auto", "PYTHONPATH": str(ROOT)}
        server, bases["standalone"] = standalone(env)
        servers.append(server)
        if args.postgresql and os.environ.get("API_PLUGIN_TEST_PGBOUNCER_URL"):
            from bench.pg import pgbouncer_url

            server, bases["pgbouncer"] = standalone(
                {**env, "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": pgbouncer_url(home.database)})
            servers.append(server)
            pooled_port = free_port()
            airflows.append(airflow_env.start_api_server(
                home, pgbouncer_url(home.database), pooled_port, workers=WORKERS))
            bases["v2_pgbouncer"] = f"http://127.0.0.1:{pooled_port}"
        groups = {"v2": airflows[0].pid, "hosted": airflows[0].pid}
        if "v2_pgbouncer" in bases:
            groups["v2_pgbouncer"] = airflows[1].pid
        results, redone = measure(bases, bearer, args, groups)
        report(args, results, backend, redone)
    finally:
        for server in servers:
            server.terminate()
            server.wait()
        for airflow in airflows:
            airflow_env.stop(airflow)
        home.drop_databases()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
