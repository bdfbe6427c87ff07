"""The Airflow side of the benchmark: one database that Airflow 2.10.5 itself migrated and
filled, served in turn by Airflow's webserver and by the plugin, under the same gunicorn
settings (2 sync workers, loopback), driven by the same wrk runs.

The Airflow home is the compatibility suite's (``tests/compat``): its DAG files, its
environment, its webserver start-up; the benchmark uses ``etl_nightly`` from there with
99 scheduled runs plus one triggered run that has task instances.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from api_plugin.services import trigger_dag
from api_plugin.store import Store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DAG_ID = "etl_nightly"
TASK_ID = "extract"
RUN_DATE = "2025-01-01T00:00:00+00:00"


def airflow_database(venv: Path, work: Path, runs: int = 100) -> tuple[Any, str]:
    """(AirflowHome, its database's URL) for ``etl_nightly`` with ``runs`` runs, made by
    Airflow."""
    os.environ["AIRFLOW_VENV"] = str(venv)
    from tests.compat import airflow_env

    airflow_env.AIRFLOWS["airflow2"] = (venv, airflow_env.AIRFLOWS["airflow2"][1])
    home = airflow_env.make_home(work / "airflow_home", "airflow2")
    store = Store.open(home.database)
    start = datetime(2024, 6, 1, tzinfo=UTC)
    with store.write() as conn:
        conn.execute(insert(store.tables.dag_run), [
            {"dag_id": DAG_ID, "run_id": f"scheduled__{n}", "execution_date":
             start + timedelta(hours=n), "state": "success", "run_type": "scheduled",
             "external_trigger": False, "start_date": start + timedelta(hours=n),
             "clear_number": 0}
            for n in range(runs - 1)])
    trigger_dag(store, DAG_ID, execution_date=RUN_DATE)
    store.dispose()
    return home, home.database


def measure_both(venv: Path, work: Path, measure: Callable[[str, str], dict[str, Any]],
                 gunicorn: Callable[..., Any], free_port: Callable[[], int],
                 env: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plugin results, Airflow results) on one Airflow-made database.

    ``measure(base_url, run_prefix)`` runs wrk over every endpoint; each side's triggers
    use their own run_id prefix so that neither side's runs collide with the other's.
    """
    from tests.compat import airflow_env

    home, database = airflow_database(venv, work)
    port = free_port()
    proc = gunicorn("api_plugin.wsgi:application", port,
                    {**env, "API_PLUGIN__DATABASE__SQL_ALCHEMY_CONN": database},
                    "/api/experimental/test")
    try:
        plugin = measure(f"http://127.0.0.1:{port}", "plugin")
    finally:
        proc.terminate()
        proc.wait()
    port = free_port()
    airflow = airflow_env.start_webserver(home, database, port)
    try:
        theirs = measure(f"http://127.0.0.1:{port}", "airflow")
    finally:
        airflow_env.stop(airflow)
    return plugin, theirs
