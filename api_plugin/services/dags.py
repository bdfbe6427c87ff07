"""DAG-level operations: pause state, source code, deletion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update

from api_plugin.errors import BadRequest, Conflict, NotFound
from api_plugin.services.common import dag_not_in_model
from api_plugin.store import Store

_RUNNING_STATES = ("running", "queued", "scheduled", "up_for_retry", "up_for_reschedule",
                   "deferred", "restarting")


def parse_paused(value: Any) -> bool:
    """``true``/``false`` (any case) or a bool; anything else is a 400."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"Paused value must be 'true' or 'false', not {value!r}")


def set_paused(store: Store, dag_id: str, paused: Any) -> dict[str, str]:
    """Set ``dag.is_paused``; an unknown DAG is a 404 (the references answer 500)."""
    flag = parse_paused(paused)
    dag = store.tables.dag
    with store.write() as conn:
        result = conn.execute(update(dag).where(dag.c.dag_id == dag_id).values(is_paused=flag))
        if result.rowcount == 0:
            raise dag_not_in_model(dag_id)
    return {"response": "ok"}


def get_paused(store: Store, dag_id: str) -> dict[str, bool]:
    dag = store.tables.dag
    with store.read() as conn:
        row = conn.execute(select(dag.c.is_paused).where(dag.c.dag_id == dag_id)).first()
    if row is None:
        raise dag_not_in_model(dag_id)
    return {"is_paused": bool(row.is_paused)}


def get_dag_code(store: Store, dag_id: str) -> str:
    """The DAG file's source from ``dag_code``, found through the DAG's fileloc."""
    dag, code = store.tables.dag, store.tables.dag_code
    with store.read() as conn:
        row = conn.execute(
            select(dag.c.dag_id, code.c.source_code)
            .select_from(dag.outerjoin(code, code.c.fileloc == dag.c.fileloc))
            .where(dag.c.dag_id == dag_id)
            .limit(1)
        ).first()
    if row is None:
        raise NotFound(f"Dag id {dag_id} not found")
    if row.source_code is None:
        raise NotFound(f"No source code stored for dag {dag_id}")
    return str(row.source_code)


def delete_dag(store: Store, dag_id: str) -> dict[str, Any]:
    """Remove every row of the DAG from the DAG tables, unless tasks are still running."""
    t = store.tables
    with store.write() as conn:
        if conn.execute(select(t.dag.c.dag_id).where(t.dag.c.dag_id == dag_id)).first() is None:
            raise NotFound(f"Dag id {dag_id} not found")
        running = conn.execute(
            select(func.count()).select_from(t.task_instance).where(
                t.task_instance.c.dag_id == dag_id,
                t.task_instance.c.state.in_(("running", "queued", "restarting")),
            )
        ).scalar_one()
        if running:
            raise Conflict(f"Dag id {dag_id} is still running")
        count = 0
        for table in (t.task_instance, t.dag_run, t.serialized_dag, t.dag):
            count += conn.execute(delete(table).where(table.c.dag_id == dag_id)).rowcount
    return {"message": f"Removed {count} record(s)", "count": count}
