"""Concurrent triggers through several gunicorn workers: every distinct run exactly once,
every collision a 409, never a 5xx, never a run without its task instances."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from api_plugin.cli.dagfiles import load_dags
from api_plugin.cli.main import example_dags_dir
from api_plugin.store import Store
from conftest import seed_airflow_rows
from tests.servers import WSGI_TARGET, Server, request

DISTINCT_RUNS = 60
COPIES = 3  # each run is asked for this many times at once
CLIENTS = 16


@pytest.fixture
def server(backend: str, flavor: str, make_database: Callable[[str, str], str],
           spawn_server: Callable[..., Server]) -> Iterator[tuple[str, Store]]:
    """gunicorn with 4 workers over a seeded database: (the API's URL, the store)."""
    url = make_database(flavor, backend)
    store = Store.open(url)
    seed_airflow_rows(store)
    load_dags(store, example_dags_dir())
    try:
        yield spawn_server(url, workers=4, gunicorn=WSGI_TARGET).api, store
    finally:
        store.dispose()


def test_concurrent_triggers_never_duplicate_or_lose_a_run(server: tuple[str, Store]) -> None:
    base, store = server
    jobs = []
    for i in range(DISTINCT_RUNS):
        when = f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00"
        # the same run twice, and another run_id at the same date
        jobs += [{"run_id": f"r{i}", "execution_date": when},
                 {"run_id": f"r{i}", "execution_date": when},
                 {"run_id": f"other{i}", "execution_date": when}]

    def send(body: dict[str, str]) -> int:
        status, payload = request(base + "/dags/example_etl/dag_runs", body)
        assert isinstance(payload, dict) and (("run_id" in payload) or ("error" in payload))
        return status

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = Counter(pool.map(send, jobs))
    assert statuses == {200: DISTINCT_RUNS, 409: DISTINCT_RUNS * (COPIES - 1)}
    t = store.tables
    with store.read() as conn:
        runs = conn.execute(select(func.count()).select_from(t.dag_run)).scalar_one()
        per_run = Counter(row[0] for row in conn.execute(select(
            t.task_instance.c.run_id if "run_id" in t.task_instance.c
            else t.task_instance.c.execution_date)))
    assert runs == DISTINCT_RUNS
    assert len(per_run) == DISTINCT_RUNS and set(per_run.values()) == {4}
