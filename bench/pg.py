"""Benchmark on PostgreSQL: the plugin direct and through PgBouncer next to Airflow 2.10.5's
webserver; growth at a million runs; a streamed run list; memory and start-up.

    python bench/pg.py --airflow /tmp/af2 tables      # vs Airflow 2.10.5, same PG server
                                                      # (medians of --rounds, default 3)
    python bench/pg.py scale --big URL                # growth: 10 DAGs vs URL (seed_pg.py)
                                                      # (latest_runs: also a bare app's
                                                      # floor for the same body sizes)
    python bench/pg.py stream --big URL               # a 100,000-run list, streamed
    python bench/pg.py footprint                      # RSS after 10k/100k requests, start-up
    python bench/pg.py --airflow /tmp/af2 ceiling     # the machine's own bounds (below)
    python bench/pg.py change --baseline DIR --only trigger,dag_runs
                                                      # before and after a change

``scale`` and ``stream`` take ``--baseline DIR``: a copy of the code before a change
(``git archive <commit> | tar -x -C DIR``), served next to this one and measured in the
same rounds, so that before and after compare the same minute. ``change`` measures just
that: the endpoints named in ``--only`` (all by default) of the baseline and of this
code, each directly and through PgBouncer, in turn within each of ``--rounds`` rounds,
and prints the medians and the ratio after/before.

``tables`` serves the plugin direct twice: as configured by default (statements prepared
on the server, since its connections reach it directly) and with preparing turned off
in the URL (``?prepare_threshold=none``), as through PgBouncer; and through PgBouncer
twice: on psycopg 3 and on psycopg2, the driver Airflow 2.10.5 reaches it with (a pooler
that keeps no prepared statements costs the two drivers differently). ``tables`` and
``ceiling`` read an Airflow-made database's 100 runs, and every round ends by dropping
the runs its triggers made; before the triggers of a round the DAG gets 1,000 runs
more (``runs_before_triggers`` says why).

``ceiling`` asks what this machine allows at all. Next to the plugin and Airflow 2.10.5 it
serves ``bench/ceiling.py``'s bare apps under the same worker, which do for ``/test``, a
pool, a 100-run list and a trigger only what the answer needs on the database. Their
rates bound any implementation's here, so "bare x af2" says which ratios this machine
can give at all.

PostgreSQL is the server of API_PLUGIN_TEST_PG_URL, PgBouncer (transaction pooling) the
one of API_PLUGIN_TEST_PGBOUNCER_URL (.ci/postgres.sh, .ci/pgbouncer.sh). Every server
runs 2 sync gunicorn workers on loopback; servers that are compared are all up at once
and measured endpoint by endpoint in turn, so each ratio compares the same minute.
Airflow 3.3.2's v2 API on PostgreSQL: ``bench/airflow3_side.py --postgresql``.
Nothing here asserts timings: the numbers are for people (and the closing notes).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import (  # noqa: E402
    RUN_DATE,
    RUN_PREFIXES,
    WORKER_CLASS,
    Result,
    endpoints,
    free_port,
    gunicorn,
    start,
    wrk,
)
from bench.seed_pg import drop_database, seed_postgresql  # noqa: E402


def pgbouncer_url(url: str) -> str:
    """``url``'s database reached through the PgBouncer, with the driver ``url`` names
    (psycopg 3 for ``postgresql://``, whose connections then do not prepare statements)."""
    through = _through_pooler(url, "API_PLUGIN_TEST_PGBOUNCER_URL")
    if through is None:
        raise SystemExit("API_PLUGIN_TEST_PGBOUNCER_URL is needed: see .ci/pgbouncer.sh")
    return through


def preparing_url(url: str) -> str | None:
    """``url``'s database through the PgBouncer that keeps prepared statements
    (``max_prepared_statements``, .ci/pgbouncer.sh); None when
    API_PLUGIN_TEST_PGBOUNCER_PREPARED_URL names none."""
    return _through_pooler(url, "API_PLUGIN_TEST_PGBOUNCER_PREPARED_URL")


def _through_pooler(url: str, variable: str) -> str | None:
    """``url``'s driver and database at the address of the pooler the environment
    ``variable`` names; None when it names none."""
    bouncer = os.environ.get(variable)
    if not bouncer:
        return None
    driver = url.split("://", 1)[0]
    base = driver + "://" + bouncer.split("://", 1)[1].rsplit("/", 1)[0]
    return base + "/" + url.rsplit("/", 1)[1]


def on_psycopg2(url: str) -> str:
    """``url`` naming psycopg2 as its driver (the driver Airflow 2.10.5 runs on)."""
    return "postgresql+psycopg2://" + url.split("://", 1)[1]


def with_prepares(url: str) -> str:
    """``url`` telling psycopg 3 to prepare statements whatever it reaches."""
    return _with_threshold(url, "5")


def without_prepares(url: str) -> str:
    """``url`` telling psycopg 3 never to prepare statements on the server."""
    return _with_threshold(url, "none")


def _with_threshold(url: str, threshold: str) -> str:
    return url + ("&" if "?" in url else "?") + "prepare_threshold=" + threshold


def plugin(url: str, env: dict[str, str], workers: int = 2,
           code: Path | None = None) -> tuple[Any, int]:
    """The plugin served on ``url``; from the checkout at ``code`` (imported from there,
    ahead of this one) when given."""
    port = free_port()
    extra = {"PYTHONPATH": str(code)} if code is not None else {}
    proc = start([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                  "--workers", str(workers), "--worker-class", WORKER_CLASS,
                  "api_plugin.wsgi:application"],
                 {**env, **extra, "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": url},
                 f"http://127.0.0.1:{port}/api/experimental/test",
                 cwd=code if code is not None else HERE.parent)
    return proc, port


def stop(proc: Any) -> None:
    proc.terminate()
    proc.wait()


def pg_endpoints(prefix: str, dag: str = "example_etl",
                 task: str = "load") -> list[tuple[str, str, str | None]]:
    """``bench.run.endpoints`` and, after the 100-run page, the same list with no
    ``limit``, as Airflow's clients ask for it (``dag_runs_all``: the streamed way)."""
    listed = endpoints(prefix, dag, task)
    at = [name for name, _, _ in listed].index("dag_runs") + 1
    return [*listed[:at], ("dag_runs_all", f"{prefix}/dags/{dag}/dag_runs", None),
            *listed[at:]]


def side_by_side(servers: dict[str, int], seconds: int, connections: int, dag: str,
                 task: str, round_number: int = 0,
                 listing: Callable[..., list[tuple[str, str, str | None]]] = pg_endpoints,
                 before: Callable[[str], None] | None = None,
                 ) -> dict[str, dict[str, Result]]:
    """Every endpoint of ``listing`` on every server, server after server for each;
    ``before``, when given, is called with each endpoint's name before it is measured."""
    results: dict[str, dict[str, Result]] = {name: {} for name in servers}
    for endpoint, path, script in listing("/api/experimental", dag, task):
        if before is not None:
            before(endpoint)
        for name, port in servers.items():
            results[name][endpoint] = wrk(f"http://127.0.0.1:{port}{path}", seconds,
                                          connections, script,
                                          trigger_env(name, round_number))
    return results


def trigger_env(server: str, round_number: int) -> dict[str, str]:
    """What ``trigger.lua`` needs to give ``server``'s triggers in this round run ids
    and dates of their own. A database kept between runs (seed_pg.py's big one) has the
    last run's triggers: dates and run ids moved by this process's id (and the round)
    keep them apart; ``drop_triggered_runs`` finds them by the same id."""
    return {"BENCH_RUN_PREFIX": f"{server}{os.getpid()}r{round_number}",
            "BENCH_DATE_OFFSET": str(100_000_000 * prefix_index(server)
                                     + 200_000 * (os.getpid() % 50)
                                     + 1_000_000 * round_number)}


def shut_down(procs: list[Any], airflows: list[Any], home: Any) -> None:
    """Stop the servers a comparison started, Airflow's webservers (those that came up),
    and drop the Airflow-made databases."""
    from tests.compat import airflow_env

    for proc in procs:
        stop(proc)
    for airflow in airflows:
        airflow_env.stop(airflow)
    home.drop_databases()


def median_result(results: list[Result]) -> Result:
    """The rounds' medians (r/s, p50, p99 each on its own); every non-2xx answer."""
    return Result(statistics.median(r.rps for r in results),
                  statistics.median(r.p50_ms for r in results),
                  statistics.median(r.p99_ms for r in results),
                  sum(r.non_2xx for r in results))


def prefix_index(name: str) -> int:
    """The server's place in RUN_PREFIXES; a baseline's (``before_...``) after them all."""
    if name.startswith("before_"):
        return len(RUN_PREFIXES) + RUN_PREFIXES.index(name.removeprefix("before_"))
    return RUN_PREFIXES.index(name)


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------- vs Airflow 2.10.5


def airflow_made_database(venv: Path, work: Path) -> tuple[Any, str]:
    """An Airflow home on a PostgreSQL database Airflow 2.10.5 migrated, with
    etl_nightly's 99 scheduled runs and one triggered run (with its task instances)."""
    from sqlalchemy import insert

    from api_plugin import services
    from api_plugin.store import Store
    from bench.airflow_side import DAG_ID

    os.environ["AIRFLOW_VENV"] = str(venv)
    from tests.compat import airflow_env

    airflow_env.AIRFLOWS["airflow2"] = (venv, airflow_env.AIRFLOWS["airflow2"][1])
    home = airflow_env.make_home(work / "airflow_home", "airflow2", "postgresql")
    store = Store.open(home.database)
    begin = datetime(2024, 6, 1, tzinfo=UTC)
    with store.write() as conn:
        conn.execute(insert(store.tables.dag_run), [
            {"dag_id": DAG_ID, "run_id": f"scheduled__{n}", "execution_date":
             begin + timedelta(hours=n), "state": "success", "run_type": "scheduled",
             "external_trigger": False, "start_date": begin + timedelta(hours=n),
             "clear_number": 0} for n in range(99)])
    services.trigger_dag(store, DAG_ID, execution_date=RUN_DATE)
    store.dispose()
    return home, home.database


def drop_triggered_runs(url: str, dag_id: str) -> None:
    """The runs this process's trigger measurements made (their task instances go with
    them, by Airflow's cascading keys), so that every round reads the same 100 runs:
    Airflow's run list has no limit, and thousands of new runs would slow its next
    rounds alone; a whole list (no ``limit``) longer than 100 runs is streamed.

    A server may still be finishing triggers wrk sent as it stopped (Airflow's sync
    workers take tens of ms for one), which commit after a first DELETE: it is made
    again, a second apart, until one finds nothing. The tables are then vacuumed."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        for attempt in range(30):
            with engine.begin() as conn:
                dropped = conn.execute(
                    text("DELETE FROM dag_run WHERE dag_id = :dag AND run_id LIKE :mine"),
                    {"dag": dag_id, "mine": f"%{os.getpid()}r%"}).rowcount
            if attempt and not dropped:
                break
            time.sleep(1)
        # The dead rows cleared now, between rounds, rather than by autovacuum in the
        # middle of the next one (it came during the run lists, 30-60 s in).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) dag_run, task_instance")
    finally:
        engine.dispose()


#: Runs of the DAG added before a round's trigger measurements (``runs_before_triggers``).
FILLER_RUNS = 1_000


def runs_before_triggers(url: str, dag_id: str, round_number: int) -> None:
    """Gives the DAG ``FILLER_RUNS`` more runs (far in the past, no task instances),
    dropped with the round's triggered runs: the triggers are measured on a ``dag_run``
    of a working Airflow's size, as every other endpoint has been on its 100 runs.

    Each new task instance's foreign key is checked against ``dag_run`` with a plan
    PostgreSQL makes once per connection and keeps until the table is analysed again.
    Made on the two pages ``drop_triggered_runs`` leaves, that plan is a sequential scan:
    the first server measured then paid more for each trigger as its own triggers grew
    the table (one connection: 1.3 ms growing to 4.4 ms a trigger over 4,000 triggers,
    against a flat 0.57 ms with these runs in the table), and the servers after it did
    not, their plans being made on the grown table.

    The table is analysed after the insert, as autovacuum soon would on a working
    server. Without it the first round ran on a table never analysed: every
    equality then looks as selective as any other, and the first server measured made
    its plans for the foreign key check and the trigger's clash check on the
    ``(dag_id, state)`` index, reading every run of the DAG for each trigger (4 times
    slower than on the ``(dag_id, run_id)`` key the servers after it chose)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO dag_run (dag_id, run_id, execution_date, state, run_type, "
                "external_trigger, clear_number) "
                "SELECT :dag, :prefix || n, TIMESTAMPTZ '1990-01-01' + n * INTERVAL '1 minute', "
                "'success', 'scheduled', false, 0 FROM generate_series(1, :count) AS n"),
                {"dag": dag_id, "prefix": f"filler{os.getpid()}r{round_number}_",
                 "count": FILLER_RUNS})
            conn.exec_driver_sql("ANALYZE dag_run")
    finally:
        engine.dispose()


def _filled_before_trigger(url: str, dag_id: str, round_number: int, endpoint: str) -> None:
    """Called before each endpoint of a round of ``tables`` (``side_by_side``'s
    ``before``) and ``ceiling``: the filler runs, before the triggers only."""
    if endpoint == "trigger":
        runs_before_triggers(url, dag_id, round_number)


def tables(args: argparse.Namespace, env: dict[str, str], work: Path) -> None:
    from bench.airflow_side import DAG_ID, TASK_ID
    from tests.compat import airflow_env

    home, url = airflow_made_database(Path(args.airflow).resolve(), work)
    procs: list[Any] = []
    airflows: list[Any] = []
    try:
        direct, direct_port = plugin(url, env)
        procs.append(direct)
        unprepared, unprepared_port = plugin(without_prepares(url), env)
        procs.append(unprepared)
        bouncer, bouncer_port = plugin(pgbouncer_url(url), env)
        procs.append(bouncer)
        bouncer2, bouncer2_port = plugin(pgbouncer_url(on_psycopg2(url)), env)
        procs.append(bouncer2)
        af_port, af_bouncer_port = free_port(), free_port()
        airflows.append(airflow_env.start_webserver(home, url, af_port))
        airflows.append(airflow_env.start_webserver(home, pgbouncer_url(url), af_bouncer_port))
        servers = {"direct": direct_port, "unprepared": unprepared_port,
                   "pgbouncer": bouncer_port, "pgbouncer_psycopg2": bouncer2_port,
                   "airflow": af_port,
                   "airflow_pgbouncer": af_bouncer_port}
        preparing = preparing_url(url)
        if preparing is not None:
            proc, servers["preparing"] = plugin(with_prepares(preparing), env)
            procs.append(proc)
            servers["airflow_preparing"] = free_port()
            airflows.append(airflow_env.start_webserver(home, preparing,
                                                        servers["airflow_preparing"]))
        rounds = []
        for number in range(args.rounds):
            rounds.append(side_by_side(
                servers, args.seconds, args.connections, DAG_ID, TASK_ID, number,
                before=partial(_filled_before_trigger, url, DAG_ID, number)))
            drop_triggered_runs(url, DAG_ID)
        results = {name: {endpoint: median_result([each[name][endpoint] for each in rounds])
                          for endpoint in rounds[0][name]} for name in servers}
    finally:
        shut_down(procs, airflows, home)
    print(f"\n== PostgreSQL: plugin direct (psycopg 3, statements prepared on the server; "
          f"'unprepared': prepare_threshold=none) and through PgBouncer (transaction pooling, "
          f"psycopg 3; 'pg2': psycopg2) vs Airflow 2.10.5's webserver direct and through the "
          f"same PgBouncer (psycopg2), one Airflow-made database ({DAG_ID}, 100 runs), 2 sync "
          f"workers each, {args.connections} connections; medians of {args.rounds} rounds. "
          f"'x af2': direct / Airflow direct; 'x unpr': unprepared / Airflow direct; 'x pgb': "
          f"through PgBouncer / Airflow through PgBouncer; 'x pg2': the same on psycopg2; "
          f"'pgb/af2': through PgBouncer / Airflow direct")
    print(f"{'endpoint':<15}{'direct r/s':>11}{'p50':>7}{'p99':>7}{'unprep':>9}{'p99':>7}"
          f"{'bouncer r/s':>12}{'p50':>7}{'p99':>7}{'pg2 r/s':>9}{'p99':>7}{'af2 r/s':>9}"
          f"{'p50':>7}{'af2 pgb':>9}{'x af2':>7}{'x unpr':>7}{'x pgb':>7}{'x pg2':>7}"
          f"{'pgb/af2':>8}{'non2xx':>8}")
    for name in results["direct"]:
        d, p, b, b2, a, ab = (results[server][name] for server in
                              ("direct", "unprepared", "pgbouncer", "pgbouncer_psycopg2",
                               "airflow", "airflow_pgbouncer"))

        def ratio(r: Result, a: Result) -> float:
            return r.rps / a.rps if a.rps else float("inf")
        print(f"{name:<15}{d.rps:>11.0f}{d.p50_ms:>7.2f}{d.p99_ms:>7.2f}{p.rps:>9.0f}"
              f"{p.p99_ms:>7.2f}{b.rps:>12.0f}{b.p50_ms:>7.2f}{b.p99_ms:>7.2f}{b2.rps:>9.0f}"
              f"{b2.p99_ms:>7.2f}{a.rps:>9.1f}{a.p50_ms:>7.1f}{ab.rps:>9.1f}{ratio(d, a):>7.1f}"
              f"{ratio(p, a):>7.1f}{ratio(b, ab):>7.1f}{ratio(b2, ab):>7.1f}{ratio(b, a):>8.1f}"
              f"{d.non_2xx + p.non_2xx + b.non_2xx + b2.non_2xx:>5}/{a.non_2xx + ab.non_2xx}")
    if "preparing" not in results:
        return
    print("\n== the same rounds through a PgBouncer that keeps prepared statements "
          "(max_prepared_statements = 200; the plugin with ?prepare_threshold=5), the "
          "plugin and Airflow 2.10.5 both through it. 'x af2 pgbP': plugin / Airflow, "
          "both through it; 'pgbP/af2': plugin through it / Airflow direct")
    print(f"{'endpoint':<15}{'pgbP r/s':>10}{'p50':>7}{'p99':>7}{'af2 pgbP':>10}{'p50':>7}"
          f"{'x af2 pgbP':>12}{'pgbP/af2':>10}{'non2xx':>8}")
    for name in results["preparing"]:
        q, aq, a = (results[server][name] for server in
                    ("preparing", "airflow_preparing", "airflow"))
        print(f"{name:<15}{q.rps:>10.0f}{q.p50_ms:>7.2f}{q.p99_ms:>7.2f}{aq.rps:>10.1f}"
              f"{aq.p50_ms:>7.1f}{q.rps / max(aq.rps, 1e-9):>12.1f}"
              f"{q.rps / max(a.rps, 1e-9):>10.1f}{q.non_2xx:>5}/{aq.non_2xx}")


def ceiling(args: argparse.Namespace, env: dict[str, str], work: Path) -> None:
    """Four endpoints on the plugin, on ``bench/ceiling.py``'s bare apps and on Airflow
    2.10.5, all on one Airflow-made database, first directly and then all three through
    the PgBouncer (where nothing is prepared: Debian's 1.18 cannot keep a client's
    prepared statements), each endpoint on every server in turn."""
    from bench.airflow_side import DAG_ID
    from tests.compat import airflow_env

    home, url = airflow_made_database(Path(args.airflow).resolve(), work)
    procs: list[Any] = []
    airflows: list[Any] = []
    plan: dict[str, dict[str, tuple[int, str, str | None]]] = {}
    try:
        for via, target, bare_prepares in (("", url, "0"),
                                           ("pgb_", pgbouncer_url(url), "none")):
            proc, plugin_port = plugin(target, env)
            procs.append(proc)
            bare_port = free_port()
            procs.append(gunicorn("bench.ceiling:bare", bare_port,
                                  {**env, "CEILING_PG_URL": "postgresql://"
                                   + target.split("://", 1)[1],
                                   "CEILING_PREPARE_THRESHOLD": bare_prepares},
                                  "/pool/default_pool"))
            af_port = free_port()
            airflows.append(airflow_env.start_webserver(home, target, af_port))
            for endpoint, paths in _ceiling_paths(DAG_ID).items():
                for server, port in (("plugin", plugin_port), ("bare", bare_port),
                                     ("airflow", af_port)):
                    path, script = paths[server]
                    plan.setdefault(endpoint, {})[via + server] = (port, path, script)
        measured: dict[tuple[str, str], list[Result]] = {}
        for number in range(args.rounds):
            for endpoint, servers in plan.items():
                _filled_before_trigger(url, DAG_ID, number, endpoint)
                for server, (port, path, script) in servers.items():
                    measured.setdefault((endpoint, server), []).append(
                        wrk(f"http://127.0.0.1:{port}{path}", args.seconds,
                            args.connections, script, trigger_env(
                                CEILING_PREFIXES[server], number)))
            drop_triggered_runs(url, DAG_ID)
        results = {key: median_result(each) for key, each in measured.items()}
    finally:
        shut_down(procs, airflows, home)
    for via, title in (("", "directly"),
                       ("pgb_", "all three through the PgBouncer (transaction pooling, "
                        "nothing prepared: the bare apps too)")):
        print(f"\n== What this machine allows, {title}: the plugin, the bare apps of "
              f"bench/ceiling.py and Airflow 2.10.5, one Airflow-made database ({DAG_ID}, "
              f"100 runs), 2 workers each, {args.connections} connections; medians of "
              f"{args.rounds} rounds")
        print(f"{'endpoint':<10}{'plugin r/s':>11}{'p99':>7}{'bare r/s':>10}{'p99':>7}"
              f"{'af2 r/s':>9}{'plugin/bare':>13}{'plugin x af2':>14}{'bare x af2':>12}"
              f"{'non2xx':>8}")
        for endpoint in plan:
            ours, bare, theirs = (results[endpoint, via + server]
                                  for server in ("plugin", "bare", "airflow"))
            print(f"{endpoint:<10}{ours.rps:>11.0f}{ours.p99_ms:>7.2f}{bare.rps:>10.0f}"
                  f"{bare.p99_ms:>7.2f}{theirs.rps:>9.0f}{ours.rps / bare.rps:>13.2f}"
                  f"{ours.rps / theirs.rps:>14.1f}{bare.rps / theirs.rps:>12.1f}"
                  f"{ours.non_2xx + bare.non_2xx:>5}/{theirs.non_2xx}")


#: The ceiling's servers, each with the trigger dates and run ids of a RUN_PREFIXES name.
CEILING_PREFIXES = {"plugin": "direct", "bare": "bare", "airflow": "airflow",
                    "pgb_plugin": "pgbouncer", "pgb_bare": "bare_pgbouncer",
                    "pgb_airflow": "airflow_pgbouncer"}


def _ceiling_paths(dag_id: str) -> dict[str, dict[str, tuple[str, str | None]]]:
    """endpoint -> server -> (path, wrk script) of the ceiling's four endpoints."""
    api, trigger = "/api/experimental", str(HERE / "trigger.lua")
    return {
        "test": {"plugin": (f"{api}/test", None), "bare": ("/test", None),
                 "airflow": (f"{api}/test", None)},
        "pool": {"plugin": (f"{api}/pools/default_pool", None),
                 "bare": ("/pool/default_pool", None),
                 "airflow": (f"{api}/pools/default_pool", None)},
        "dag_runs": {"plugin": (f"{api}/dags/{dag_id}/dag_runs?limit=100", None),
                     "bare": (f"/runs/{dag_id}", None),
                     "airflow": (f"{api}/dags/{dag_id}/dag_runs", None)},
        "trigger": {"plugin": (f"{api}/dags/{dag_id}/dag_runs", trigger),
                    "bare": (f"/trigger/{dag_id}", trigger),
                    "airflow": (f"{api}/dags/{dag_id}/dag_runs", trigger)},
    }


# ---------------------------------------------------------------------- growth


def scale(args: argparse.Namespace, env: dict[str, str]) -> None:
    small = seed_postgresql(10, 100)
    procs = []
    codes: dict[str, Path | None] = {"": None}
    if args.baseline:
        codes = {"": None, "before_": Path(args.baseline)}
    servers: dict[str, int] = {}
    try:
        for tag, code in codes.items():
            for size, url in (("small", small), ("big", args.big)):
                proc, servers[tag + size] = plugin(url, env, code=code)
                procs.append(proc)
        first = {name: warm_up(port) for name, port in servers.items()}
        # The page only: with --big, example_etl's whole list is every one of its runs.
        results = side_by_side(servers, args.seconds, args.connections, "example_etl", "load",
                               listing=endpoints)
        latest = {name: latest_runs_costs(port, args.seconds, args.connections)
                  for name, port in servers.items()}
        floor = sending_floor(env, [latest[size]["plain_bytes"] for size in ("small", "big")],
                              args.seconds, args.connections)
    finally:
        for proc in procs:
            stop(proc)
        drop_database(small)
    for tag in codes:
        print(f"\n== growth on PostgreSQL{' (before: ' + args.baseline + ')' if tag else ''}: "
              f"10 DAGs x 100 runs vs {args.big_label} (example_etl: the DAG read), "
              f"2 workers each, {args.connections} connections")
        print(f"{'endpoint':<15}{'small p50':>10}{'big p50':>9}{'growth':>8}"
              f"{'small r/s':>11}{'big r/s':>9}{'non2xx':>8}")
        for name, s in results[tag + "small"].items():
            b = results[tag + "big"][name]
            print(f"{name:<15}{s.p50_ms:>10.2f}{b.p50_ms:>9.2f}"
                  f"{b.p50_ms / max(s.p50_ms, 1e-6):>7.2f}x"
                  f"{s.rps:>11.0f}{b.rps:>9.0f}{s.non_2xx + b.non_2xx:>8}")
        small_costs, big_costs = latest[tag + "small"], latest[tag + "big"]
        for label, key in (("latest_runs, Accept-Encoding: gzip (p50 ms)", "gzip"),
                           ("latest_runs rebuilt after a commit (median ms)", "rebuilt")):
            print(f"{label:<48}{small_costs[key]:>8.2f}{big_costs[key]:>9.2f}"
                  f"{big_costs[key] / max(small_costs[key], 1e-6):>7.2f}x")
        print(f"{'latest_runs body (bytes): plain, gzipped':<48}"
              f"{big_costs['plain_bytes']:>10.0f}{big_costs['gzip_bytes']:>9.0f}")
        print(f"{'no work, the same plain bytes (p50 ms, floor)':<48}{floor[0]:>8.2f}"
              f"{floor[1]:>9.2f}{floor[1] / max(floor[0], 1e-6):>7.2f}x   (bench/ceiling.py's "
              f"bytes_app: what sending bodies of latest_runs' two sizes costs here alone)")
        print(f"{'latest_runs, first request of a new server (ms)':<48}"
              f"{first[tag + 'small']:>8.0f}{first[tag + 'big']:>9.0f}   (before the "
              f"table: cold caches show here, not in the p50s)")


def sending_floor(env: dict[str, str], sizes: list[float], seconds: int,
                  connections: int) -> list[float]:
    """The p50 of answers of each of ``sizes`` bytes from a bare app that does nothing
    else (``bench/ceiling.py``'s ``bytes_app``, same worker class and count): the least
    any server here spends sending a body that long, so the least latest_runs' plain
    growth can be when its body grows with the number of DAGs."""
    port = free_port()
    proc = gunicorn("bench.ceiling:bare", port, env, "/test")
    try:
        return [wrk(f"http://127.0.0.1:{port}/bytes/{size:.0f}", seconds, connections).p50_ms
                for size in sizes]
    finally:
        stop(proc)


def warm_up(port: int) -> float:
    """One request to each read endpoint of a new server, so that the table measures a
    running server, not the first reads after a start (after a restart of PostgreSQL,
    latest_runs' first rebuild at 10,000 DAGs reads the disk: about 5 s, against 250 ms
    warm, which left wrk's 4 s with no answer at all); how long latest_runs' took."""
    took = 0.0
    for name, path, script in endpoints("/api/experimental", "example_etl", "load"):
        if script is not None:
            continue
        began = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("GET", path)
            conn.getresponse().read()
        finally:
            conn.close()
        if name == "latest_runs":
            took = (time.perf_counter() - began) * 1000
    return took


def latest_runs_costs(port: int, seconds: int, connections: int) -> dict[str, float]:
    """latest_runs as a gzip-accepting client (requests, curl --compressed) gets it: p50
    under wrk; its body sizes; and the median time of a request that finds the kept copy
    stale (each after a pool write, which commits and so changes the snapshot), which is
    what every request costs while a scheduler commits all the time."""
    path = "/api/experimental/latest_runs"
    zipped = wrk(f"http://127.0.0.1:{port}{path}", seconds, connections,
                 headers={"Accept-Encoding": "gzip"})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    took, sizes = [], {}
    try:
        for encoding in ("identity", "gzip"):
            conn.request("GET", path, headers={"Accept-Encoding": encoding})
            sizes[encoding] = float(len(conn.getresponse().read()))
        for n in range(9):
            conn.request("POST", "/api/experimental/pools",
                         body=json.dumps({"name": "bench_touch", "slots": n + 1,
                                          "description": ""}),
                         headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            began = time.perf_counter()
            conn.request("GET", path)
            conn.getresponse().read()
            took.append((time.perf_counter() - began) * 1000)
        conn.request("DELETE", "/api/experimental/pools/bench_touch")
        conn.getresponse().read()
    finally:
        conn.close()
    return {"gzip": zipped.p50_ms, "rebuilt": statistics.median(took),
            "plain_bytes": sizes["identity"], "gzip_bytes": sizes["gzip"]}


# ------------------------------------------------------------------- streaming


def first_byte(port: int, path: str) -> tuple[float, int, int]:
    """(ms to the status line and first body bytes, body size, runs) of one GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    began = time.perf_counter()
    conn.request("GET", path)
    answer = conn.getresponse()
    answer.read(1)
    took = (time.perf_counter() - began) * 1000
    rest = answer.read()
    conn.close()
    return took, 1 + len(rest), rest.count(b'"run_id"')


def stream(args: argparse.Namespace, env: dict[str, str]) -> None:
    """One worker per server, so that the process measured is the one that answered;
    with a baseline, its server and this one measured in alternating rounds."""
    codes: dict[str, Path | None] = {"this code": None}
    if args.baseline:
        codes["before"] = Path(args.baseline)
    base = "/api/experimental/dags/example_etl/dag_runs"
    procs = []
    figures: dict[str, dict[str, Any]] = {}
    try:
        ports = {}
        for tag, code in codes.items():
            proc, ports[tag] = plugin(args.big, env, workers=1, code=code)
            procs.append(proc)
            first_byte(ports[tag], base + "?limit=100")
            figures[tag] = {"worker": worker_pids(proc.pid)[0], "page": [], "whole": [],
                            "big_page": []}
            figures[tag]["before"] = rss_mb(figures[tag]["worker"])
        for _ in range(args.rounds):
            for tag, port in ports.items():
                figures[tag]["page"] += [first_byte(port, base + "?limit=100")
                                         for _ in range(7)]
                figures[tag]["whole"].append(first_byte(port, base))
        for tag in ports:
            figures[tag]["after"] = rss_mb(figures[tag]["worker"])
        for tag, port in ports.items():
            figures[tag]["big_page"] = [first_byte(port, base + "?limit=10000")
                                        for _ in range(3)]
            figures[tag]["after_page"] = rss_mb(figures[tag]["worker"])
    finally:
        for proc in procs:
            stop(proc)
    for tag, f in figures.items():
        page, whole, big_page = f["page"], f["whole"], f["big_page"]
        print(f"\n== streamed run list ({tag}): example_etl's every run (no limit) vs a "
              "100-run page, one worker")
        print(f"first byte, 100-run page:          "
              f"{statistics.median(t[0] for t in page):8.2f} ms  ({page[0][1]:,} bytes)")
        print(f"first byte, every run (streamed):  "
              f"{statistics.median(t[0] for t in whole):8.2f} ms"
              f"  ({whole[0][1]:,} bytes, {whole[0][2]:,} runs)"
              f"  each: {', '.join(f'{t[0]:.2f}' for t in whole)}")
        print(f"first byte, 10,000-run page (not streamed): "
              f"{statistics.median(t[0] for t in big_page):8.2f} ms")
        print(f"worker RSS: {f['before']:.1f} MB before, {f['after']:.1f} MB after "
              f"{args.rounds} full "
              f"lists (+{f['after'] - f['before']:.1f} MB), {f['after_page']:.1f} MB after 3 "
              "unstreamed 10,000-run pages")


# ------------------------------------------------------------------- footprint

MIX = HERE / "mix.lua"


def footprint(args: argparse.Namespace, env: dict[str, str]) -> None:
    url = seed_postgresql(10, 100)
    port = free_port()
    serve_env = {**env, "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": url}
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "api_plugin.cli", "serve", "--bind",
                             f"127.0.0.1:{port}", "--workers", "2"], env=serve_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        startup = wait_first_answer(port, "/api/experimental/dags/example_etl/paused", began)
        workers = worker_pids(proc.pid)
        rows = [("started", 0, [rss_mb(p) for p in workers])]
        done = 0
        for target in (10_000, 100_000):
            while done < target:
                done += run_mix(port, min(target - done, 20_000))
            rows.append((f"after {target:,} requests", done, [rss_mb(p) for p in workers]))
    finally:
        stop(proc)
        drop_database(url)
    print("\n== footprint: `api-plugin serve --workers 2` on PostgreSQL (10 DAGs x 100 runs)")
    print(f"start-up to first answer (a database read): {startup:.0f} ms")
    for label, _, rss in rows:
        print(f"{label:<26} worker RSS MB: {', '.join(f'{r:.1f}' for r in rss)}")


def wait_first_answer(port: int, path: str, began: float) -> float:
    while time.perf_counter() - began < 60:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return (time.perf_counter() - began) * 1000
        except OSError:
            time.sleep(0.01)
    raise SystemExit("api-plugin serve did not answer within 60 s")


def run_mix(port: int, requests: int) -> int:
    """About ``requests`` requests of the endpoint mix (mix.lua); how many were made."""
    out = subprocess.run(["wrk", "-t2", "-c4", "-d60s", "-s", str(MIX),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                         check=True, env={**os.environ, "BENCH_REQUESTS": str(requests)}).stdout
    return int(out.split(" requests in ")[0].split()[-1])


# ---------------------------------------------------------------------- change

def change(args: argparse.Namespace, env: dict[str, str]) -> None:
    if not args.baseline:
        raise SystemExit("change needs --baseline DIR: the code before the change")
    url = seed_postgresql(10, 100)
    only = set(args.only.split(",")) if args.only else None
    codes = {"before": Path(args.baseline).resolve(), "after": None}
    procs: list[Any] = []
    servers: dict[str, int] = {}
    rounds: list[dict[str, dict[str, Result]]] = []
    try:
        for tag, code in codes.items():
            for via, target in (("direct", url), ("pgbouncer", pgbouncer_url(url))):
                proc, servers[f"{tag} {via}"] = plugin(target, env, code=code)
                procs.append(proc)
        for number in range(args.rounds):
            results: dict[str, dict[str, Result]] = {name: {} for name in servers}
            for endpoint, path, script in pg_endpoints("/api/experimental"):
                if only is not None and endpoint not in only:
                    continue
                for index, (name, port) in enumerate(servers.items()):
                    results[name][endpoint] = wrk(
                        f"http://127.0.0.1:{port}{path}", args.seconds, args.connections,
                        script, trigger_env(RUN_PREFIXES[index], number))
            rounds.append(results)
            drop_triggered_runs(url, "example_etl")
    finally:
        for proc in procs:
            stop(proc)
        drop_database(url)
    print(f"\n== before ({args.baseline}) and after, 10 DAGs x 100 runs, 2 workers each, "
          f"{args.connections} connections, medians of {args.rounds} rounds taken in turn")
    print(f"{'endpoint':<15}{'via':<11}{'before r/s':>11}{'p99':>7}{'after r/s':>10}{'p99':>7}"
          f"{'after/before':>13}{'non2xx':>8}")
    for endpoint in rounds[0]["after direct"]:
        for via in ("direct", "pgbouncer"):
            before, after = (median_result([each[f"{tag} {via}"][endpoint] for each in rounds])
                             for tag in ("before", "after"))
            print(f"{endpoint:<15}{via:<11}{before.rps:>11.0f}{before.p99_ms:>7.2f}"
                  f"{after.rps:>10.0f}{after.p99_ms:>7.2f}"
                  f"{after.rps / max(before.rps, 1e-9):>12.2f}x"
                  f"{before.non_2xx + after.non_2xx:>8}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["tables", "scale", "stream", "footprint",
                                         "ceiling", "change"])
    parser.add_argument("--airflow",
                        help="virtualenv of apache-airflow 2.10.5 (tables, ceiling)")
    parser.add_argument("--big", help="URL of a seed_pg.py database (scale, stream)")
    parser.add_argument("--baseline", help="a copy of the code before a change, measured "
                        "in the same rounds (scale, stream, change)")
    parser.add_argument("--only", help="change: the endpoints to measure, comma-separated "
                        "(test, dag_runs, dag_run_state, task, task_instance, paused, "
                        "latest_runs, pools, pool, trigger)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="tables: rounds whose medians are printed; "
                        "stream: full lists per server")
    parser.add_argument("--big-label", default="10,000 DAGs / ~1,000,000 runs")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="api_plugin_bench_pg_"))
    env = {**os.environ, "API_PLUGIN_CONFIG": str(work / "none.cfg")}
    actions: dict[str, Callable[[], None]] = {
        "tables": lambda: tables(args, env, work),
        "scale": lambda: scale(args, env),
        "stream": lambda: stream(args, env),
        "footprint": lambda: footprint(args, env),
        "ceiling": lambda: ceiling(args, env, work),
        "change": lambda: change(args, env),
    }
    try:
        actions[args.what]()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
