"""Tasks and task instances: the task's public attributes, an instance's columns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Text, bindparam, cast, select
from sqlalchemy.sql import Select

from api_plugin.dates import parse_datetime
from api_plugin.errors import NotFound
from api_plugin.services.common import dag_not_in_model, py_str, require_dag_spec, shown_date
from api_plugin.services.runs import run_not_found
from api_plugin.services.task_attrs import task_attributes
from api_plugin.store import AIRFLOW1, Store
from api_plugin.store.decode_budget import loads_json
from api_plugin.store.tables import Tables

#: The keys Airflow 1.10's endpoint shows for a task instance, in its order.
AIRFLOW1_TI_KEYS = (
    "dag_id", "task_id", "execution_date", "state", "max_tries", "operator", "pool",
    "pool_slots", "queue", "priority_weight", "start_date", "end_date", "duration",
    "hostname", "unixname", "job_id", "pid", "queued_dttm", "executor_config", "test_mode",
)


def task_not_found(dag_id: str, task_id: str) -> NotFound:
    return NotFound(f"Task {task_id} not found in dag {dag_id}")


def get_task(store: Store, dag_id: str, task_id: str) -> dict[str, str]:
    """The task's public attributes, each rendered as ``str()`` renders it."""
    spec = require_dag_spec(store, dag_id)
    task = spec.tasks.get(task_id)
    if task is None:
        raise task_not_found(dag_id, task_id)
    return {key: py_str(value) for key, value in task_attributes(store.flavor, spec, task).items()}


def get_task_instance(
    store: Store, dag_id: str, execution_date: Any, task_id: str
) -> dict[str, str]:
    """The instance's columns as strings; the run and the instance found in one query."""
    when = parse_datetime(execution_date) if isinstance(execution_date, str) else execution_date
    ti = store.tables.task_instance
    head = store.prepared("task_instance", _task_instance_query).first(
        dag_id=dag_id, when=when, task_id=task_id)
    if head is None:
        raise dag_not_in_model(dag_id)
    spec = store.dag_spec_by_hash(dag_id, head.dag_hash) if head.sd_dag_id else None
    if spec is None:
        raise NotFound(f"Dag id {dag_id} not found")
    if task_id not in spec.tasks:
        raise task_not_found(dag_id, task_id)
    if head.run_pk is None:
        raise run_not_found(store, dag_id, when)
    mapping = head._asdict()
    if mapping["ti__task_id"] is None:
        raise NotFound(f"Task {task_id} instance for date {shown_date(store, when)} not found")
    columns = {c.name: _decoded(c, mapping[f"ti__{c.name}"]) for c in ti.c}
    if store.flavor == AIRFLOW1:
        columns["test_mode"] = False
        columns["executor_config"] = _executor_config(columns.get("executor_config"))
        return {key: py_str(columns.get(key)) for key in AIRFLOW1_TI_KEYS}
    columns["executor_config"] = _executor_config(columns.get("executor_config"))
    columns.pop("task_display_name", None)
    columns["dag_run"] = _run_repr(mapping)
    # Attributes Airflow 2's TaskInstance object carries beside its columns.
    columns["rendered_task_instance_fields"] = None
    columns["test_mode"] = False
    return {key: py_str(value) for key, value in columns.items()}


def _task_instance_query(t: Tables) -> Select[Any]:
    """The DAG, its serialized hash, the run at a date and one of its task instances."""
    dag, sd, dr, ti = t.dag, t.serialized_dag, t.dag_run, t.task_instance
    if t.flavor == AIRFLOW1:
        ti_join = (ti.c.dag_id == dr.c.dag_id) & (ti.c.execution_date == dr.c.execution_date)
    else:
        ti_join = (ti.c.dag_id == dr.c.dag_id) & (ti.c.run_id == dr.c.run_id) & (
            ti.c.map_index == -1)
    run_columns = [dr.c.id.label("run_pk"), dr.c.run_id.label("run_run_id"),
                   dr.c.state.label("run_state"), dr.c.execution_date.label("run_date"),
                   dr.c.external_trigger.label("run_external")]
    if "queued_at" in dr.c:
        run_columns.append(dr.c.queued_at.label("run_queued_at"))
    return (
        select(dag.c.dag_id.label("model_dag_id"), sd.c.dag_hash,
               sd.c.dag_id.label("sd_dag_id"), *run_columns,
               *[_as_stored(c).label(f"ti__{c.name}") for c in ti.c])
        .select_from(
            dag.outerjoin(sd, sd.c.dag_id == dag.c.dag_id)
            .outerjoin(dr, (dr.c.dag_id == dag.c.dag_id)
                       & (dr.c.execution_date == bindparam("when")))
            .outerjoin(ti, ti_join & (ti.c.task_id == bindparam("task_id")))
        )
        .where(dag.c.dag_id == bindparam("dag_id"))
        .limit(1)
    )


def _as_stored(column: Any) -> Any:
    """A JSON column as its text (decoded by ``_decoded`` within its budget)."""
    return cast(column, Text) if isinstance(column.type, JSON) else column


def _decoded(column: Any, value: Any) -> Any:
    """A JSON column's value decoded within the value budget; unreadable beyond it."""
    if not isinstance(column.type, JSON) or value is None:
        return value
    try:
        return loads_json(value)
    except ValueError:
        return f"<unreadable {column.name}>"


def _executor_config(raw: Any) -> Any:
    from api_plugin.store.safe_pickle import UnreadableConf, loads_conf

    try:
        return loads_conf(bytes(raw)) if isinstance(raw, bytes | bytearray | memoryview) else raw
    except UnreadableConf:
        return "<unreadable executor_config>"


def _run_repr(mapping: Any) -> str:
    return (
        f"<DagRun {mapping['model_dag_id']} @ {mapping['run_date']}: {mapping['run_run_id']}, "
        f"state:{mapping['run_state']}, queued_at: {mapping.get('run_queued_at')}. "
        f"externally triggered: {bool(mapping['run_external'])}>"
    )
