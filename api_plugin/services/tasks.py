"""Tasks and task instances: the task's public attributes, an instance's columns."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Text, bindparam, cast, select
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import BindParameter

from api_plugin.dates import parse_datetime
from api_plugin.errors import NotFound
from api_plugin.services.common import dag_not_in_model, py_str, require_dag_spec, shown_date
from api_plugin.services.runs import run_not_found
from api_plugin.store import Store
from api_plugin.store.decode_budget import loads_json
from api_plugin.store.tables import Tables
from api_plugin.web.rendering import Rendered

#: The run's columns selected beside a task instance, when the database has them.
_RUN_COLUMNS = ("queued_at", "external_trigger", "run_type")


def task_not_found(dag_id: str, task_id: str) -> NotFound:
    return NotFound(f"Task {task_id} not found in dag {dag_id}")


def get_task(store: Store, dag_id: str, task_id: str) -> dict[str, str]:
    """The task's public attributes, each rendered as ``str()`` renders it.

    The answer depends on the DAG's definition alone, so it is made (and its JSON
    encoded) once per task and kept with the parsed definition (``DagSpec.derived``),
    which goes when the DAG's hash changes: a request then costs the one query that
    checks the hash, not the rendering of some sixty attributes."""
    spec = require_dag_spec(store, dag_id)
    key = ("task answer", task_id)
    answer: Rendered | None = spec.derived.get(key)
    if answer is None:
        task = spec.tasks.get(task_id)
        if task is None:
            raise task_not_found(dag_id, task_id)
        answer = spec.derived[key] = Rendered(
            {name: py_str(value)
             for name, value in store.flavor.task_attributes(spec, task).items()})
    return answer


def get_task_instance(
    store: Store, dag_id: str, execution_date: Any, task_id: str
) -> dict[str, str]:
    """The instance's columns as strings; the run and the instance found in one query.
    An instance polled again unchanged is answered as made the last time (``kept.py``)."""
    when = parse_datetime(execution_date) if isinstance(execution_date, str) else execution_date
    head = store.prepared(_task_instance_query).first(
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
    if head.ti__task_id is None:
        raise NotFound(f"Task {task_id} instance for date {shown_date(store, when)} not found")
    key = ("task instance", dag_id, when, task_id)
    kept: Rendered | None = store.answers.get(key, head)
    if kept is not None:  # the same row as last time: the same answer
        return kept
    answer = Rendered(_answer_of(store, head))
    store.answers.put(key, head, answer, len(answer.encoded))
    return answer


def _answer_of(store: Store, head: Any) -> dict[str, str]:
    """The instance's answer from ``_task_instance_query``'s row, and from it alone
    (which is why it may be kept with that row: ``store/kept.py``)."""
    mapping = head._asdict()
    columns = {c.name: _decoded(c, mapping[f"ti__{c.name}"])
               for c in store.tables.task_instance.c}
    columns["executor_config"] = _executor_config(columns.get("executor_config"))
    run = {"dag_id": mapping["model_dag_id"], "date": mapping["run_date"],
           "run_id": mapping["run_run_id"], "state": mapping["run_state"],
           **{name: mapping.get(f"run_{name}") for name in _RUN_COLUMNS}}
    answer = store.flavor.task_instance_answer(columns, run)
    return {key: py_str(value) for key, value in answer.items()}


def _task_instance_query(t: Tables) -> Select[Any]:
    """The DAG, its serialized hash, the run at a date and one of its task instances.

    PostgreSQL plans this query on every request (no server-side prepares, for
    PgBouncer), and at a million runs planning was most of its cost: a join clause
    between two large tables (``task_instance.run_id = dag_run.run_id``, each side's
    ``dag_id``) has the planner compare both columns' statistics (most common values,
    index ends). So every outer join here is on bound values only: the DAG's id (the
    DAG's row is the one with it), the date, and the run's key found by a scalar
    subquery (``Tables.instances_of_run_at``). Same rows, same errors; planning at
    10,000 DAGs / 1M runs took 0.25 ms instead of 0.63 ms, no more than at 10 DAGs.
    """
    dag, sd, dr, ti = t.dag, t.serialized_dag, t.dag_run, t.task_instance
    dag_id: BindParameter[Any] = bindparam("dag_id")
    when: BindParameter[Any] = bindparam("when")
    run_columns = [dr.c.id.label("run_pk"), dr.c.run_id.label("run_run_id"),
                   dr.c.state.label("run_state"), t.run_date.label("run_date"),
                   *[dr.c[name].label(f"run_{name}") for name in _RUN_COLUMNS if name in dr.c]]
    return (
        select(dag.c.dag_id.label("model_dag_id"), sd.c.dag_hash,
               sd.c.dag_id.label("sd_dag_id"), *run_columns,
               *[_as_stored(c).label(f"ti__{c.name}") for c in ti.c])
        .select_from(
            dag.outerjoin(sd, t.serialized_of(dag_id))
            .outerjoin(dr, (dr.c.dag_id == dag_id) & (t.run_date == when))
            .outerjoin(ti, t.instances_of_run_at(dag_id, when)
                       & (ti.c.task_id == bindparam("task_id")))
        )
        .where(dag.c.dag_id == dag_id)
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
