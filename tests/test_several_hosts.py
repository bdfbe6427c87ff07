"""Two ``api-plugin serve`` processes on one PostgreSQL, as two hosts would run them.

Each has its own home folder (its own login throttle, its own caches); the database is
the only thing they share. Triggers colliding across both give exactly one run per
date, each run whole, and a restart of the database server under load heals both
without either being restarted.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from api_plugin.store import Store
from tests.test_faults import assert_whole_runs, distinct_date, seeded, worker_pids
from tests.test_pooled_mix import serve, stop

pytestmark = pytest.mark.postgres

PREFIX = "/api/experimental"
DATES = 40
ASKS_PER_DATE = 6  # three on each host: the same run_id twice, and another run_id
TASKS_PER_RUN = 4


@dataclass
class Host:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def call(self, method: str, path: str, body: object = None) -> tuple[int, object]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, PREFIX + path,
                         body=None if body is None else json.dumps(body),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            conn.close()


@pytest.fixture
def two_hosts(tmp_path: Path, make_database: Callable[[str, str], str]
              ) -> Iterator[tuple[Host, Host, Store]]:
    url = make_database("airflow2", "postgresql")
    store = seeded(url)
    hosts: list[Host] = []
    try:
        for name in ("host_a", "host_b"):
            home = tmp_path / name
            home.mkdir()
            hosts.append(Host(*serve(url, home, 2)))
        yield hosts[0], hosts[1], store
    finally:
        for host in hosts:
            stop(host.proc)
        store.dispose()


def test_colliding_triggers_across_hosts_make_one_whole_run_per_date(
        two_hosts: tuple[Host, Host, Store]) -> None:
    a, b, store = two_hosts
    jobs = []
    for n in range(DATES):
        when = distinct_date(n)
        asks = [{"run_id": f"r{n}", "execution_date": when},
                {"run_id": f"r{n}", "execution_date": when},
                {"run_id": f"other{n}", "execution_date": when}]
        jobs += [(host, body) for host in (a, b) for body in asks]
    random.Random(15).shuffle(jobs)

    def send(job: tuple[Host, dict[str, str]]) -> tuple[str, int]:
        host, body = job
        status, _payload = host.call("POST", "/dags/example_etl/dag_runs", body)
        return body["execution_date"], status

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(send, jobs))
    per_date = Counter(when for when, status in answers if status == 200)
    statuses = Counter(status for _when, status in answers)
    assert statuses == {200: DATES, 409: DATES * (ASKS_PER_DATE - 1)}, statuses
    assert set(per_date.values()) == {1} and len(per_date) == DATES
    t = store.tables
    with store.read() as conn:
        runs = conn.execute(select(func.count()).select_from(t.dag_run)
                            .where(t.dag_run.c.dag_id == "example_etl")).scalar_one()
    assert runs == DATES
    assert_whole_runs(store, set())


@dataclass
class TwoHostLoad:
    """Client threads spread over both hosts: fresh triggers and run lists."""

    hosts: tuple[Host, Host]
    clients: int
    phase: str = "start"
    outcomes: list[tuple[str, int, str]] = field(default_factory=list)  # sent, status, answered
    told: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ids: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, host: Host) -> None:
        while not self._stop.is_set():
            with self._lock:
                n = next(self._ids)
            sent = self.phase
            status, _ = host.call("POST", "/dags/example_etl/dag_runs",
                                  {"run_id": f"load-{n}", "execution_date": distinct_date(n)})
            with self._lock:
                self.outcomes.append((sent, status, self.phase))
                if status == 200:
                    self.told.add(f"load-{n}")
            sent = self.phase
            status, _ = host.call("GET", "/dags/example_etl/dag_runs?limit=5")
            with self._lock:
                self.outcomes.append((sent, status, self.phase))

    def __enter__(self) -> TwoHostLoad:
        self._threads = [threading.Thread(target=self._client, args=(self.hosts[i % 2],))
                         for i in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)


def all_workers(host: Host, count: int = 2) -> set[int]:
    """The pids of ``host``'s workers once all ``count`` have started and it answers
    (``serve`` returns as soon as the master listens)."""
    for _ in range(200):  # polls, each at least 0.05 s apart
        pids = set(worker_pids(host.proc.pid))
        if len(pids) == count and host.call("GET", "/test")[0] == 200:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"{host.port} has not started its {count} workers: {pids}")


def first_200(host: Host, polls: int = 400) -> int | None:
    """The poll at which ``host`` first answers 200, each poll at least 0.05 s apart."""
    for poll in range(polls):
        if host.call("GET", "/dags/example_etl/paused")[0] == 200:
            return poll
        time.sleep(0.05)
    return None


def test_database_restart_under_load_heals_both_hosts(
        two_hosts: tuple[Host, Host, Store]) -> None:
    ctl = os.environ.get("API_PLUGIN_TEST_PG_CTL")
    if not ctl:
        pytest.fail("API_PLUGIN_TEST_PG_CTL unset: see .ci/postgres.sh")
    a, b, store = two_hosts
    masters = {a.proc.pid, b.proc.pid}
    workers = all_workers(a) | all_workers(b)
    try:
        with TwoHostLoad((a, b), clients=6) as load:
            time.sleep(1.0)
            subprocess.run([ctl, "stop"], check=True, timeout=60)
            load.phase = "down"
            try:
                time.sleep(3.0)
            finally:
                load.phase = "restarting"
                subprocess.run([ctl, "start"], check=True, timeout=60)
            recovered = {"a": first_200(a), "b": first_200(b)}
            load.phase = "steady"
            time.sleep(1.5)
    finally:
        subprocess.run([ctl, "start"], timeout=60, capture_output=True)  # up: a no-op
    statuses = Counter(status for _sent, status, _answered in load.outcomes)
    steady = [status for sent, status, answered in load.outcomes
              if sent == answered == "steady"]
    down = [status for sent, status, answered in load.outcomes if sent == answered == "down"]
    print(f"\nrestart under load on two hosts: {sum(statuses.values())} requests, "
          f"statuses {dict(statuses)}, {len(down)} answered while down, first 200 at polls "
          f"{recovered} after the restart")
    logs = {host.port: host.log.read_text(errors="replace").splitlines()[-15:] for host in (a, b)}
    assert set(statuses) <= {200, 503}, (statuses, logs)
    assert down and set(down) == {503}
    assert None not in recovered.values(), f"a host did not come back by itself: {recovered}"
    assert steady and set(steady) == {200}
    for host in (a, b):
        assert host.proc.poll() is None
        assert host.call("GET", "/pools")[0] == 200
    assert {a.proc.pid, b.proc.pid} == masters
    assert {pid for host in (a, b) for pid in worker_pids(host.proc.pid)} == workers, \
        "a worker was replaced: the heal must not need a restart"
    runs = assert_whole_runs(store, load.told)
    assert runs >= len(load.told) > 0
    with store.read() as conn:  # the store's own pool heals too
        assert conn.execute(select(func.count()).select_from(store.tables.dag_run)
                            ).scalar_one() == runs


def test_a_worker_replaced_while_the_database_is_down_boots_and_heals(
        tmp_path: Path, make_database: Callable[[str, str], str]) -> None:
    """A worker that dies during an outage is replaced by one that cannot reach the
    database as it boots: it must start anyway (gunicorn stops the whole server when a
    worker fails to boot), answer 503, and serve once the database is back."""
    ctl = os.environ.get("API_PLUGIN_TEST_PG_CTL")
    if not ctl:
        pytest.fail("API_PLUGIN_TEST_PG_CTL unset: see .ci/postgres.sh")
    url = make_database("airflow2", "postgresql")
    seeded(url).dispose()
    host = Host(*serve(url, tmp_path, 2))
    try:
        before = all_workers(host)
        subprocess.run([ctl, "stop"], check=True, timeout=60)
        try:
            os.kill(sorted(before)[0], signal.SIGKILL)
            for _ in range(200):  # polls, each at least 0.05 s apart
                now = set(worker_pids(host.proc.pid))
                if len(now) == len(before) and now != before:
                    break
                time.sleep(0.05)
            answers = Counter(host.call("GET", "/pools")[0] for _ in range(10))
            assert host.proc.poll() is None, host.log.read_text(errors="replace")[-2000:]
        finally:
            subprocess.run([ctl, "start"], check=True, timeout=60)
        assert now != before and len(now) == len(before), (before, now)
        assert answers == {503: 10}, answers
        assert first_200(host) is not None, "the new worker did not come back by itself"
        steady = Counter(host.call("GET", "/pools")[0] for _ in range(10))
        assert steady == {200: 10}, steady
        assert set(worker_pids(host.proc.pid)) == now
    finally:
        subprocess.run([ctl, "start"], timeout=60, capture_output=True)  # up: a no-op
        stop(host.proc)
