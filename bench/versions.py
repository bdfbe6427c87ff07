"""Benchmark: this checkout against another installed version of the plugin, side by side.

    python bench/versions.py --other /path/to/venv      # a virtualenv with the other version
    python bench/versions.py --other /path/to/venv --rounds 3 --seconds 4

Both run under the same gunicorn settings on copies of one seeded SQLite database (each
its own copy, so triggers never collide). Every endpoint is measured on one, then the
other, alternating for ``--rounds`` rounds, and each side keeps its best round: the two
figures of a line come from the same minute, so a busy machine slows both alike. Prints
requests/s, p50 and the ratio this/other per endpoint. A refactoring that must not cost
speed is checked with it (the ratio should stay at or above 0.95).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import WORKER_CLASS, WORKERS, Result, endpoints, free_port, start, wrk  # noqa: E402
from bench.seed import seed_database  # noqa: E402


def serve(python: str, url: str, env: dict[str, str], cwd: Path) -> tuple[object, str]:
    """A gunicorn of ``python``'s installed plugin on ``url``; its process and base URL."""
    port = free_port()
    proc = start([python, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
                  "--workers", str(WORKERS), "--worker-class", WORKER_CLASS,
                  "api_plugin.wsgi:application"],
                 {**env, "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": url},
                 f"http://127.0.0.1:{port}/api/experimental/test", cwd=cwd)
    return proc, f"http://127.0.0.1:{port}"


def best(a: Result | None, b: Result) -> Result:
    return b if a is None or b.rps > a.rps else a


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", required=True, help="virtualenv with the other version")
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="api_plugin_versions_"))
    env = {**os.environ, "API_PLUGIN_CONFIG": str(work / "none.cfg")}
    seeded = seed_database(work / "seed.db", 1, 100)
    source = Path(seeded.split("///", 1)[1])
    sides = {}
    try:
        for name, python, cwd in (("this", sys.executable, HERE.parent),
                                  ("other", str(Path(args.other) / "bin" / "python"), work)):
            copy = work / f"{name}.db"
            shutil.copy(source, copy)
            sides[name] = serve(python, f"sqlite:///{copy}", env, cwd)
        results: dict[str, dict[str, Result | None]] = {"this": {}, "other": {}}
        for round_no in range(args.rounds):
            for endpoint, path, script in endpoints("/api/experimental"):
                for name in ("this", "other") if round_no % 2 == 0 else ("other", "this"):
                    prefix = "plugin" if name == "this" else "direct"
                    trigger_env = {"BENCH_RUN_PREFIX": f"{prefix}{round_no}",
                                   "BENCH_DATE_OFFSET": str(100_000_000 * (round_no + 1))}
                    measured = wrk(sides[name][1] + path, args.seconds, args.connections,
                                   script, trigger_env)
                    results[name][endpoint] = best(results[name].get(endpoint), measured)
    finally:
        for proc, _ in sides.values():
            proc.terminate()  # type: ignore[attr-defined]
            proc.wait()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n== this checkout vs {args.other}: {WORKERS} sync workers each, "
          f"{args.connections} connections, best of {args.rounds} alternating rounds")
    print(f"{'endpoint':<15}{'this r/s':>10}{'p50 ms':>9}{'other r/s':>11}{'p50 ms':>9}"
          f"{'this/other':>12}")
    for endpoint, mine in results["this"].items():
        theirs = results["other"][endpoint]
        assert mine is not None and theirs is not None
        print(f"{endpoint:<15}{mine.rps:>10.0f}{mine.p50_ms:>9.2f}{theirs.rps:>11.0f}"
              f"{theirs.p50_ms:>9.2f}{mine.rps / theirs.rps:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
