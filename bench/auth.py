"""What authentication costs: the same endpoints behind ``default``, behind ``password``
(HTTP Basic, a FAB pbkdf2:sha256:260000 hash) and behind ``airflow_jwt`` (an HS512 bearer
token as Airflow 3 issues it, checked against a ``revoked_token`` table), measured in one
run under identical gunicorn settings with wrk. After the first request of each worker, a
good password is served from the per-process cache (plus one indexed read of the user's
current hash), so ``password`` should cost about what ``default`` does; a token costs one
signature check and one primary-key read per request.

    python bench/auth.py [--seconds 5] [--connections 4]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import jwt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import WORKERS, free_port, gunicorn, wrk  # noqa: E402
from bench.seed import seed_database  # noqa: E402

JWT_SECRET = "bench-" * 11  # 66 bytes: long enough for HS512
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
    with store.engine.begin() as conn:  # Airflow 3's table, so every token is looked up
        conn.exec_driver_sql("CREATE TABLE revoked_token (jti VARCHAR(32) PRIMARY KEY, "
                             "exp TIMESTAMP NOT NULL)")
    store.dispose()
    now = int(time.time())
    token = jwt.encode({"sub": "bench", "role": "admin", "jti": uuid.uuid4().hex,
                        "aud": "apache-airflow", "nbf": now, "exp": now + 3600, "iat": now},
                       JWT_SECRET, algorithm="HS512", headers={"kid": "not-used"})
    headers = {"default": "", "password": "Basic " + base64.b64encode(
        b"bench:bench-secret").decode(), "airflow_jwt": f"Bearer {token}"}
    print(f"\n== auth cost, {WORKERS} sync workers, {args.connections} connections")
    print(f"{'endpoint':<10}{'default r/s':>13}{'password r/s':>14}{'ratio':>8}"
          f"{'jwt r/s':>10}{'ratio':>8}{'default p50':>13}{'password p50':>14}{'jwt p50':>10}")
    results = {}
    for backend, header in headers.items():
        port = free_port()
        env = {**os.environ, "API_PLUGIN_CONFIG": str(work / "none.cfg"),
               "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": url,
               "API_PLUGIN__API__AUTH_BACKENDS": backend,
               "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET}
        auth = {"Authorization": header} if header else {}
        proc = gunicorn("api_plugin.wsgi:application", port, env, PATHS["test"])
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(2 * WORKERS):  # every worker checks the password once
                request = urllib.request.Request(base + PATHS["test"], headers=auth)
                urllib.request.urlopen(request, timeout=10).read()
            results[backend] = {name: wrk(base + path, args.seconds, args.connections,
                                          headers=auth)
                                for name, path in PATHS.items()}
        finally:
            proc.terminate()
            proc.wait()
    for name in PATHS:
        d, p, j = (results[b][name] for b in ("default", "password", "airflow_jwt"))
        print(f"{name:<10}{d.rps:>13.0f}{p.rps:>14.0f}{p.rps / d.rps:>8.2f}"
              f"{j.rps:>10.0f}{j.rps / d.rps:>8.2f}"
              f"{d.p50_ms:>12.2f} {p.p50_ms:>13.2f}{j.p50_ms:>10.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
