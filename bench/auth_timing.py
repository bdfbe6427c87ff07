"""What a failed Basic login costs, by kind: an unknown user against a wrong password for
a real one, in-process, with a realistic hash (FAB's pbkdf2:sha256:260000, or bcrypt at
10 rounds with ``--bcrypt``). The two should cost the same (ratio near 1.00), the very
first request of a fresh app included, so that timing does not tell which users exist.

The test suite proves this by what is computed (tests/test_auth_attack.py checks that
every check runs the users' algorithm with the same parameters); these are the timings.

    python bench/auth_timing.py [--rounds 20] [--bcrypt]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.seed import seed_database  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--bcrypt", action="store_true", help="bcrypt (Airflow 1.10's kind)")
    args = parser.parse_args()
    import bcrypt
    from werkzeug.security import generate_password_hash
    from werkzeug.test import Client

    from api_plugin.serving.mount import build_application
    from api_plugin.settings.config import Config
    from api_plugin.store import Store
    from api_plugin.store.users import create_user

    work = Path(tempfile.mkdtemp(prefix="api_plugin_auth_timing_"))
    url = seed_database(work / "db.db", 1, 1)
    store = Store.open(url)
    stored = (bcrypt.hashpw(b"right", bcrypt.gensalt(10)).decode() if args.bcrypt
              else generate_password_hash("right", method="pbkdf2:sha256:260000"))
    create_user(store, "alice", stored)
    store.dispose()
    config = Config.load(environ={}, database__sql_alchemy_conn=url,
                         api__auth_backends="password", api__auth_failures_per_minute="0")
    client = Client(build_application(config))

    def seconds(user: str, password: str) -> float:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        started = time.perf_counter()
        client.get("/api/experimental/test", headers={"Authorization": f"Basic {token}"})
        return time.perf_counter() - started

    first = seconds("mallory", "guess")  # the first request of a fresh app
    unknown, wrong = [], []
    for i in range(args.rounds):
        wrong.append(seconds("alice", f"guess{i}"))
        unknown.append(seconds(f"nobody{i}", f"guess{i}"))
    u, w = statistics.median(unknown), statistics.median(wrong)
    print(f"hash {stored.split('$')[0] if not args.bcrypt else stored[:7]}: wrong password "
          f"{w * 1000:.1f} ms, unknown user {u * 1000:.1f} ms, ratio {u / w:.2f}; "
          f"first request (unknown user) {first * 1000:.1f} ms, ratio {first / w:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
