"""The Airflow 3.x tables the plugin reads or writes (3.3.2's schema, see ``tables.py``).

Airflow 3 renamed the run's date to ``logical_date`` (nullable: a run may have none),
keys task instances by a UUIDv7 ``id``, keeps one ``serialized_dag`` and one ``dag_code``
row per DAG version (``dag_version``), stores ``conf`` and XCom values as JSON, and
replaced ``dag.is_active`` with ``is_stale``. A database upgraded from 2.x has the same
columns in another order, so columns are only ever named, never taken by position.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.types import TypeEngine

from api_plugin.store.tables import ColumnFilter, Tables, fab_users_table, table_with
from api_plugin.store.types import UtcDateTime

#: Airflow declares its JSON columns as JSONB on PostgreSQL.
Json: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
#: UUIDv7 ids: 32 hex digits in text, PostgreSQL's own ``uuid`` type there (read back
#: in its dashed form, as Airflow reads them).
UuidId: TypeEngine[Any] = String(32).with_variant(UUID(as_uuid=False), "postgresql")


def revoked_token_table(md: MetaData, keep: ColumnFilter = lambda _t, _c: True) -> Table:
    """The ``jti`` of every token ``/api/v2/auth/logout`` revoked, until it expires."""
    return table_with(md, "revoked_token", keep,
                      Column("jti", String(32), primary_key=True),
                      Column("exp", UtcDateTime, nullable=False),
                      Index("idx_revoked_token_exp", "exp"))


def build_airflow3_tables(present: Mapping[str, Collection[str]] | None = None) -> Tables:
    """The 3.x tables; with ``present`` (table -> column names) only what exists."""

    def keep(table: str, column: str) -> bool:
        return present is None or column in present.get(table, ())

    md = MetaData()
    # Created only in an empty database of the plugin's own (tests, ``db init``): the
    # rows Airflow's other tables point to.
    table_with(md, "dag_bundle", keep,
               Column("name", String(250), primary_key=True),
               Column("active", Boolean),
               Column("version", String(200)),
               Column("last_refreshed", UtcDateTime))
    table_with(
        md, "log_template", keep,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("filename", Text, nullable=False),
        Column("elasticsearch_id", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False))
    dag = table_with(
        md, "dag", keep,
        Column("dag_id", String(250), primary_key=True),
        Column("is_paused", Boolean, nullable=False, default=True),
        Column("is_stale", Boolean, nullable=False, default=False),
        Column("exceeds_max_non_backfill", Boolean, nullable=False, default=False),
        Column("last_parsed_time", UtcDateTime),
        Column("last_expired", UtcDateTime),
        Column("fileloc", String(2000)),
        Column("relative_fileloc", String(2000)),
        Column("bundle_name", String(250), nullable=False),
        Column("bundle_version", String(200)),
        Column("owners", String(2000)),
        Column("dag_display_name", String(2000)),
        Column("description", Text),
        Column("timetable_type", String(255), nullable=False),
        Column("timetable_summary", Text),
        Column("timetable_description", String(1000)),
        Column("timetable_partitioned", Boolean, nullable=False, default=False),
        Column("timetable_periodic", Boolean, nullable=False, default=False),
        Column("partition_mapper_info", Json, nullable=False, default={}),
        Column("max_active_tasks", Integer, nullable=False, default=16),
        Column("max_active_runs", Integer, default=16),
        Column("max_consecutive_failed_dag_runs", Integer, nullable=False, default=0),
        Column("has_task_concurrency_limits", Boolean, nullable=False, default=False),
        Column("has_import_errors", Boolean, default=False),
        Column("fail_fast", Boolean, nullable=False, default=False),
        Column("allowed_run_types", Json),
        Column("next_dagrun", UtcDateTime),
        Column("next_dagrun_data_interval_start", UtcDateTime),
        Column("next_dagrun_data_interval_end", UtcDateTime),
        Column("next_dagrun_create_after", UtcDateTime),
        ForeignKeyConstraint(["bundle_name"], ["dag_bundle.name"], name="dag_bundle_name_fkey"),
    )
    dag_version = table_with(
        md, "dag_version", keep,
        Column("id", UuidId, primary_key=True),
        Column("version_number", Integer, nullable=False),
        Column("dag_id", String(250), nullable=False),
        Column("bundle_name", String(250)),
        Column("bundle_version", String(250)),
        Column("created_at", UtcDateTime, nullable=False),
        Column("last_updated", UtcDateTime, nullable=False),
        UniqueConstraint("dag_id", "version_number",
                         name="dag_id_v_name_v_number_unique_constraint"),
        ForeignKeyConstraint(["dag_id"], ["dag.dag_id"], name="dag_version_dag_id_fkey",
                             ondelete="CASCADE"),
    )
    dag_run = table_with(
        md, "dag_run", keep,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("dag_id", String(250), nullable=False),
        Column("queued_at", UtcDateTime),
        Column("logical_date", UtcDateTime),
        Column("start_date", UtcDateTime),
        Column("end_date", UtcDateTime),
        Column("state", String(50)),
        Column("run_id", String(250), nullable=False),
        Column("creating_job_id", Integer),
        Column("run_type", String(50), nullable=False),
        Column("triggered_by", String(50)),
        Column("triggering_user_name", String(512)),
        Column("conf", Json),
        Column("data_interval_start", UtcDateTime),
        Column("data_interval_end", UtcDateTime),
        Column("run_after", UtcDateTime, nullable=False),
        Column("last_scheduling_decision", UtcDateTime),
        Column("log_template_id", Integer),
        Column("created_at", UtcDateTime),
        Column("updated_at", UtcDateTime),
        Column("clear_number", Integer, nullable=False, default=0),
        Column("bundle_version", String(250)),
        Column("span_status", String(250), nullable=False, default="not_started"),
        Column("created_dag_version_id", UuidId),
        UniqueConstraint("dag_id", "run_id", name="dag_run_dag_id_run_id_key"),
        UniqueConstraint("dag_id", "logical_date", name="dag_run_dag_id_logical_date_key"),
        ForeignKeyConstraint(["log_template_id"], ["log_template.id"],
                             name="task_instance_log_template_id_fkey"),
        ForeignKeyConstraint(["created_dag_version_id"], ["dag_version.id"],
                             name="created_dag_version_id_fkey", ondelete="SET NULL"),
        Index("idx_dag_run_dag_id", "dag_id"),
        Index("idx_dag_run_run_after", "run_after"),
        Index("dag_id_state", "dag_id", "state"),
    )
    task_instance = table_with(
        md, "task_instance", keep,
        Column("id", UuidId, primary_key=True),
        Column("task_id", String(250), nullable=False),
        Column("dag_id", String(250), nullable=False),
        Column("run_id", String(250), nullable=False),
        Column("map_index", Integer, nullable=False, default=-1),
        Column("start_date", UtcDateTime),
        Column("end_date", UtcDateTime),
        Column("duration", Float),
        Column("state", String(20)),
        Column("try_number", Integer, nullable=False, default=0),
        Column("max_tries", Integer, nullable=False, default=-1),
        Column("hostname", String(1000)),
        Column("unixname", String(1000)),
        Column("pool", String(256), nullable=False),
        Column("pool_slots", Integer, nullable=False),
        Column("queue", String(256)),
        Column("priority_weight", Integer),
        Column("operator", String(1000)),
        Column("custom_operator_name", String(1000)),
        Column("queued_dttm", UtcDateTime),
        Column("scheduled_dttm", UtcDateTime),
        Column("queued_by_job_id", Integer),
        Column("last_heartbeat_at", UtcDateTime),
        Column("pid", Integer),
        Column("executor", String(1000)),
        Column("executor_config", LargeBinary),
        Column("updated_at", UtcDateTime),
        Column("rendered_map_index", String(250)),
        Column("span_status", String(250), nullable=False, default="not_started"),
        Column("external_executor_id", Text),
        Column("trigger_id", Integer),
        Column("trigger_timeout", UtcDateTime),
        Column("next_method", String(1000)),
        Column("next_kwargs", Json),
        Column("task_display_name", String(2000)),
        Column("dag_version_id", UuidId),
        Column("retry_delay_override", Float),
        Column("retry_reason", String(500)),
        UniqueConstraint("dag_id", "task_id", "run_id", "map_index",
                         name="task_instance_composite_key"),
        ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"],
                             name="task_instance_dag_run_fkey", ondelete="CASCADE"),
        ForeignKeyConstraint(["dag_version_id"], ["dag_version.id"],
                             name="task_instance_dag_version_id_fkey", ondelete="RESTRICT"),
        Index("ti_dag_run", "dag_id", "run_id"),
        Index("ti_state", "state"),
        Index("ti_dag_state", "dag_id", "state"),
        Index("ti_pool", "pool", "state", "priority_weight"),
    )
    slot_pool = table_with(
        md, "slot_pool", keep,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("pool", String(256), unique=True),
        Column("slots", Integer, nullable=False),
        Column("description", Text),
        Column("include_deferred", Boolean, nullable=False, default=False),
        Column("team_name", String(50)),
    )
    serialized_dag = table_with(
        md, "serialized_dag", keep,
        Column("id", UuidId, primary_key=True),
        Column("dag_id", String(250), nullable=False),
        Column("data", Json),
        Column("data_compressed", LargeBinary),
        Column("created_at", UtcDateTime, nullable=False),
        Column("last_updated", UtcDateTime, nullable=False),
        Column("dag_hash", String(32), nullable=False),
        Column("dag_version_id", UuidId, nullable=False, unique=True),
        ForeignKeyConstraint(["dag_version_id"], ["dag_version.id"],
                             name="serialized_dag_dag_version_id_fkey", ondelete="CASCADE"),
    )
    dag_code = table_with(
        md, "dag_code", keep,
        Column("id", UuidId, primary_key=True),
        Column("dag_id", String(250), nullable=False),
        Column("fileloc", String(2000), nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("last_updated", UtcDateTime, nullable=False),
        Column("source_code", Text, nullable=False),
        Column("source_code_hash", String(32), nullable=False),
        Column("dag_version_id", UuidId, nullable=False, unique=True),
        ForeignKeyConstraint(["dag_version_id"], ["dag_version.id"],
                             name="dag_code_dag_version_id_fkey", ondelete="CASCADE"),
    )
    # FAB's users, present when the FAB auth manager is installed or the database was
    # upgraded from 2.x; the simple auth manager keeps its users outside the database.
    users = fab_users_table(md, keep)
    xcom = table_with(
        md, "xcom", keep,
        Column("dag_run_id", Integer, nullable=False),
        Column("task_id", String(250), nullable=False),
        Column("map_index", Integer, nullable=False, server_default="-1"),
        Column("key", String(512), nullable=False),
        Column("dag_id", String(250), nullable=False),
        Column("run_id", String(250), nullable=False),
        Column("value", Json),
        Column("timestamp", UtcDateTime, nullable=False),
        PrimaryKeyConstraint("dag_run_id", "task_id", "map_index", "key", name="xcom_pkey"),
        Index("idx_xcom_task_instance", "dag_id", "task_id", "run_id", "map_index"),
    )
    log = table_with(
        md, "log", keep,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("dttm", UtcDateTime),
        Column("dag_id", String(250)),
        Column("task_id", String(250)),
        Column("map_index", Integer),
        Column("event", String(60), nullable=False),
        Column("logical_date", UtcDateTime),
        Column("run_id", String(250)),
        Column("owner", String(500)),
        Column("owner_display_name", String(500)),
        Column("extra", Text),
        Column("try_number", Integer),
    )
    revoked_token_table(md, keep)

    def existing(table: Table) -> Table | None:
        return table if present is None or table.name in present else None

    return Tables(
        flavor="airflow3", metadata=md, dag=dag, dag_run=dag_run,
        task_instance=task_instance, slot_pool=slot_pool, serialized_dag=serialized_dag,
        dag_code=dag_code, users=users, xcom=xcom, run_date=dag_run.c.logical_date,
        run_order=dag_run.c.run_after, dag_version=dag_version, log=existing(log),
    )
