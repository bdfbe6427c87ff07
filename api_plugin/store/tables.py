"""SQLAlchemy Core tables of the Airflow metadata database, per schema flavor.

The column lists follow the schemas real Airflow creates: 2.10 for ``airflow2``, 1.10.15
for ``airflow1`` (3.x's are in ``tables_airflow3.py``). On an existing database the tables
are built with only the columns that database really has, so other releases of the same
major version work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
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
from sqlalchemy.sql import ColumnElement, and_, select
from sqlalchemy.sql.schema import SchemaItem

from api_plugin.store.types import UtcDateTime

AIRFLOW1 = "airflow1"
AIRFLOW2 = "airflow2"
AIRFLOW3 = "airflow3"


@dataclass(frozen=True)
class Tables:
    """The tables the plugin reads or writes, for one flavor."""

    flavor: str
    metadata: MetaData
    dag: Table
    dag_run: Table
    task_instance: Table
    slot_pool: Table
    serialized_dag: Table
    dag_code: Table
    users: Table
    xcom: Table
    #: The column holding a run's date (``execution_date``; 3.x: ``logical_date``).
    run_date: Column[Any]
    #: The column runs are listed in order of (3.x: ``run_after``, as a run may have no
    #: logical date).
    run_order: Column[Any]
    #: 3.x only: DAG versions, and the audit log its API writes to on a trigger.
    dag_version: Table | None = None
    log: Table | None = None

    def serialized_of(self, dag_id: ColumnElement[Any]) -> ColumnElement[bool]:
        """Join condition: the ``serialized_dag`` row that is the DAG's definition.

        Before 3.x a DAG has one row; 3.x keeps one per DAG version, and the newest
        version's is the one the scheduler uses.
        """
        sd = self.serialized_dag
        if self.dag_version is None:
            return and_(sd.c.dag_id == dag_id)
        return and_(sd.c.dag_id == dag_id, sd.c.dag_version_id == self.newest_version_id(dag_id))

    def newest_version_id(self, dag_id: ColumnElement[Any]) -> Any:
        """Scalar subquery: the id of the DAG's newest ``dag_version`` (3.x)."""
        dv = self.dag_version
        assert dv is not None
        # Correlated to the enclosing query's dag however deeply it is nested in it.
        return (select(dv.c.id).where(dv.c.dag_id == dag_id).correlate_except(dv)
                .order_by(dv.c.version_number.desc()).limit(1).scalar_subquery())

    def source_of(self, dag: Table) -> ColumnElement[bool]:
        """Join condition: the ``dag_code`` row holding a ``dag`` row's source (before
        3.x one per file, found by its path; 3.x one per DAG version)."""
        code = self.dag_code
        if self.dag_version is None:
            return and_(code.c.fileloc == dag.c.fileloc)
        return and_(code.c.dag_id == dag.c.dag_id,
                    code.c.dag_version_id == self.newest_version_id(dag.c.dag_id))

    def instances_of_run(self, dag_run: Table) -> ColumnElement[bool]:
        """Join condition: ``task_instance`` rows (unmapped) of a ``dag_run`` row."""
        ti = self.task_instance
        if "run_id" not in ti.c:  # 1.10 keys them by date
            return and_(ti.c.dag_id == dag_run.c.dag_id,
                        ti.c.execution_date == dag_run.c.execution_date)
        return and_(ti.c.dag_id == dag_run.c.dag_id, ti.c.run_id == dag_run.c.run_id,
                    ti.c.map_index == -1)

    def instances_of_run_at(self, dag_id: ColumnElement[Any],
                            when: ColumnElement[Any]) -> ColumnElement[bool]:
        """Condition: ``task_instance`` rows (unmapped) of the DAG's run at ``when``,
        whose key (run_id; 1.10: the date) is looked up by a scalar subquery rather
        than joined to a ``dag_run`` row: the query then has no join clause between
        two large tables for PostgreSQL's planner to estimate (see
        ``services/tasks.py``). Every flavor's ``dag_run`` is unique on (dag_id, date);
        ``LIMIT 1`` keeps a database that breaks that from failing the query."""
        ti, run = self.task_instance, self.dag_run.alias("run_at")
        key = "run_id" if "run_id" in ti.c else "execution_date"
        run_key = (select(run.c[key])
                   .where(run.c.dag_id == dag_id, run.c[self.run_date.key] == when)
                   .limit(1).scalar_subquery())
        if key == "execution_date":  # 1.10 keys them by date
            return and_(ti.c.dag_id == dag_id, ti.c.execution_date == run_key)
        return and_(ti.c.dag_id == dag_id, ti.c.run_id == run_key, ti.c.map_index == -1)


ColumnFilter = Callable[[str, str], bool]


def table_with(md: MetaData, name: str, keep: ColumnFilter, *items: SchemaItem) -> Table:
    """A table holding the columns ``keep`` admits; constraints on dropped columns go too."""
    kept: list[SchemaItem] = []
    for item in items:
        if isinstance(item, Column):
            if keep(name, item.name):
                kept.append(item)
        elif isinstance(item, PrimaryKeyConstraint | UniqueConstraint | Index):
            cols = [c if isinstance(c, str) else getattr(c, "name", "")
                    for c in getattr(item, "_pending_colargs", ())]
            if all(keep(name, c) for c in cols):
                kept.append(item)
        else:
            kept.append(item)
    return Table(name, md, *kept)


def fab_users_table(md: MetaData, keep: ColumnFilter) -> Table:
    """FAB's ``ab_user``: Airflow 2's users, and Airflow 3's with the FAB auth manager."""
    return table_with(
        md, "ab_user", keep,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("first_name", String(256), nullable=False),
        Column("last_name", String(256), nullable=False),
        Column("username", String(512), nullable=False, unique=True),
        Column("password", String(256)),
        Column("active", Boolean),
        Column("email", String(512), nullable=False, unique=True),
        Column("last_login", UtcDateTime),
        Column("login_count", Integer),
        Column("fail_login_count", Integer),
        Column("created_on", UtcDateTime),
        Column("changed_on", UtcDateTime),
        Column("created_by_fk", Integer),
        Column("changed_by_fk", Integer),
    )


def _dag_run_common() -> list[SchemaItem]:
    return [
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("dag_id", String(250), nullable=False),
        Column("execution_date", UtcDateTime, nullable=False),
        Column("start_date", UtcDateTime),
        Column("end_date", UtcDateTime),
        Column("state", String(50)),
        Column("run_id", String(250), nullable=False),
        Column("external_trigger", Boolean),
        Column("conf", LargeBinary),
    ]


def build_tables(flavor: str, present: Mapping[str, Collection[str]] | None = None) -> Tables:
    """The flavor's tables; with ``present`` (table -> column names) only what exists."""
    if flavor not in (AIRFLOW1, AIRFLOW2):
        raise ValueError(f"unknown flavor {flavor!r}")

    def keep(table: str, column: str) -> bool:
        return present is None or column in present.get(table, ())

    md = MetaData()
    a2 = flavor == AIRFLOW2
    dag = table_with(
        md, "dag", keep,
        Column("dag_id", String(250), primary_key=True),
        Column("root_dag_id", String(250)),
        Column("is_paused", Boolean),
        Column("is_subdag", Boolean),
        Column("is_active", Boolean),
        Column("last_parsed_time", UtcDateTime),
        Column("last_pickled", UtcDateTime),
        Column("last_expired", UtcDateTime),
        Column("scheduler_lock", Boolean),
        Column("pickle_id", Integer),
        Column("fileloc", String(2000)),
        Column("processor_subdir", String(2000)),
        Column("owners", String(2000)),
        Column("dag_display_name", String(2000)),
        Column("description", Text),
        Column("default_view", String(25)),
        Column("schedule_interval", Text),
        Column("timetable_description", String(1000)),
        Column("dataset_expression", JSON),
        Column("max_active_tasks", Integer, nullable=not a2, default=16),
        Column("max_active_runs", Integer, default=16),
        Column("max_consecutive_failed_dag_runs", Integer, nullable=not a2, default=0),
        Column("has_task_concurrency_limits", Boolean, nullable=not a2, default=False),
        Column("has_import_errors", Boolean, default=False),
        Column("next_dagrun", UtcDateTime),
        Column("next_dagrun_data_interval_start", UtcDateTime),
        Column("next_dagrun_data_interval_end", UtcDateTime),
        Column("next_dagrun_create_after", UtcDateTime),
    ) if a2 else table_with(
        md, "dag", keep,
        Column("dag_id", String(250), primary_key=True),
        Column("is_paused", Boolean),
        Column("is_subdag", Boolean),
        Column("is_active", Boolean),
        Column("last_scheduler_run", UtcDateTime),
        Column("last_pickled", UtcDateTime),
        Column("last_expired", UtcDateTime),
        Column("scheduler_lock", Boolean),
        Column("pickle_id", Integer),
        Column("fileloc", String(2000)),
        Column("owners", String(2000)),
        Column("description", Text),
        Column("default_view", String(25)),
        Column("schedule_interval", Text),
        Column("root_dag_id", String(250)),
    )
    if a2:
        dag_run = table_with(
            md, "dag_run", keep,
            *_dag_run_common(),
            Column("queued_at", UtcDateTime),
            Column("creating_job_id", Integer),
            Column("run_type", String(50), nullable=False),
            Column("data_interval_start", UtcDateTime),
            Column("data_interval_end", UtcDateTime),
            Column("last_scheduling_decision", UtcDateTime),
            Column("dag_hash", String(32)),
            Column("log_template_id", Integer),
            Column("updated_at", UtcDateTime),
            Column("clear_number", Integer, nullable=False, default=0),
            UniqueConstraint("dag_id", "execution_date", name="dag_run_dag_id_execution_date_key"),
            UniqueConstraint("dag_id", "run_id", name="dag_run_dag_id_run_id_key"),
            Index("idx_dag_run_dag_id", "dag_id"),
            Index("dag_id_state", "dag_id", "state"),
        )
    else:
        dag_run = table_with(
            md, "dag_run", keep,
            *_dag_run_common(),
            UniqueConstraint("dag_id", "execution_date"),
            UniqueConstraint("dag_id", "run_id"),
            Index("dag_id_state", "dag_id", "state"),
        )
    ti_common: list[SchemaItem] = [
        Column("task_id", String(250), nullable=False),
        Column("dag_id", String(250), nullable=False),
    ]
    ti_body: list[SchemaItem] = [
        Column("start_date", UtcDateTime),
        Column("end_date", UtcDateTime),
        Column("duration", Float),
        Column("state", String(20)),
        Column("try_number", Integer),
        Column("max_tries", Integer, default=-1),
        Column("hostname", String(1000)),
        Column("unixname", String(1000)),
        Column("job_id", Integer),
        Column("pool", String(256 if a2 else 50), nullable=False),
        Column("pool_slots", Integer, nullable=not a2),
        Column("queue", String(256)),
        Column("priority_weight", Integer),
        Column("operator", String(1000)),
        Column("queued_dttm", UtcDateTime),
        Column("pid", Integer),
        Column("executor_config", LargeBinary),
    ]
    if a2:
        task_instance = table_with(
            md, "task_instance", keep,
            *ti_common,
            Column("run_id", String(250), nullable=False),
            Column("map_index", Integer, nullable=False, default=-1),
            *ti_body,
            Column("custom_operator_name", String(1000)),
            Column("queued_by_job_id", Integer),
            Column("executor", String(1000)),
            Column("updated_at", UtcDateTime),
            Column("rendered_map_index", String(250)),
            Column("external_executor_id", String(250)),
            Column("trigger_id", Integer),
            Column("trigger_timeout", UtcDateTime),
            Column("next_method", String(1000)),
            Column("next_kwargs", JSON),
            Column("task_display_name", String(2000)),
            PrimaryKeyConstraint("dag_id", "task_id", "run_id", "map_index",
                                 name="task_instance_pkey"),
            ForeignKeyConstraint(["dag_id", "run_id"], ["dag_run.dag_id", "dag_run.run_id"],
                                 name="task_instance_dag_run_fkey", ondelete="CASCADE"),
            Index("ti_dag_run", "dag_id", "run_id"),
            Index("ti_state", "state"),
            Index("ti_pool", "pool", "state", "priority_weight"),
            Index("ti_dag_state", "dag_id", "state"),
        )
    else:
        task_instance = table_with(
            md, "task_instance", keep,
            *ti_common,
            Column("execution_date", UtcDateTime, nullable=False),
            *ti_body,
            PrimaryKeyConstraint("task_id", "dag_id", "execution_date"),
            Index("ti_dag_date", "dag_id", "execution_date"),
            Index("ti_state", "state"),
        )
    slot_pool = table_with(
        md, "slot_pool", keep,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("pool", String(256 if a2 else 50), unique=True),
        Column("slots", Integer),
        Column("description", Text),
        *([Column("include_deferred", Boolean, nullable=False, default=False)] if a2 else []),
    )
    serialized_dag = table_with(
        md, "serialized_dag", keep,
        Column("dag_id", String(250), primary_key=True),
        Column("fileloc", String(2000), nullable=False),
        Column("fileloc_hash", BigInteger, nullable=False),
        Column("data", JSON, nullable=a2),
        Column("data_compressed", LargeBinary),
        Column("last_updated", UtcDateTime, nullable=False),
        Column("dag_hash", String(32), nullable=False),
        Column("processor_subdir", String(2000)),
    )
    dag_code = table_with(
        md, "dag_code", keep,
        Column("fileloc_hash", BigInteger, primary_key=True, autoincrement=False),
        Column("fileloc", String(2000), nullable=False),
        Column("last_updated", UtcDateTime, nullable=False),
        Column("source_code", Text, nullable=False),
    )
    if a2:
        users = fab_users_table(md, keep)
    else:
        users = table_with(
            md, "users", keep,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("username", String(250), unique=True),
            Column("email", String(500)),
            Column("password", String(255)),
            Column("superuser", Boolean),
        )
    # XComs: read for lineage (the values tasks pushed under the pipeline_* keys).
    xcom = table_with(
        md, "xcom", keep,
        Column("dag_run_id", Integer, nullable=False),
        Column("task_id", String(250), nullable=False),
        Column("map_index", Integer, nullable=False, server_default="-1"),
        Column("key", String(512), nullable=False),
        Column("dag_id", String(250), nullable=False),
        Column("run_id", String(250), nullable=False),
        Column("value", LargeBinary),
        Column("timestamp", UtcDateTime, nullable=False),
        PrimaryKeyConstraint("dag_run_id", "task_id", "map_index", "key", name="xcom_pkey"),
        Index("idx_xcom_task_instance", "dag_id", "task_id", "run_id", "map_index"),
    ) if a2 else table_with(
        md, "xcom", keep,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("key", String(512)),
        Column("value", LargeBinary),
        Column("timestamp", UtcDateTime, nullable=False),
        Column("execution_date", UtcDateTime, nullable=False),
        Column("task_id", String(250), nullable=False),
        Column("dag_id", String(250), nullable=False),
        Index("idx_xcom_dag_task_date", "dag_id", "task_id", "execution_date"),
    )
    return Tables(flavor, md, dag, dag_run, task_instance, slot_pool, serialized_dag,
                  dag_code, users, xcom, run_date=dag_run.c.execution_date,
                  run_order=dag_run.c.execution_date)
