"""Airflow 2.x (2.10.5 the reference): runs keyed by ``run_id``, queued by the trigger."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from api_plugin.flavors.attributes import AIRFLOW2_DEFAULTS, airflow2_finish, base_attributes
from api_plugin.flavors.base import DagRecord, Flavor, RunLink, TriggerInput, form_date, quoted
from api_plugin.flavors.intervals import manual_data_interval
from api_plugin.run_ids import AIRFLOW2_GENERATED_PATTERN
from api_plugin.store.keys import fileloc_hash
from api_plugin.store.safe_pickle import dumps_conf
from api_plugin.store.serialized import DagSpec, TaskSpec
from api_plugin.store.tables import AIRFLOW2, Tables, build_tables


class Airflow2(Flavor):
    """A database made by Airflow 2.x."""

    name = AIRFLOW2
    generated_run_id_pattern = AIRFLOW2_GENERATED_PATTERN
    task_defaults: ClassVar[dict[str, Any]] = AIRFLOW2_DEFAULTS

    def recognises(self, schema: Mapping[str, Collection[str]]) -> bool:
        # 2.x gave dag_run a NOT NULL ``run_type`` and task_instance a ``run_id``.
        return "run_type" in schema.get("dag_run", ()) or "run_id" in schema.get(
            "task_instance", ())

    def build_tables(self, present: Mapping[str, Collection[str]] | None = None) -> Tables:
        return build_tables(AIRFLOW2, present)

    def run_links(self, dag_id: str, base: str) -> RunLink:
        head = f"{base}/dags/{quoted(dag_id)}/graph?execution_date="
        return lambda run_id, utc_iso: head + form_date(utc_iso)

    def created_message(self, request: TriggerInput, row: Mapping[str, Any]) -> str:
        return "Created " + self.run_text({
            "dag_id": request.dag_id, "date": request.when, "run_id": request.run_id,
            "state": "queued", "queued_at": row.get("queued_at"), "external_trigger": True,
            "run_type": "manual"})

    def run_row(self, spec: DagSpec, request: TriggerInput, dag: Mapping[str, Any]
                ) -> dict[str, Any]:
        start, end = manual_data_interval(spec.schedule_interval, request.when, spec.timezone)
        return {
            "dag_id": spec.dag_id,
            "run_id": request.run_id,
            "execution_date": request.when,
            "external_trigger": True,
            "state": "queued",
            "queued_at": request.now,
            "run_type": "manual",
            "conf": dumps_conf(request.conf or {}),
            "data_interval_start": start,
            "data_interval_end": end,
            "dag_hash": spec.dag_hash,
            "updated_at": request.now,
            "clear_number": 0,
        }

    def task_instance_static(self, spec: DagSpec, task: TaskSpec) -> dict[str, Any]:
        row = super().task_instance_static(spec, task)
        row.update(
            map_index=-1,
            custom_operator_name=task.get("_operator_name", task.get("custom_operator_name")),
            executor=task.get("executor"),
            task_display_name=task.get("task_display_name") or task.task_id,
        )
        return row

    def task_instance_per_run(self, task: TaskSpec, request: TriggerInput) -> dict[str, Any]:
        return {"run_id": request.run_id, "updated_at": request.now}

    def run_text(self, run: Mapping[str, Any]) -> str:
        """``str(dag_run)`` as the flavor's DagRun class writes it."""
        return (
            f"<DagRun {run['dag_id']} @ {run['date']}: {run['run_id']}, "
            f"state:{run['state']}, queued_at: {run.get('queued_at')}. "
            f"{self.run_text_ending(run)}>"
        )

    def run_text_ending(self, run: Mapping[str, Any]) -> str:
        """The last part of ``str(dag_run)``, the one that differs between versions."""
        return f"externally triggered: {bool(run.get('external_trigger'))}"

    def task_instance_answer(self, columns: dict[str, Any], run: Mapping[str, Any]
                             ) -> dict[str, Any]:
        columns.pop("task_display_name", None)
        columns["dag_run"] = self.run_text(run)
        # Attributes Airflow 2's TaskInstance object carries beside its columns.
        columns["rendered_task_instance_fields"] = None
        columns["test_mode"] = False
        return columns

    def task_attributes(self, spec: DagSpec, task: TaskSpec) -> dict[str, Any]:
        return airflow2_finish(base_attributes(self.task_defaults, spec, task))

    def serialize_dag(self, dag: dict[str, Any], tasks: list[dict[str, Any]]
                      ) -> dict[str, Any]:
        fields = pre3_dag_fields(dag, [self.serialize_task(task) for task in tasks])
        fields.update(dag_dependencies=[], params=[], edge_info={},
                      _processor_dags_folder=str(Path(dag["fileloc"]).parent))
        return {"__version": 1, "dag": fields}

    def serialize_task(self, task: dict[str, Any]) -> Any:
        """One task in the 2.x layout: ``{"__var": fields, "__type": "operator"}``."""
        fields = {("_task_type" if k == "task_type" else k): v for k, v in task.items()
                  if k != "downstream"}
        fields.setdefault("pool", "default_pool")
        fields.setdefault("weight_rule", "downstream")
        fields["downstream_task_ids"] = sorted(task["downstream"])
        return {"__var": fields, "__type": "operator"}

    def store_dag(self, conn: Connection, tables: Tables, record: DagRecord,
                  now: datetime) -> None:
        store_one_version(conn, tables, record, now)

def store_one_version(conn: Connection, tables: Tables, record: DagRecord,
                      now: datetime) -> None:
    """Before 3.x: one ``serialized_dag`` row per DAG and one ``dag_code`` row per file,
    replaced in place."""
    write_dag_row(conn, tables, record)
    sd, code = tables.serialized_dag, tables.dag_code
    conn.execute(delete(sd).where(sd.c.dag_id == record.dag_id))
    sd_row = {"dag_id": record.dag_id, "fileloc": record.fileloc,
              "fileloc_hash": fileloc_hash(record.fileloc), "data": record.document,
              "last_updated": now, "dag_hash": record.dag_hash}
    conn.execute(insert(sd).values(**{k: v for k, v in sd_row.items() if k in sd.c}))
    code_hash = fileloc_hash(record.fileloc)
    conn.execute(delete(code).where(code.c.fileloc_hash == code_hash))
    conn.execute(insert(code).values(fileloc_hash=code_hash, fileloc=record.fileloc,
                                     last_updated=now, source_code=record.source))


def pre3_dag_fields(dag: dict[str, Any], tasks: list[Any]) -> dict[str, Any]:
    """The DAG's fields in the 1.10 and 2.x layout (format 1)."""
    fields = {
        "_dag_id": dag["dag_id"],
        "fileloc": dag["fileloc"],
        "timezone": dag["timezone"],
        "schedule_interval": dag["schedule"],
        "_description": dag["description"],
        "catchup": dag["catchup"],
        "default_args": dag["default_args"],
        "tasks": tasks,
    }
    if dag.get("start_date") is not None:
        fields["start_date"] = dag["start_date"]
    return fields


def write_dag_row(conn: Connection, tables: Tables, record: DagRecord) -> None:
    """Insert the ``dag`` row, or update it keeping its pause flag."""
    dag = tables.dag
    row = {k: v for k, v in record.dag_row.items() if k in dag.c}
    if conn.execute(select(dag.c.dag_id).where(dag.c.dag_id == record.dag_id)).first():
        row.pop("is_paused", None)
        conn.execute(update(dag).where(dag.c.dag_id == record.dag_id).values(**row))
    else:
        conn.execute(insert(dag).values(**row))
