"""How many password guesses a host lets through: ``api-plugin serve`` with 2 workers, the
password backend and a FAB pbkdf2:sha256:260000 hash, attacked from 20 loopback
addresses. Prints counts (guesses that reached a hash, refusals) and, per scenario, the
guesses allowed per minute; the legitimate client's latency under attack as a ratio to
its quiet latency.

    python bench/auth_throttle.py            # this checkout
    PYTHONPATH=/path/to/other/checkout python bench/auth_throttle.py   # compare another
"""

from __future__ import annotations

import base64
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import free_port  # noqa: E402

PREFIX = "/api/experimental"
SOURCES = [f"127.0.0.{i}" for i in range(2, 22)]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def get(port: int, headers: dict[str, str], source: str) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    try:
        conn.request("GET", PREFIX + "/test", headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


def attack(port: int, guesses: list[tuple[str, str, str]]) -> tuple[Counter[int], float]:
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        answers = Counter(status for status, _ in pool.map(
            lambda g: get(port, basic(g[0], g[1]), g[2]), guesses))
    return answers, time.perf_counter() - started


def per_minute(allowed: int, seconds: float) -> float:
    """Guesses that reached a hash, per minute (the window is a minute: a run shorter
    than that has had all its budget)."""
    return allowed if seconds <= 60 else allowed * 60 / seconds


def server(work: Path, url: str, tag: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "API_PLUGIN_CONFIG": str(work / "none.cfg"),
           "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": url,
           "API_PLUGIN__API__AUTH_BACKENDS": "password",
           "API_PLUGIN__API__AUTH_THROTTLE_PATH": str(work / tag / "throttle.sqlite3")}
    proc = subprocess.Popen([sys.executable, "-m", "api_plugin.cli", "serve", "--bind",
                             f"127.0.0.1:{port}", "--workers", "2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            get(port, {}, "127.0.0.1")
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("server did not start")


def main() -> int:
    from api_plugin.auth.hashes import hash_password
    from api_plugin.store import Store
    from api_plugin.store.users import create_user

    work = Path(tempfile.mkdtemp(prefix="api_plugin_throttle_bench_"))
    url = f"sqlite:///{work / 'db.db'}"
    store = Store.open(url, create=True)
    for user in ("alice", "bob", "carol"):
        create_user(store, user, hash_password(f"right-{user}", store.flavor.name))
    store.dispose()
    import api_plugin

    print(f"\n== password guessing, 2 workers, 20 addresses ({Path(api_plugin.__file__).parent})")
    rows = []

    proc, port = server(work, url, "rotate")
    try:
        get(port, basic("bob", "right-bob"), SOURCES[0])
        quiet = [get(port, basic("bob", "right-bob"), SOURCES[0])[1] for _ in range(50)]
        guesses = [("alice", f"g{i}-{s}", s) for i in range(20) for s in SOURCES]
        with ThreadPoolExecutor(1) as legit:
            during = legit.submit(lambda: [get(port, basic("bob", "right-bob"), SOURCES[0])[1]
                                           for _ in range(50)])
            answers, seconds = attack(port, guesses)
            attacked = during.result()
        rows.append(("one account, 20 addresses x 20", answers, seconds))
    finally:
        proc.terminate()
        proc.wait()
    proc, port = server(work, url, "nat")
    try:
        answers, seconds = attack(port, [("alice", f"nat{i}", SOURCES[3]) for i in range(60)])
        rows.append(("one account, one address x 60", answers, seconds))
        carol_at_nat = get(port, basic("carol", "right-carol"), SOURCES[3])[0]
    finally:
        proc.terminate()
        proc.wait()
    proc, port = server(work, url, "spray")
    try:
        spray = [(f"user{i}", "guess", SOURCES[i % 20]) for i in range(400)]
        answers, seconds = attack(port, spray)
        rows.append(("400 usernames, 20 addresses", answers, seconds))
    finally:
        proc.terminate()
        proc.wait()

    print(f"{'scenario':<34}{'hashed (401)':>13}{'refused (429)':>14}{'allowed/min':>13}")
    for name, counts, secs in rows:
        print(f"{name:<34}{counts[401]:>13}{counts[429]:>14}"
              f"{per_minute(counts[401], secs):>13.0f}")
    print("carol's first login (right password) from the address that guessed alice 60 "
          f"times: {carol_at_nat}")
    print(f"bob's median latency under attack / quiet: "
          f"{statistics.median(attacked) / statistics.median(quiet):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
