"""Faults under load, with real processes: the database server stopped and started again
under a running API, and gunicorn workers killed with SIGKILL in the middle of triggers.

Afterwards the database must hold whole runs only: every run a client was told about,
each with all its task instances, and nothing half-written from a request that died.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api_plugin.cli.dagfiles import load_dags
from api_plugin.cli.main import example_dags_dir
from api_plugin.store import Store
from conftest import seed_airflow_rows
from tests.servers import WSGI_TARGET, Server, start_server

PREFIX = "/api/experimental"
TASKS_PER_RUN = 4  # example_etl: extract, transform, load, report


@dataclass
class Outcome:
    """What one client request saw: status (0 when the connection died), body, and the
    test's phase when it was sent and when its answer came (no clock involved)."""

    sent_in: str
    status: int
    body: object
    answered_in: str


@dataclass
class Load:
    """Client threads that trigger fresh runs and read the run list until stopped."""

    port: int
    clients: int
    phase: str = "start"
    outcomes: list[Outcome] = field(default_factory=list)
    told: set[str] = field(default_factory=set)  # run_ids answered with 200
    _stop: threading.Event = field(default_factory=threading.Event)
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, method: str, path: str, body: dict[str, str] | None = None) -> Outcome:
        sent_in = self.phase
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, PREFIX + path, body=json.dumps(body) if body else None,
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            payload = response.read()
            assert response.getheader("Content-Type") == "application/json", payload[:200]
            outcome = Outcome(sent_in, response.status, json.loads(payload), self.phase)
        except (OSError, http.client.HTTPException):
            outcome = Outcome(sent_in, 0, None, self.phase)
        finally:
            conn.close()
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def _client(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                n = next(self._ids)
            run_id = f"load-{n}"
            outcome = self.call("POST", "/dags/example_etl/dag_runs",
                                {"run_id": run_id, "execution_date": distinct_date(n)})
            if outcome.status == 200:
                with self._lock:
                    self.told.add(run_id)
            self.call("GET", "/dags/example_etl/dag_runs?limit=5")

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def within(self, phase: str) -> list[Outcome]:
        """The requests sent and answered while the test was in ``phase``."""
        with self._lock:
            return [o for o in self.outcomes if o.sent_in == phase == o.answered_in]


def distinct_date(n: int) -> str:
    """The n-th of a series of execution dates one minute apart (no date collisions)."""
    return (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=n)).isoformat()


def start_gunicorn(url: str, folder: Path, workers: int) -> Server:
    """gunicorn itself (the documented target) over ``url``."""
    return start_server(folder, url, workers=workers, gunicorn=WSGI_TARGET)


def seeded(url: str) -> Store:
    store = Store.open(url)
    seed_airflow_rows(store)
    load_dags(store, example_dags_dir())
    return store


def assert_whole_runs(store: Store, told: set[str]) -> int:
    """Every run a client got a 200 for exists; every run has all its task instances."""
    t = store.tables
    with store.read() as conn:
        runs = set(conn.execute(select(t.dag_run.c.run_id)
                                .where(t.dag_run.c.dag_id == "example_etl")).scalars())
        per_run = dict(conn.execute(
            select(t.task_instance.c.run_id, func.count())
            .where(t.task_instance.c.dag_id == "example_etl")
            .group_by(t.task_instance.c.run_id)).all())
    assert told <= runs, f"runs answered 200 but missing: {sorted(told - runs)[:5]}"
    half = {run: per_run.get(run, 0) for run in runs if per_run.get(run, 0) != TASKS_PER_RUN}
    assert not half, f"runs without all their task instances: {half}"
    return len(runs)


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                pids.append(int(entry.name))
    return pids


def test_sigkill_mid_trigger_leaves_whole_runs_or_none(
        backend: str, tmp_path: Path, make_database: Callable[[str, str], str]) -> None:
    url = make_database("airflow2", backend)
    store = seeded(url)
    server = start_gunicorn(url, tmp_path, 2)
    kills = 0
    try:
        with Load(server.port, clients=8) as load:
            time.sleep(0.5)
            # At least 15 kills (about three seconds), and on until one has cut a request
            # off: a kill that lands between two requests proves nothing, and on a fast
            # or busy machine many do.
            for _ in range(100):
                pids = worker_pids(server.proc.pid)
                if pids:
                    os.kill(random.choice(pids), signal.SIGKILL)
                    kills += 1
                time.sleep(random.uniform(0.1, 0.3))
                if kills >= 15 and any(o.status == 0 for o in list(load.outcomes)):
                    break
            time.sleep(1.5)  # the master has replaced the workers; load goes on
        after = load.call("POST", "/dags/example_etl/dag_runs",
                          {"run_id": "after-kills", "execution_date": "2024-06-01T00:00:00"})
        assert after.status == 200, after
        load.told.add("after-kills")
    finally:
        server.stop()
        store.dispose()
    statuses = Counter(o.status for o in load.outcomes)
    print(f"\nSIGKILL ({backend}): {kills} workers killed, {sum(statuses.values())} "
          f"requests, statuses {dict(statuses)}")
    assert kills >= 15
    assert statuses[0] >= 1, "no request was cut off by a kill: the test proved nothing"
    assert set(statuses) <= {0, 200}, statuses
    runs = assert_whole_runs(store, load.told)
    assert runs >= len(load.told) >= 50
    store.dispose()


@pytest.mark.postgres
def test_database_outage_answers_503_then_recovers(
        tmp_path: Path, make_database: Callable[[str, str], str]) -> None:
    ctl = os.environ.get("API_PLUGIN_TEST_PG_CTL")
    if not (ctl and os.environ.get("API_PLUGIN_TEST_PG_URL")):
        pytest.fail("API_PLUGIN_TEST_PG_URL/API_PLUGIN_TEST_PG_CTL unset: see .ci/postgres.sh")
    url = make_database("airflow2", "postgresql")
    store = seeded(url)
    server = start_gunicorn(url, tmp_path, 2)
    try:
        with Load(server.port, clients=4) as load:
            time.sleep(1.0)
            subprocess.run([ctl, "stop"], check=True, timeout=60)
            load.phase = "down"
            try:
                time.sleep(3.0)
            finally:
                load.phase = "restarting"
                subprocess.run([ctl, "start"], check=True, timeout=60)
            recovered = None  # polls until the first 200, each at least 0.05 s apart
            for poll in range(400):
                if load.call("GET", "/dags/example_etl/paused").status == 200:
                    recovered = poll
                    break
                time.sleep(0.05)
            time.sleep(0.5)
            load.phase = "steady"
            time.sleep(1.5)
    finally:
        subprocess.run([ctl, "start"], timeout=60, capture_output=True)  # already up: no-op
        server.stop()
        store.dispose()  # its pooled connections died with the server
    during = load.within("down")
    steady = load.within("steady")
    statuses = Counter(o.status for o in load.outcomes)
    print(f"\noutage: {sum(statuses.values())} requests, statuses {dict(statuses)}, "
          f"{len(during)} sent and answered while down, first 200 at poll {recovered} "
          f"after the restart")
    assert set(statuses) <= {200, 503}, statuses
    assert during and {o.status for o in during} == {503}
    assert all(o.body == {"error": "The metadata database is unavailable; try again shortly"}
               for o in during)
    # Answered while the server was still down, several per client: a 503 comes at once,
    # it does not hang until some timeout (which would outlast the outage).
    assert len(during) >= 2 * load.clients, len(during)
    assert recovered is not None, "the API did not come back by itself"
    assert steady and {o.status for o in steady} == {200}
    assert_whole_runs(store, load.told)
    store.dispose()
