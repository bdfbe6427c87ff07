"""The ceilings: the cheapest WSGI apps that answer like the plugin's endpoints do.

``app`` answers ``/test``'s body and nothing else. The others do on an Airflow 2 database
only what their endpoint's answer needs, and nothing a real server needs besides: one
psycopg 3 connection per process (the sync worker serves one request at a time), opened
at the first request, in autocommit, statements prepared on the server from their first
execution (``CEILING_PREPARE_THRESHOLD``: ``none`` prepares nothing, as through a
transaction pooler that cannot keep prepared statements), one reused cursor. No
routing, no auth, no pool of connections, no checks, no error handling. What they
answer per second is the most any implementation can answer on this machine and this
server (directly, or through the pooler), which is what the plugin's PostgreSQL figures
are measured against in ``pg.py ceiling``. Their database is ``CEILING_PG_URL`` (a
libpq URL).

- ``pool_app``: ``/<pool>``, one read, the row as JSON.
- ``runs_app``: ``/<dag_id>``, a DAG's newest 100 runs, as the run list's items.
- ``bytes_app``: ``/<n>``, a JSON body of n bytes made once, no database at all: what
  sending an answer of that size costs here, whoever makes it (``pg.py scale`` measures
  latest_runs' growth against it).
- ``trigger_app``: ``POST /<dag_id>`` with the trigger's JSON body: one read of the DAG,
  then one statement that inserts the run and its task instances (``WITH run AS
  (INSERT ...) INSERT ...``), its own transaction. The DAG's task ids are read once, at
  the first request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

BODY = b'{"status":"OK"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
POOL_SQL = "SELECT id, pool, slots, description FROM slot_pool WHERE pool = %s LIMIT 1"

RUNS_SQL = ("SELECT id, run_id, state, dag_id, execution_date, start_date FROM dag_run "
            "WHERE dag_id = %s ORDER BY execution_date DESC LIMIT 100")
DAG_SQL = "SELECT is_paused FROM dag WHERE dag_id = %s"
TASKS_SQL = "SELECT DISTINCT task_id FROM task_instance WHERE dag_id = %s"
TRIGGER_SQL = ("WITH run AS (INSERT INTO dag_run (dag_id, run_id, execution_date, state, "
               "run_type, external_trigger, queued_at, clear_number) "
               "VALUES (%(dag)s, %(run)s, %(when)s, 'queued', 'manual', true, now(), 0) "
               "RETURNING 1) "
               "INSERT INTO task_instance (dag_id, task_id, run_id, map_index, pool, "
               "pool_slots, priority_weight, queue, try_number, max_tries) "
               "SELECT %(dag)s, task, %(run)s, -1, 'default_pool', 1, 1, 'default', 0, 0 "
               "FROM unnest(CAST(%(tasks)s AS text[])) AS task, run")

_cursor: Any = None
_tasks: dict[str, list[str]] = {}


def _db() -> Any:
    global _cursor
    if _cursor is None:
        import psycopg

        threshold = os.environ.get("CEILING_PREPARE_THRESHOLD", "0")
        _cursor = psycopg.connect(os.environ["CEILING_PG_URL"], autocommit=True,
                                  prepare_threshold=None if threshold == "none"
                                  else int(threshold)).cursor()
    return _cursor


def _json(start_response: Callable[..., Any], body: bytes,
          status: str = "200 OK") -> Iterable[bytes]:
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]


def pool_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    cursor = _db()
    cursor.execute(POOL_SQL, (environ["PATH_INFO"].rsplit("/", 1)[-1],))
    row = cursor.fetchone()
    if row is None:
        return _json(start_response, b'{"error":"no such pool"}', "404 NOT FOUND")
    return _json(start_response, json.dumps({"id": row[0], "pool": row[1], "slots": row[2],
                                             "description": row[3]}).encode())


def runs_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    cursor = _db()
    dag_id = environ["PATH_INFO"].rsplit("/", 1)[-1]
    cursor.execute(RUNS_SQL, (dag_id,))
    items = []
    for run_id_, run_id, state, dag, when, started in cursor.fetchall():
        stamp = when.astimezone(UTC).isoformat()
        items.append({"id": run_id_, "run_id": run_id, "state": state, "dag_id": dag,
                      "execution_date": stamp,
                      "start_date": started.astimezone(UTC).isoformat() if started else "",
                      "dag_run_url": f"/dags/{dag}/graph?execution_date={stamp}"})
    return _json(start_response, json.dumps(items).encode())


_bodies: dict[int, bytes] = {}


def bytes_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    size = max(2, min(int(environ["PATH_INFO"].rsplit("/", 1)[-1] or 0), 1 << 26))
    if size not in _bodies:
        if len(_bodies) >= 16:
            _bodies.clear()
        _bodies[size] = b"[" + b" " * (size - 2) + b"]"
    return _json(start_response, _bodies[size])


def trigger_app(environ: dict[str, Any],
                start_response: Callable[..., Any]) -> Iterable[bytes]:
    cursor = _db()
    dag_id = environ["PATH_INFO"].rsplit("/", 1)[-1]
    size = int(environ.get("CONTENT_LENGTH") or 0)
    asked = json.loads(environ["wsgi.input"].read(size) or b"{}")
    when = datetime.fromisoformat(asked["execution_date"])
    run_id = asked.get("run_id") or f"manual__{when.isoformat()}"
    if dag_id not in _tasks:
        cursor.execute(TASKS_SQL, (dag_id,))
        _tasks[dag_id] = [task for (task,) in cursor.fetchall()]
    cursor.execute(DAG_SQL, (dag_id,))
    if cursor.fetchone() is None:
        return _json(start_response, b'{"error":"no such DAG"}', "404 NOT FOUND")
    cursor.execute(TRIGGER_SQL, {"dag": dag_id, "run": run_id, "when": when,
                                 "tasks": _tasks[dag_id]})
    return _json(start_response, json.dumps({
        "message": f"Created <DagRun {dag_id} @ {when.isoformat()}: {run_id}>",
        "execution_date": when.isoformat(), "run_id": run_id}).encode())


ROUTES: dict[str, Callable[..., Iterable[bytes]]] = {
    "pool": pool_app, "runs": runs_app, "trigger": trigger_app, "bytes": bytes_app}


def bare(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """All of them in one server: ``/pool/<pool>``, ``/runs/<dag_id>``,
    ``/trigger/<dag_id>``, ``/bytes/<n>``; anything else is ``app``."""
    head, _, rest = environ["PATH_INFO"].lstrip("/").partition("/")
    environ["PATH_INFO"] = "/" + rest
    route: Callable[..., Iterable[bytes]] = ROUTES.get(head, app)
    return route(environ, start_response)
