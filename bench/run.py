"""Benchmark: the plugin against the bare-WSGI ceiling (and Airflow 2.10.5's webserver
when its virtualenv is there), under identical gunicorn settings, driven by wrk.

    python bench/run.py                 # every endpoint, 1 DAG / 100 runs
    python bench/run.py --scale         # also 1,000 DAGs / 100,000 runs, cost growth
    python bench/run.py --airflow /opt/af2   # add Airflow's own webserver on the same DB
                                             # (a virtualenv with apache-airflow 2.10.5)

Prints requests/s, p50 and p99 per endpoint and the ratios to the ceiling and Airflow.
Nothing here asserts timings: the numbers are for people (and the closing notes).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.seed import seed_database  # noqa: E402

WORKERS = 2
#: The worker ``api-plugin serve`` runs (it keeps connections alive); BENCH_WORKER=sync
#: measures gunicorn's plain sync worker instead.
WORKER_CLASS = os.environ.get("BENCH_WORKER",
                              "api_plugin.serving.buffered_worker.BufferedWorker")
RUN_DATE = "2025-01-01T00:00:00+00:00"
#: Each server measured on one database triggers with its own prefix and dates.
RUN_PREFIXES = ["bench", "plugin", "airflow", "direct", "pgbouncer", "small", "big", "mix",
                "unprepared", "bare", "airflow_pgbouncer", "preparing",
                "airflow_preparing", "bare_pgbouncer", "pgbouncer_psycopg2"]


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], env: dict[str, str], probe: str, cwd: Path = HERE.parent,
          seconds: float = 60) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(probe, timeout=2).read()
            return proc
        except urllib.error.HTTPError:
            return proc  # it answered (a 401 behind an auth backend is an answer)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not come up: {' '.join(args)}")


def gunicorn(target: str, port: int, env: dict[str, str],
             probe_path: str) -> subprocess.Popen[bytes]:
    return start([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                  "--workers", str(WORKERS), "--worker-class", WORKER_CLASS, target],
                 env, f"http://127.0.0.1:{port}{probe_path}")


_LAT = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: int, connections: int, script: str | None = None,
        env: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Result:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in (headers or {}).items():
        args[1:1] = ["-H", f"{name}: {value}"]
    if script:
        args[1:1] = ["-s", script]
    out = subprocess.run(args, capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})}).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: float(v) * _UNITS[u] for p, v, u in _LAT.findall(out)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not rps:  # nothing answered: say what wrk saw (socket errors, timeouts)
        print(f"wrk answered nothing for {url}:\n{out}", file=sys.stderr)
    return Result(rps, lat.get("50", 0.0), lat.get("99", 0.0), int(bad.group(1)) if bad else 0)


def endpoints(prefix: str, dag: str = "example_etl",
              task: str = "load") -> list[tuple[str, str, str | None]]:
    date = RUN_DATE.replace("+", "%2B")
    return [
        ("test", f"{prefix}/test", None),
        ("dag_runs", f"{prefix}/dags/{dag}/dag_runs?limit=100", None),
        ("dag_run_state", f"{prefix}/dags/{dag}/dag_runs/{date}", None),
        ("task", f"{prefix}/dags/{dag}/tasks/{task}", None),
        ("task_instance", f"{prefix}/dags/{dag}/dag_runs/{date}/tasks/{task}", None),
        ("paused", f"{prefix}/dags/{dag}/paused", None),
        ("latest_runs", f"{prefix}/latest_runs", None),
        ("pools", f"{prefix}/pools", None),
        ("pool", f"{prefix}/pools/default_pool", None),
        ("trigger", f"{prefix}/dags/{dag}/dag_runs", str(HERE / "trigger.lua")),
    ]


def measure(base: str, seconds: int, connections: int, dag: str = "example_etl",
            task: str = "load", run_prefix: str = "bench") -> dict[str, Result]:
    trigger_env = {"BENCH_RUN_PREFIX": run_prefix,
                   "BENCH_DATE_OFFSET": str(100_000_000 * RUN_PREFIXES
                                            .index(run_prefix))}
    return {name: wrk(base + path, seconds, connections, script, trigger_env)
            for name, path, script in endpoints("/api/experimental", dag, task)}


def report(title: str, plugin: dict[str, Result], ceiling: Result,
           airflow: dict[str, Result] | None) -> None:
    print(f"\n== {title}")
    head = f"{'endpoint':<15}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non2xx':>8}{'/ceiling':>10}"
    print(head + (f"{'airflow r/s':>13}{'x airflow':>11}" if airflow else ""))
    for name, r in plugin.items():
        line = (f"{name:<15}{r.rps:>10.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.non_2xx:>8}"
                f"{r.rps / ceiling.rps:>10.2f}")
        if airflow and name in airflow:
            a = airflow[name]
            line += f"{a.rps:>13.0f}{r.rps / a.rps if a.rps else float('inf'):>11.1f}"
        print(line)
    print(f"{'ceiling /test':<15}{ceiling.rps:>10.0f}{ceiling.p50_ms:>9.2f}{ceiling.p99_ms:>9.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--scale", action="store_true", help="also 1,000 DAGs / 100,000 runs")
    parser.add_argument("--airflow", help="virtualenv of apache-airflow 2.10.5 to compare with")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="api_plugin_bench_"))
    env = {**os.environ, "API_PLUGIN_CONFIG": str(work / "none.cfg")}
    # The ceiling server stays up all along and is measured again right before each
    # plugin run, so every ratio compares two measurements of the same minute.
    ceiling_port = free_port()
    ceiling_proc = gunicorn("bench.ceiling:app", ceiling_port, env, "/")
    try:
        return run_all(args, work, env, ceiling_port)
    finally:
        ceiling_proc.terminate()
        ceiling_proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def run_all(args: argparse.Namespace, work: Path, env: dict[str, str],
            ceiling_port: int) -> int:
    def with_ceiling(base: str, **kwargs: str) -> dict[str, Result]:
        ceilings.append(wrk(f"http://127.0.0.1:{ceiling_port}/", args.seconds,
                            args.connections))
        return measure(base, args.seconds, args.connections, **kwargs)

    ceilings: list[Result] = []
    sizes = [(1, 100)] + ([(1000, 100)] if args.scale else [])
    if args.airflow:
        from bench import airflow_side

        ours, theirs = airflow_side.measure_both(
            Path(args.airflow), work,
            lambda base, run_prefix: (
                with_ceiling(base, dag=airflow_side.DAG_ID, task=airflow_side.TASK_ID,
                             run_prefix=run_prefix) if run_prefix == "plugin"
                else measure(base, args.seconds, args.connections, airflow_side.DAG_ID,
                             airflow_side.TASK_ID, run_prefix)),
            gunicorn, free_port, env)
        report(f"plugin and Airflow 2.10.5's webserver on one Airflow-made database "
               f"({airflow_side.DAG_ID}, 100 runs), {WORKERS} sync workers each, "
               f"{args.connections} connections", ours, ceilings[-1], theirs)
    results = {}
    for dags, runs in sizes:
        url = seed_database(work / f"db_{dags}.db", dags, runs)
        port = free_port()
        proc = gunicorn("api_plugin.wsgi:application", port,
                        {**env, "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": url},
                        "/api/experimental/test")
        try:
            results[(dags, runs)] = with_ceiling(f"http://127.0.0.1:{port}")
        finally:
            proc.terminate()
            proc.wait()
        report(f"plugin, {dags} DAG(s) x {runs} runs each, {WORKERS} sync workers, "
               f"{args.connections} connections", results[(dags, runs)], ceilings[-1], None)
    if args.scale:
        small, big = results[(1, 100)], results[(1000, 100)]
        print("\n== cost growth at 1,000 DAGs / 100,000 runs (p50 big / p50 small)")
        for name in small:
            print(f"{name:<15}{big[name].p50_ms / max(small[name].p50_ms, 1e-6):>8.2f}x"
                  f"   p50 {big[name].p50_ms:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
