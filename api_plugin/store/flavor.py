"""Telling which Airflow created a database, once, at start-up."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from api_plugin.store.tables import AIRFLOW1, AIRFLOW2

#: Tables whose real columns are read so the plugin touches only what exists.
KNOWN_TABLES = ("dag", "dag_run", "task_instance", "slot_pool", "serialized_dag", "dag_code",
                "ab_user", "users", "log_template", "xcom")


def inspect_schema(connection: Connection) -> dict[str, set[str]]:
    """Table name -> column names, for the tables the plugin knows."""
    inspector = inspect(connection)
    names = set(inspector.get_table_names())
    return {
        table: {column["name"] for column in inspector.get_columns(table)}
        for table in KNOWN_TABLES
        if table in names
    }


def detect_flavor(schema: dict[str, set[str]]) -> str | None:
    """``airflow2``, ``airflow1``, or None for a database with no Airflow tables.

    The 2.x schema gave dag_run a NOT NULL ``run_type`` and task_instance a ``run_id``;
    1.10 has neither. Column presence is checked rather than the alembic revision so
    every 2.x release is recognised.
    """
    dag_run = schema.get("dag_run")
    if dag_run is None:
        return None
    if "run_type" in dag_run or "run_id" in schema.get("task_instance", set()):
        return AIRFLOW2
    return AIRFLOW1
