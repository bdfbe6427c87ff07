"""An ordinary mix of requests on PostgreSQL, served by several ``api-plugin serve``
workers: every answer a 200, never a 5xx.

Run on ``API_PLUGIN_TEST_PG_URL``: a direct server in the ``postgres`` tox environment,
PgBouncer in transaction-pooling mode (once with psycopg 3, once with psycopg2) in the
``pgbouncer`` one. Behind a transaction pooler every transaction may land on another
server connection, so a driver that prepares statements server-side (psycopg 3 after a
few executions) meets ``DuplicatePreparedStatement`` or ``InvalidSqlStatementName`` there:
this mix is where that showed, about one request in a few thousand.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from api_plugin.store import Store
from tests.servers import start_server
from tests.test_faults import assert_whole_runs, distinct_date, seeded

pytestmark = pytest.mark.postgres

PREFIX = "/api/experimental"
CLIENTS = 8
ROUNDS = 60  # per client; each round is one request of every kind below
KINDS = ("trigger", "runs", "run_state", "pools", "pool", "latest_runs", "paused", "set_paused")


def serve(url: str, folder: Path, workers: int) -> tuple[subprocess.Popen[bytes], int, Path]:
    """``api-plugin serve`` on ``url`` with ``folder`` as its home, answering before this
    returns (``tests/servers.py``), its output kept: the process, its port and its log."""
    log = folder / "serve.log"
    server = start_server(folder, url, workers=workers, log=log)
    return server.proc, server.port, log


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path, make_database: Callable[[str, str], str]
           ) -> Iterator[tuple[int, Store, Path]]:
    url = make_database("airflow2", "postgresql")
    store = seeded(url)
    proc, port, log = serve(url, tmp_path, 4)
    try:
        yield port, store, log
    finally:
        stop(proc)
        store.dispose()


class Mix:
    """One client: a keep-alive-free HTTP connection per request, as Airflow's clients."""

    def __init__(self, port: int, client: int) -> None:
        self.port = port
        self.client = client
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.told: set[str] = set()

    def call(self, kind: str, method: str, path: str, body: object = None) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, PREFIX + path,
                         body=None if body is None else json.dumps(body),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            status = response.status
        finally:
            conn.close()
        self.statuses[kind, status] += 1
        return status

    def run(self) -> None:
        for n in range(ROUNDS):
            serial = self.client * ROUNDS + n
            run_id, when = f"mix-{serial}", distinct_date(serial)
            if self.call("trigger", "POST", "/dags/example_etl/dag_runs",
                         {"run_id": run_id, "execution_date": when}) == 200:
                self.told.add(run_id)
            self.call("runs", "GET", "/dags/example_etl/dag_runs?limit=20")
            self.call("run_state", "GET", f"/dags/example_etl/dag_runs/{when}")
            self.call("pools", "GET", "/pools")
            self.call("pool", "GET", "/pools/default_pool")
            self.call("latest_runs", "GET", "/latest_runs")
            self.call("paused", "GET", "/dags/example_etl/paused")
            paused = "true" if n % 2 else "false"
            self.call("set_paused", "GET", f"/dags/etl_nightly/paused/{paused}")


def test_ordinary_mix_answers_every_request(server: tuple[int, Store, Path]) -> None:
    port, store, log = server
    clients = [Mix(port, i) for i in range(CLIENTS)]
    threads = [threading.Thread(target=client.run) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    statuses: Counter[tuple[str, int]] = Counter()
    for client in clients:
        statuses.update(client.statuses)
    total = sum(statuses.values())
    failed = {key: count for key, count in statuses.items() if key[1] != 200}
    where = make_url(store.engine.url)
    print(f"\nmix on {where.drivername}://{where.host}:{where.port}: {total} requests, "
          f"{sum(failed.values())} not 200: {failed}")
    errors = [line for line in log.read_text(errors="replace").splitlines()
              if "Error" in line or "error" in line]
    assert not failed, f"{failed}; server log: {errors[:6]}"
    assert total == CLIENTS * ROUNDS * len(KINDS)
    assert_whole_runs(store, set().union(*(client.told for client in clients)))
