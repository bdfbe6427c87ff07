"""DAG-level operations: pause state, source code, deletion."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, bindparam, delete, func, select, update
from sqlalchemy.sql import Select

from api_plugin.errors import BadRequest, Conflict, NotFound
from api_plugin.services.common import dag_not_in_model
from api_plugin.store import Store
from api_plugin.store.tables import Tables


def parse_paused(value: Any) -> bool:
    """Exactly ``true`` or ``false`` (SPEC 7.9), or a bool; anything else is a 400."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
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
    row = store.prepared(_paused_query).first(dag_id=dag_id)
    if row is None:
        raise dag_not_in_model(dag_id)
    return {"is_paused": bool(row.is_paused)}


def _paused_query(t: Tables) -> Select[Any]:
    return select(t.dag.c.is_paused).where(t.dag.c.dag_id == bindparam("dag_id")).limit(1)


def get_dag_code(store: Store, dag_id: str) -> str:
    """The DAG file's source from ``dag_code`` (3.x: its newest version's)."""
    row = store.prepared(_dag_code_query).first(dag_id=dag_id)
    if row is None:
        raise dag_not_in_model(dag_id)
    if row.source_code is None:
        raise NotFound(f"No source code stored for dag {dag_id}")
    return str(row.source_code)


def _dag_code_query(t: Tables) -> Select[Any]:
    dag, code = t.dag, t.dag_code
    return (select(dag.c.dag_id, code.c.source_code)
            .select_from(dag.outerjoin(code, t.source_of(dag)))
            .where(dag.c.dag_id == bindparam("dag_id"))
            .limit(1))


def delete_dag(store: Store, dag_id: str) -> dict[str, Any]:
    """Remove the DAG's rows from every table that has a ``dag_id``, as Airflow does.

    The tables are found by reflection at delete time (a rare operation), so rows in
    tables the plugin never reads (tags, XComs, rendered fields, warnings...) go too.
    Like Airflow, the count leaves out ``serialized_dag`` (removed first) and ``log``
    (kept for the audit trail); children are deleted before parents so that no row is
    removed silently by a foreign key cascade.
    """
    t = store.tables
    with store.write() as conn:
        if conn.execute(select(t.dag.c.dag_id).where(t.dag.c.dag_id == dag_id)).first() is None:
            raise NotFound(f"Dag id {dag_id} not found")
        running = conn.execute(
            select(func.count()).select_from(t.task_instance).where(
                t.task_instance.c.dag_id == dag_id, t.task_instance.c.state == "running")
        ).scalar_one()
        if running:
            raise Conflict(f"Dag id {dag_id} has task instances still running")
        conn.execute(delete(t.serialized_dag).where(t.serialized_dag.c.dag_id == dag_id))
        metadata = MetaData()
        metadata.reflect(conn)
        count = 0
        for table in reversed(metadata.sorted_tables):
            if "dag_id" in table.c and table.name not in _NOT_COUNTED:
                count += conn.execute(delete(table).where(table.c.dag_id == dag_id)).rowcount
    return {"message": f"Removed {count} record(s)", "count": count}


_NOT_COUNTED = frozenset({"log", "serialized_dag"})
