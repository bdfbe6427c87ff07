"""The trigger of two source trees of the plugin, in-process on one PostgreSQL, side by side.

    git archive <commit> | tar -x -C /tmp/before      # the other tree, e.g. before a change
    python bench/trigger_trees.py --other /tmp/before [--url postgresql+psycopg://...]
                                  [--rounds 7] [--requests 300]
    python bench/trigger_trees.py --other /tmp/before --served [--rounds 3] [--seconds 4]

Each round starts one process per tree (``PYTHONPATH`` naming it), which opens the
plugin's app on the same scratch database (example_etl, four tasks) and POSTs
``--requests`` triggers through werkzeug's test client, each at a date of its own, after
a few to warm up; it prints µs per trigger. The trees alternate round by round (which
goes first swapping each round), so both share the machine's drift, and the median of
each is printed with the ratio. Nothing here asserts timings: the numbers are for
people.

``--served``: each tree served by gunicorn (2 workers, bench/run.py's worker class)
directly and through PgBouncer (``API_PLUGIN_TEST_PGBOUNCER_URL``), all four up at once
on one database, and wrk's trigger script at 4 connections on each in turn, round
after round; prints r/s and p99 per server and round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.prepares import drop_database, scratch_database, seed  # noqa: E402

WARM_UP = 20

#: Run in a child process whose ``PYTHONPATH`` names one tree: µs per trigger.
CHILD = """
import sys, time
from datetime import UTC, datetime, timedelta
from werkzeug.test import Client
from api_plugin.serving.mount import build_api
from api_plugin.settings.config import Config
from api_plugin.store import Store

url, first, requests, warm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
store = Store.open(url)
client = Client(build_api(Config.load(environ={}, database__sql_alchemy_conn=url,
                                      api__auth_backend="default"), store))
base = datetime(2030, 1, 1, tzinfo=UTC)

def trigger(n):
    when = (base + timedelta(seconds=first + n)).isoformat()
    response = client.post("/dags/example_etl/dag_runs", json={"execution_date": when},
                           environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 200, response.data[:300]

for n in range(warm):
    trigger(n)
started = time.perf_counter()
for n in range(warm, warm + requests):
    trigger(n)
print((time.perf_counter() - started) / requests * 1e6)
store.dispose()
"""


def one_round(tree: Path, url: str, first: int, requests: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree), "API_PLUGIN_CONFIG": os.devnull}
    done = subprocess.run([sys.executable, "-c", CHILD, url, str(first), str(requests),
                           str(WARM_UP)], env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def served(args: argparse.Namespace, url: str) -> None:
    from bench.pg import pgbouncer_url, stop
    from bench.run import RUN_PREFIXES, WORKER_CLASS, free_port, start, wrk

    trees = {"this": HERE.parent, "other": args.other.resolve()}
    procs, ports = [], {}
    try:
        for tree_name, tree in trees.items():
            for way, target in (("direct", url), ("pgbouncer", pgbouncer_url(url))):
                port = free_port()
                env = {**os.environ, "PYTHONPATH": str(tree), "API_PLUGIN_CONFIG": os.devnull,
                       "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": target}
                procs.append(start([sys.executable, "-m", "gunicorn", "--bind",
                                    f"127.0.0.1:{port}", "--workers", "2", "--worker-class",
                                    WORKER_CLASS, "api_plugin.wsgi:application"], env,
                                   f"http://127.0.0.1:{port}/api/experimental/test",
                                   cwd=tree))
                ports[f"{tree_name} {way}"] = port
        print(f"trigger served by gunicorn (2 {WORKER_CLASS} workers), wrk "
              f"{args.connections} connections x {args.seconds} s, on one database")
        print(f"{'round':<7}{'server':<18}{'r/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non2xx':>8}")
        for number in range(args.rounds):
            for index, (name, port) in enumerate(ports.items()):
                env = {"BENCH_RUN_PREFIX": f"{RUN_PREFIXES[index]}{os.getpid()}r{number}",
                       "BENCH_DATE_OFFSET": str(100_000_000 * index + 1_000_000 * number)}
                result = wrk(f"http://127.0.0.1:{port}/api/experimental/dags/example_etl/"
                             "dag_runs", args.seconds, args.connections,
                             str(HERE / "trigger.lua"), env)
                print(f"{number:<7}{name:<18}{result.rps:>8.0f}{result.p50_ms:>8.2f}"
                      f"{result.p99_ms:>8.2f}{result.non_2xx:>8}", flush=True)
    finally:
        for proc in procs:
            stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, type=Path, help="the other source tree")
    parser.add_argument("--url", default=os.environ.get("API_PLUGIN_TEST_PG_URL"))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--served", action="store_true")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if not args.url:
        parser.error("--url or API_PLUGIN_TEST_PG_URL: a PostgreSQL server")
    url = scratch_database(args.url)
    if args.served:
        try:
            seed(url, 10)
            served(args, url)
        finally:
            drop_database(args.url, url)
        return 0
    trees = {"this": HERE.parent, "other": args.other.resolve()}
    samples: dict[str, list[float]] = {name: [] for name in trees}
    try:
        seed(url, 10)
        first = 0
        for number in range(args.rounds):
            order = list(trees.items())
            for name, tree in order if number % 2 == 0 else order[::-1]:
                samples[name].append(one_round(tree, url, first, args.requests))
                first += args.requests + WARM_UP
    finally:
        drop_database(args.url, url)
    this, other = statistics.median(samples["this"]), statistics.median(samples["other"])
    print(f"trigger in-process on {url.rsplit('@', 1)[-1].split('/')[0]}, one client; median "
          f"of {args.rounds} alternating rounds x {args.requests} triggers")
    print(f"{'tree':<8}{'µs/trigger':>12}")
    print(f"{'this':<8}{this:>12.0f}\n{'other':<8}{other:>12.0f}")
    print(f"other/this: {other / this:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
