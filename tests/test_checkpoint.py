"""WAL checkpoints happen beside the requests, not inside one of them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from api_plugin.cli.dagfiles import load_dags
from api_plugin.cli.main import example_dags_dir
from api_plugin.services.trigger import parse_trigger, trigger_dag_run
from api_plugin.store import AIRFLOW2, Store


def _wal_after_triggers(url: str, with_thread: bool) -> int:
    """Size of the WAL after 150 triggers, SQLite's own automatic checkpoint switched off
    so that only the plugin's thread can keep the log short."""
    store = Store.open(url)
    try:
        load_dags(store, example_dags_dir())
        event.listen(store.engine, "connect",
                     lambda conn, _rec: conn.execute("PRAGMA wal_autocheckpoint = 0"))
        store.engine.dispose()
        if not with_thread:
            store._checkpointer = None
        base = datetime(2031, 1, 1, tzinfo=UTC)
        checkpointer = store._checkpointer
        for i in range(150):
            done = checkpointer.completed if checkpointer is not None else 0
            trigger_dag_run(store, parse_trigger(
                "example_etl", run_id=f"wal_{with_thread}_{i}",
                execution_date=(base + timedelta(minutes=i)).isoformat()))
            # Between requests, as a real client leaves time: wait for the thread's
            # checkpoint after this commit (bounded by attempts, however busy the machine).
            for _attempt in range(2000):
                if checkpointer is None or checkpointer.completed > done:
                    break
                time.sleep(0.005)
        assert store.engine.url.database
        return os.path.getsize(store.engine.url.database + "-wal")
    finally:
        store.dispose()


def test_background_checkpoints_keep_the_log_short(
        make_database: Callable[[str, str], str]) -> None:
    grown = _wal_after_triggers(make_database(AIRFLOW2, "sqlite"), with_thread=False)
    kept = _wal_after_triggers(make_database(AIRFLOW2, "sqlite"), with_thread=True)
    # Without checkpoints the log only grows (every trigger appends its pages); the
    # thread's checkpoints let writers start the log over from its beginning.
    assert grown > 150 * 4096
    assert kept < grown / 3, (kept, grown)
