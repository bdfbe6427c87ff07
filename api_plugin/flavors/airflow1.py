"""Airflow 1.10 (1.10.15 the reference): runs keyed by date, running from the trigger.

1.10's task instances have no ``run_id`` (they are found by the run's
``execution_date``), a triggered run starts ``running`` with a pickled conf or none,
dates in texts are pendulum 1's ISO 8601 and the UI lives under ``/admin``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy.engine import Connection

from api_plugin.dates import to_utc
from api_plugin.errors import Conflict
from api_plugin.flavors.airflow2 import pre3_dag_fields, store_one_version
from api_plugin.flavors.attributes import COMMON_DEFAULTS, base_attributes
from api_plugin.flavors.base import DagRecord, Flavor, RunLink, TriggerInput, form_date, quoted
from api_plugin.store.safe_pickle import dumps_conf
from api_plugin.store.serialized import DagSpec, TaskSpec
from api_plugin.store.tables import AIRFLOW1, Tables, build_tables

#: The keys Airflow 1.10's endpoint shows for a task instance, in its order.
TASK_INSTANCE_KEYS = (
    "dag_id", "task_id", "execution_date", "state", "max_tries", "operator", "pool",
    "pool_slots", "queue", "priority_weight", "start_date", "end_date", "duration",
    "hostname", "unixname", "job_id", "pid", "queued_dttm", "executor_config", "test_mode",
)


class Airflow1(Flavor):
    """A database made by Airflow 1.10."""

    name = AIRFLOW1
    iso_dates_in_errors = True
    run_written_at = "start_date"  # 1.10's dag_run has no queued_at
    task_defaults: ClassVar[dict[str, Any]] = {
        **COMMON_DEFAULTS, "task_concurrency": None, "lineage_data": None, "subdag": None}

    def recognises(self, schema: Mapping[str, Collection[str]]) -> bool:
        return "dag_run" in schema

    def build_tables(self, present: Mapping[str, Collection[str]] | None = None) -> Tables:
        return build_tables(AIRFLOW1, present)

    def run_links(self, dag_id: str, base: str) -> RunLink:
        head = f"{base}/admin/airflow/graph?dag_id={quoted(dag_id)}&execution_date="
        return lambda run_id, utc_iso: head + form_date(utc_iso)

    def created_message(self, request: TriggerInput, row: Mapping[str, Any]) -> str:
        when = request.when
        shown = str(to_utc(when)) if request.defaulted else when.isoformat()
        return (f"Created <DagRun {request.dag_id} @ {shown}: {request.run_id}, "
                "externally triggered: True>")

    def duplicate_error(self, dag_id: str, run_id: str, when: datetime) -> Conflict:
        return Conflict(f"Run id {run_id} already exists for dag id {dag_id}")

    def run_row(self, spec: DagSpec, request: TriggerInput, dag: Mapping[str, Any]
                ) -> dict[str, Any]:
        return {
            "dag_id": spec.dag_id,
            "run_id": request.run_id,
            "execution_date": request.when,
            "external_trigger": True,
            "state": "running",
            "start_date": request.now,
            "conf": dumps_conf(request.conf) if request.conf is not None else None,
        }

    def task_instance_per_run(self, task: TaskSpec, request: TriggerInput) -> dict[str, Any]:
        return {"execution_date": to_utc(request.when)}

    def lineage_run_key(self, run: Any) -> Any:
        return run.execution_date

    def task_instance_answer(self, columns: dict[str, Any], run: Mapping[str, Any]
                             ) -> dict[str, Any]:
        columns["test_mode"] = False
        return {key: columns.get(key) for key in TASK_INSTANCE_KEYS}

    def task_attributes(self, spec: DagSpec, task: TaskSpec) -> dict[str, Any]:
        attrs = base_attributes(self.task_defaults, spec, task)
        # 1.10 keeps the graph in private attributes, and its dates are pendulum 1
        # objects, whose str() is ISO 8601 with a "T".
        del attrs["downstream_task_ids"], attrs["upstream_task_ids"]
        attrs["inlets"], attrs["outlets"] = [], []
        return {key: value.isoformat() if isinstance(value, datetime) else value
                for key, value in attrs.items()}

    def serialize_dag(self, dag: dict[str, Any], tasks: list[dict[str, Any]]
                      ) -> dict[str, Any]:
        fields = pre3_dag_fields(dag, [self.serialize_task(task) for task in tasks])
        return {"__version": 1, "dag": fields}

    def serialize_task(self, task: dict[str, Any]) -> dict[str, Any]:
        """One task in the 1.10 layout: a plain dict with ``_downstream_task_ids``."""
        fields = {("_task_type" if k == "task_type" else k): v for k, v in task.items()
                  if k != "downstream"}
        fields["_downstream_task_ids"] = sorted(task["downstream"])
        return fields

    def store_dag(self, conn: Connection, tables: Tables, record: DagRecord,
                  now: datetime) -> None:
        store_one_version(conn, tables, record, now)
