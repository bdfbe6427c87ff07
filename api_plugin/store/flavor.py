"""Reading which tables and columns a database has, once, at start-up."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

#: Tables whose real columns are read so the plugin touches only what exists.
KNOWN_TABLES = ("dag", "dag_run", "task_instance", "slot_pool", "serialized_dag", "dag_code",
                "ab_user", "users", "log_template", "xcom", "dag_version", "dag_bundle",
                "log", "revoked_token")


def inspect_schema(connection: Connection) -> dict[str, set[str]]:
    """Table name -> column names, for the tables the plugin knows."""
    inspector = inspect(connection)
    names = set(inspector.get_table_names())
    return {
        table: {column["name"] for column in inspector.get_columns(table)}
        for table in KNOWN_TABLES
        if table in names
    }
