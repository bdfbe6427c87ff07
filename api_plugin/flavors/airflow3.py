"""Airflow 3.x (3.3.2 the reference): what differs from 2.x.

A run's date is its ``logical_date`` and may be NULL; runs are ordered by ``run_after``.
A trigger writes the rows Airflow 3's own REST API writes (``POST /api/v2/dags/{id}/dagRuns``):
the run with ``triggered_by`` and the user, JSON conf, the DAG version it was made
from; task instances with UUIDv7 ids; and an audit ``log`` row. DAG definitions and
sources are versioned (``dag_version``), and the UI's run page is ``/dags/<id>/runs/<run>``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from api_plugin.errors import BadRequest, NotFound
from api_plugin.flavors.airflow2 import Airflow2, write_dag_row
from api_plugin.flavors.attributes import AIRFLOW2_DEFAULTS, airflow2_finish, base_attributes
from api_plugin.flavors.base import DagRecord, RunLink, TriggerInput, quoted
from api_plugin.flavors.intervals import CRON_PRESETS, timetable_data_interval
from api_plugin.run_ids import AIRFLOW3_GENERATED_PATTERN
from api_plugin.store.keys import uuid7_hex
from api_plugin.store.serialized import DagSpec, TaskSpec
from api_plugin.store.tables import AIRFLOW3, Tables
from api_plugin.store.tables_airflow3 import build_airflow3_tables

#: The bundle Airflow 3 reads a plain DAG folder into.
DAGS_FOLDER_BUNDLE = "dags-folder"
#: ``TriggeredByType.REST_API`` as Airflow stores it (the enum's name: its lower-case
#: value makes Airflow's own run list fail).
TRIGGERED_BY = "REST_API"
#: 3.x's BaseOperator has no ``sla``; the rest of 2.x's defaults hold.
AIRFLOW3_DEFAULTS = {k: v for k, v in AIRFLOW2_DEFAULTS.items() if k != "sla"}
#: Serialized fields of 3.x that are derived, not attributes a DAG author sets.
_DERIVED_FIELDS = ("task_type", "has_retry_policy")

_CRON_TIMETABLE = "airflow.timetables.trigger.CronTriggerTimetable"
_DELTA_TIMETABLE = "airflow.timetables.trigger.DeltaTriggerTimetable"
_NULL_TIMETABLE = "airflow.timetables.simple.NullTimetable"
_ONCE_TIMETABLE = "airflow.timetables.simple.OnceTimetable"


class Airflow3(Airflow2):
    """A database made (or upgraded) by Airflow 3.x."""

    name = AIRFLOW3
    executor_config_protocol = 5
    generated_run_id_pattern = AIRFLOW3_GENERATED_PATTERN
    task_defaults: ClassVar[dict[str, Any]] = AIRFLOW3_DEFAULTS

    def recognises(self, schema: Mapping[str, Collection[str]]) -> bool:
        dag_run = schema.get("dag_run", ())
        return "dag_version" in schema or (
            "run_after" in dag_run and "execution_date" not in dag_run)

    def build_tables(self, present: Mapping[str, Collection[str]] | None = None) -> Tables:
        return build_airflow3_tables(present)

    def run_links(self, dag_id: str, base: str) -> RunLink:
        head = f"{base}/dags/{quoted(dag_id)}/runs/"
        return lambda run_id, utc_iso: head + quoted(run_id)

    def check_triggerable(self, dag: Mapping[str, Any]) -> None:
        dag_id = dag["dag_id"]
        if dag.get("is_stale"):
            raise NotFound(f"Dag id {dag_id} not found in DagModel")
        if dag.get("has_import_errors"):
            raise BadRequest(
                f"Dag with dag_id: '{dag_id}' has import errors and cannot be triggered")
        allowed = dag.get("allowed_run_types")
        if isinstance(allowed, str):
            try:
                allowed = json.loads(allowed)
            except ValueError:
                allowed = None
        if isinstance(allowed, list) and "manual" not in allowed:
            raise BadRequest(f"Dag with dag_id: '{dag_id}' does not allow manual runs")

    def run_row(self, spec: DagSpec, request: TriggerInput, dag: Mapping[str, Any]
                ) -> dict[str, Any]:
        start, end = timetable_data_interval(spec.timetable, request.when)
        now = request.now
        return {
            "dag_id": spec.dag_id,
            "run_id": request.run_id,
            "run_type": "manual",
            "state": "queued",
            "queued_at": now,
            "logical_date": request.when,
            "run_after": now,
            "triggered_by": TRIGGERED_BY,
            "triggering_user_name": request.user,
            "conf": request.conf or {},
            "data_interval_start": start,
            "data_interval_end": end,
            "created_at": now,
            "updated_at": now,
            "clear_number": 0,
            "span_status": "not_started",
            "created_dag_version_id": spec.version_id,
            "bundle_version": dag.get("bundle_version"),
        }

    def task_instance_static(self, spec: DagSpec, task: TaskSpec) -> dict[str, Any]:
        row = super().task_instance_static(spec, task)
        row.update(
            custom_operator_name=(task.get("_operator_name") or task.get("custom_operator_name")
                                  or task.task_type),
            dag_version_id=spec.version_id,
            span_status="not_started",
        )
        return row

    def task_instance_per_run(self, task: TaskSpec, request: TriggerInput) -> dict[str, Any]:
        return {**super().task_instance_per_run(task, request), "id": uuid7_hex()}

    def audit_row(self, request: TriggerInput) -> dict[str, Any]:
        """The ``log`` row Airflow 3's API writes for ``trigger_dag_run``: the user, and
        what the client sent (in ``extra``; its ``logical_date`` column stays empty, as
        Airflow leaves it, and the run id is there only when the client chose one)."""
        sent: dict[str, Any] = {
            "logical_date": None if request.defaulted else request.when.isoformat(),
            "conf": request.conf,
            "method": "POST",
        }
        if request.run_id_given:
            sent["dag_run_id"] = request.run_id
        return {
            "dttm": request.now,
            "dag_id": request.dag_id,
            "event": "trigger_dag_run",
            "logical_date": None,
            "run_id": request.run_id if request.run_id_given else None,
            "owner": request.user,
            "owner_display_name": request.user,
            "extra": json.dumps(sent),
        }

    lineage_in_xcoms = False

    def declared_lineage(self, spec: DagSpec) -> dict[str, dict[str, Any]]:
        """Airflow 3 pushes no ``pipeline_*`` XComs: each task's declared inlets and
        outlets (assets shown as Airflow's repr), for the tasks that declare any."""
        lineage: dict[str, dict[str, Any]] = {}
        for task in spec.tasks.values():
            sides = {side: task.get(side) or task.get(f"_{side}") for side in
                     ("inlets", "outlets")}
            shown = {side: list(value) for side, value in sides.items()
                     if isinstance(value, list | tuple) and value}
            if shown:
                lineage[task.task_id] = shown
        return lineage

    def run_text_ending(self, run: Mapping[str, Any]) -> str:
        return f"run_type: {run.get('run_type')}"

    def task_instance_answer(self, columns: dict[str, Any], run: Mapping[str, Any]
                             ) -> dict[str, Any]:
        columns["dag_run"] = self.run_text(run)
        return columns

    def task_attributes(self, spec: DagSpec, task: TaskSpec) -> dict[str, Any]:
        attrs = base_attributes(self.task_defaults, spec, task)
        for name in _DERIVED_FIELDS:
            attrs.pop(name, None)
        return airflow2_finish(attrs)

    def serialize_dag(self, dag: dict[str, Any], tasks: list[dict[str, Any]]
                      ) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "dag_id": dag["dag_id"],
            "fileloc": dag["fileloc"],
            "relative_fileloc": Path(dag["fileloc"]).name,
            "timezone": dag["timezone"],
            "timetable": timetable_for(dag["schedule"], dag["timezone"]),
            "description": dag["description"],
            "catchup": dag["catchup"],
            "default_args": dag["default_args"],
            "tasks": [self.serialize_task(task) for task in tasks],
            "dag_dependencies": [],
            "params": [],
            "edge_info": {},
            "_processor_dags_folder": str(Path(dag["fileloc"]).parent),
        }
        if dag.get("start_date") is not None:
            fields["start_date"] = dag["start_date"]
        return {"__version": 3, "dag": fields}

    def serialize_task(self, task: dict[str, Any]) -> Any:
        fields = {k: v for k, v in task.items() if k != "downstream"}
        fields["downstream_task_ids"] = sorted(task["downstream"])
        return {"__var": fields, "__type": "operator"}

    def store_dag(self, conn: Connection, tables: Tables, record: DagRecord,
                  now: datetime) -> None:
        """A new ``dag_version`` (with its ``serialized_dag`` and ``dag_code`` rows)
        whenever the definition's hash changed, as Airflow 3's DAG processor does."""
        bundle = tables.metadata.tables.get("dag_bundle")
        if bundle is not None and "name" in bundle.c and conn.execute(
                select(bundle.c.name).where(bundle.c.name == DAGS_FOLDER_BUNDLE)).first() is None:
            conn.execute(insert(bundle).values(name=DAGS_FOLDER_BUNDLE, active=True))
        timetable = record.document["dag"].get("timetable") or {}
        dag_row = {
            **record.dag_row,
            "is_stale": False,
            "bundle_name": DAGS_FOLDER_BUNDLE,
            "relative_fileloc": Path(record.fileloc).name,
            "timetable_type": str(timetable.get("__type", _NULL_TIMETABLE)),
            "timetable_summary": _summary(timetable),
            "partition_mapper_info": {},
        }
        write_dag_row(conn, tables, DagRecord(record.dag_id, record.document, record.dag_hash,
                                              record.fileloc, record.source, dag_row))
        dv, sd, code = tables.dag_version, tables.serialized_dag, tables.dag_code
        assert dv is not None
        newest = conn.execute(
            select(dv.c.id, dv.c.version_number, sd.c.dag_hash)
            .select_from(dv.outerjoin(sd, sd.c.dag_version_id == dv.c.id))
            .where(dv.c.dag_id == record.dag_id)
            .order_by(dv.c.version_number.desc()).limit(1)).first()
        if newest is not None and newest.dag_hash == record.dag_hash:
            return
        version_id = uuid7_hex()
        conn.execute(insert(dv).values(
            id=version_id, version_number=(newest.version_number + 1) if newest else 1,
            dag_id=record.dag_id, bundle_name=DAGS_FOLDER_BUNDLE, created_at=now,
            last_updated=now))
        conn.execute(insert(sd).values(
            id=uuid7_hex(), dag_id=record.dag_id, data=record.document, created_at=now,
            last_updated=now, dag_hash=record.dag_hash, dag_version_id=version_id))
        conn.execute(insert(code).values(
            id=uuid7_hex(), dag_id=record.dag_id, fileloc=record.fileloc, created_at=now,
            last_updated=now, source_code=record.source,
            source_code_hash=hashlib.md5(record.source.encode(),
                                         usedforsecurity=False).hexdigest(),
            dag_version_id=version_id))


def timetable_for(schedule: Any, timezone: str) -> dict[str, Any]:
    """The timetable Airflow 3 makes of a DAG's ``schedule``: cron expressions and
    presets trigger at the time (no data interval), a number of seconds every so often."""
    if schedule is None:
        return {"__type": _NULL_TIMETABLE, "__var": {}}
    if schedule == "@once":
        return {"__type": _ONCE_TIMETABLE, "__var": {}}
    if isinstance(schedule, int | float) and not isinstance(schedule, bool):
        return {"__type": _DELTA_TIMETABLE,
                "__var": {"delta": float(schedule), "interval": 0.0}}
    return {"__type": _CRON_TIMETABLE,
            "__var": {"expression": CRON_PRESETS.get(str(schedule), str(schedule)),
                      "timezone": timezone, "interval": 0.0, "run_immediately": False}}


def _summary(timetable: Mapping[str, Any]) -> str | None:
    var = timetable.get("__var")
    if isinstance(var, dict) and isinstance(var.get("expression"), str):
        return str(var["expression"])
    return None
