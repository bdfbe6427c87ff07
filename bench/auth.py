"""What authentication costs: the same endpoints behind ``default`` and behind
``password`` (HTTP Basic, a FAB pbkdf2:sha256:260000 hash), measured in one run under
identical gunicorn settings with wrk. After the first request of each worker, a good
password is served from the per-process cache, so ``password`` should cost about what
``default`` does.

    python bench/auth.py [--seconds 5] [--connections 4]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import WORKERS, free_port, gunicorn, wrk  # noqa: E402
from bench.seed import seed_database  # noqa: E402

PATHS = {"test": "/api/experimental/test",
         "paused": "/api/experimental/dags/example_etl/paused"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    from api_plugin.auth.hashes import hash_password
    from api_plugin.store import Store
    from api_plugin.store.users import create_user

    work = Path(tempfile.mkdtemp(prefix="api_plugin_auth_bench_"))
    url = seed_database(work / "db.db", 1, 100)
    store = Store.open(url)
    create_user(store, "bench", hash_password("bench-secret", store.flavor.name))
    store.dispose()
    header = "Basic " + base64.b64encode(b"bench:bench-secret").decode()
    print(f"\n== auth cost, {WORKERS} sync workers, {args.connections} connections")
    print(f"{'endpoint':<10}{'default r/s':>13}{'password r/s':>14}{'ratio':>8}"
          f"{'default p50':>13}{'password p50':>14}")
    results = {}
    for backend in ("default", "password"):
        port = free_port()
        env = {**os.environ, "API_PLUGIN_CONFIG": str(work / "none.cfg"),
               "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": url,
               "API_PLUGIN__API__AUTH_BACKENDS": backend}
        proc = gunicorn("api_plugin.wsgi:application", port, env, PATHS["test"])
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(2 * WORKERS):  # every worker checks the password once
                request = urllib.request.Request(base + PATHS["test"],
                                                 headers={"Authorization": header})
                urllib.request.urlopen(request, timeout=10).read()
            results[backend] = {name: wrk(base + path, args.seconds, args.connections,
                                          headers={"Authorization": header})
                                for name, path in PATHS.items()}
        finally:
            proc.terminate()
            proc.wait()
    for name in PATHS:
        d, p = results["default"][name], results["password"][name]
        print(f"{name:<10}{d.rps:>13.0f}{p.rps:>14.0f}{p.rps / d.rps:>8.2f}"
              f"{d.p50_ms:>12.2f} {p.p50_ms:>13.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
