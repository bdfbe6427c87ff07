"""What slow clients cost a normal one: ``/test`` latency (p50, p99) from one normal
client, quiet and then with 50 sockets trickling requests at one byte a second (half
slow headers, half a body that never completes), against ``api-plugin serve`` with 2
workers (the buffering worker). Prints the figures and the p99 ratio.

    python bench/slow_clients.py [--requests 300] [--slow 50]
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.servers import start_server  # noqa: E402
from tests.test_slow_clients import PREFIX, SlowClients  # noqa: E402


def latencies(port: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", PREFIX + "/test")
        conn.getresponse().read()
        conn.close()
        out.append(time.perf_counter() - started)
    return sorted(out)


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--read-timeout", type=float, default=30.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="api_plugin_slow_"))
    server = start_server(folder, settings={
        "webserver__request_read_timeout": str(args.read_timeout)})
    port = server.port
    try:
        quiet = latencies(port, args.requests)
        with SlowClients(port) as slow:
            slow.open(headers=args.slow // 2, bodies=args.slow - args.slow // 2)
            time.sleep(2)
            loaded = latencies(port, args.requests)
            still_open = slow.still_open
    finally:
        server.stop()
    print(f"/test, {args.requests} requests, 2 workers: quiet p50 {quantile(quiet, .5):.1f} ms "
          f"p99 {quantile(quiet, .99):.1f} ms; with {still_open} of {args.slow} slow sockets "
          f"open p50 {quantile(loaded, .5):.1f} ms p99 {quantile(loaded, .99):.1f} ms "
          f"(p99 ratio {quantile(loaded, .99) / quantile(quiet, .99):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
