"""Triggering a DAG run: validation, the run row and its task instances, in one transaction.

The rows written are the ones Airflow's own ``create_dagrun`` writes for the flavor, so
Airflow's scheduler picks the run up and runs it as if its own webserver had made it.
"""

from __future__ import annotations

import getpass
import json
import pickle
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, bindparam, column, func, insert, or_, select, table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from api_plugin.dates import bad_date_error, parse_datetime, to_utc, utcnow
from api_plugin.errors import BadRequest, Conflict
from api_plugin.services.common import require_dag_spec
from api_plugin.services.intervals import manual_data_interval
from api_plugin.store import AIRFLOW1, DagSpec, Store
from api_plugin.store.safe_pickle import dumps_conf
from api_plugin.store.tables import Tables

CONF_NOT_A_DICT = "Dag Run conf must be a dictionary object, other types are not supported"
MAX_RUN_ID_LENGTH = 250
_TRUE_WORDS = {"true", "t", "y", "yes", "1"}
_FALSE_WORDS = {"false", "f", "n", "no", "0"}
try:
    _UNIXNAME = getpass.getuser()
except (KeyError, OSError):  # no passwd entry in some containers
    _UNIXNAME = "airflow"
_EMPTY_EXECUTOR_CONFIG = pickle.dumps({}, protocol=4)


@dataclass(frozen=True)
class TriggerRequest:
    """A validated trigger: what the client asked for, in Python values."""

    dag_id: str
    run_id: str | None
    conf: dict[str, Any] | None
    execution_date: datetime | None
    replace_microseconds: bool


def parse_trigger(
    dag_id: str,
    run_id: Any = None,
    conf: Any = None,
    execution_date: Any = None,
    replace_microseconds: Any = None,
) -> TriggerRequest:
    """Check the trigger's fields; a bad one is a 400 naming it."""
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
        raise BadRequest("run_id must be a non-empty string")
    if isinstance(run_id, str) and len(run_id) > MAX_RUN_ID_LENGTH:
        raise BadRequest(f"run_id must be at most {MAX_RUN_ID_LENGTH} characters")
    if isinstance(conf, str):
        try:
            conf = json.loads(conf) if conf.strip() else None
        except ValueError:
            raise BadRequest(CONF_NOT_A_DICT) from None
    if conf is not None and not isinstance(conf, dict):
        raise BadRequest(CONF_NOT_A_DICT)
    when: datetime | None
    if execution_date is None or isinstance(execution_date, datetime):
        when = execution_date
        if when is not None and when.tzinfo is None:
            when = to_utc(when)
    else:
        when = parse_datetime(execution_date)
    if replace_microseconds is None:
        replace = when is None
    elif isinstance(replace_microseconds, bool):
        replace = replace_microseconds
    elif isinstance(replace_microseconds, str) and replace_microseconds.lower() in _TRUE_WORDS:
        replace = True
    elif isinstance(replace_microseconds, str) and replace_microseconds.lower() in _FALSE_WORDS:
        replace = False
    else:
        raise BadRequest(
            f"replace_microseconds must be true or false, not {replace_microseconds!r}"
        )
    return TriggerRequest(dag_id, run_id, conf or None, when, replace)


def trigger_dag_run(store: Store, request: TriggerRequest) -> dict[str, str]:
    """Create the run and its task instances; the reference's answer or its error."""
    now = utcnow()
    defaulted = request.execution_date is None
    when = now if defaulted else request.execution_date
    assert when is not None
    if request.replace_microseconds:
        when = when.replace(microsecond=0)
    run_id = request.run_id or f"manual__{when.isoformat()}"
    # Everything that needs no lock is done before the write transaction, which then
    # only checks for a duplicate and inserts: writers queue for as short as possible.
    spec = require_dag_spec(store, request.dag_id)
    _check_start_date(spec, when)
    run_row = _run_row(store, spec, run_id, when, request.conf, now)
    ti_table = store.tables.task_instance
    ti_rows = [{k: v for k, v in row.items() if k in ti_table.c}
               for row in task_instance_rows(store.flavor, spec, run_id, when)]
    try:
        # Optimistic: the unique constraints on (dag_id, run_id) and (dag_id,
        # execution_date) that both Airflow schemas have decide duplicates, atomically.
        run_insert = store.prepared_insert(
            "dag_run", lambda t: _run_insert(t, store.has_log_template), tuple(run_row))
        ti_insert = store.prepared_insert("task_instance", lambda t: insert(t.task_instance),
                                          tuple(ti_rows[0]) if ti_rows else ())
        # A server with sequences (PostgreSQL) spends an id on every failed INSERT, so
        # there the duplicate is looked for first, as Airflow does, and runs get the ids
        # Airflow would give them; the constraint still decides a race. SQLite spends no
        # rowid on a failed INSERT and serialises writers: the INSERT alone decides.
        clash = (None if store.engine.dialect.name == "sqlite"
                 else store.prepared("run_clash", _run_clash_query))
        with store.raw_write() as cursor:
            if clash is not None and clash.finds_on(cursor, dag_id=request.dag_id,
                                                    run_id=run_id, when=when):
                raise _duplicate_error(store, request.dag_id, run_id, when)
            run_insert.execute(cursor, run_row)
            ti_insert.executemany(cursor, ti_rows)
    except IntegrityError:
        if store.prepared("run_clash", _run_clash_query).first(
                dag_id=request.dag_id, run_id=run_id, when=when) is not None:
            raise _duplicate_error(store, request.dag_id, run_id, when) from None
        raise
    message = _created_message(store, request.dag_id, run_id, when, defaulted, run_row)
    return {"message": message, "execution_date": when.isoformat(), "run_id": run_id}


def _check_start_date(spec: DagSpec, when: datetime) -> None:
    start = spec.default_args.get("start_date")
    if isinstance(start, datetime) and to_utc(when) < start:
        raise BadRequest(
            f"The execution_date [{when.isoformat()}] should be >= start_date "
            f"[{start.isoformat()}] from DAG's default_args"
        )


def _duplicate_error(store: Store, dag_id: str, run_id: str, when: datetime) -> Conflict:
    if store.flavor == AIRFLOW1:
        return Conflict(f"Run id {run_id} already exists for dag id {dag_id}")
    return Conflict(f"A DAG Run already exists for DAG {dag_id} at {when} with run id {run_id}")


def _run_clash_query(t: Tables) -> Select[Any]:
    dr = t.dag_run
    return (
        select(dr.c.id)
        .where(dr.c.dag_id == bindparam("dag_id"),
               or_(dr.c.run_id == bindparam("run_id"), dr.c.execution_date == bindparam("when")))
        .limit(1)
    )


def _run_row(
    store: Store,
    spec: DagSpec,
    run_id: str,
    when: datetime,
    conf: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The dag_run row Airflow's ``create_dagrun`` writes for the flavor."""
    dr = store.tables.dag_run
    values: dict[str, Any] = {
        "dag_id": spec.dag_id,
        "run_id": run_id,
        "execution_date": when,
        "external_trigger": True,
    }
    if store.flavor == AIRFLOW1:
        values.update(state="running", start_date=now,
                      conf=dumps_conf(conf) if conf is not None else None)
    else:
        start, end = manual_data_interval(spec.schedule_interval, when, spec.timezone)
        values.update(
            state="queued",
            queued_at=now,
            run_type="manual",
            conf=dumps_conf(conf or {}),
            data_interval_start=start,
            data_interval_end=end,
            dag_hash=spec.dag_hash,
            updated_at=now,
            clear_number=0,
        )
    return {k: v for k, v in values.items() if k in dr.c}


def _run_insert(t: Tables, has_log_template: bool) -> Insert:
    """The dag_run INSERT; on airflow2 it fills ``log_template_id`` itself with the
    newest template, in the same statement."""
    if "log_template_id" in t.dag_run.c and has_log_template:
        return insert(t.dag_run).values(
            log_template_id=select(func.max(column("id"))).select_from(table("log_template"))
            .scalar_subquery())
    return insert(t.dag_run)


def task_instance_rows(
    flavor: str, spec: DagSpec, run_id: str, when: datetime
) -> list[dict[str, Any]]:
    """The task_instance rows Airflow creates for a new run (state NULL, try 0)."""
    rows = []
    utc_when = to_utc(when)
    for task in spec.tasks.values():
        start, end = task.get("start_date"), task.get("end_date")
        if start is not None and start > utc_when:
            continue
        if end is not None and utc_when > end:
            continue
        row: dict[str, Any] = {
            "task_id": task.task_id,
            "dag_id": spec.dag_id,
            "state": None,
            "try_number": 0,
            "max_tries": int(task.get("retries", spec.default_args.get("retries", 0)) or 0),
            "hostname": "",
            "unixname": _UNIXNAME,
            "pool": task.get("pool") or "default_pool",
            "pool_slots": int(task.get("pool_slots", 1) or 1),
            "queue": task.get("queue") or "default",
            "priority_weight": priority_weight(spec, task.task_id),
            "operator": task.task_type,
            "executor_config": _EMPTY_EXECUTOR_CONFIG,
        }
        if flavor == AIRFLOW1:
            row["execution_date"] = utc_when
        else:
            row.update(
                run_id=run_id,
                map_index=-1,
                custom_operator_name=task.get("_operator_name", task.get("custom_operator_name")),
                executor=task.get("executor"),
                task_display_name=task.get("task_display_name") or task.task_id,
                updated_at=utcnow(),
            )
        rows.append(row)
    return rows


def priority_weight(spec: DagSpec, task_id: str) -> int:
    """The task's effective weight under its weight rule, as Airflow computes it."""
    task = spec.tasks[task_id]
    own = int(task.get("priority_weight", 1) or 0)
    rule = str(task.get("weight_rule", "downstream") or "downstream").lower()
    if rule == "absolute":
        return own
    related = spec.upstream_closure(task_id) if rule == "upstream" else spec.downstream_closure(
        task_id
    )
    return own + sum(int(spec.tasks[t].get("priority_weight", 1) or 0) for t in related)


def _created_message(
    store: Store,
    dag_id: str,
    run_id: str,
    when: datetime,
    defaulted: bool,
    row: dict[str, Any],
) -> str:
    if store.flavor == AIRFLOW1:
        shown = str(to_utc(when)) if defaulted else when.isoformat()
        return f"Created <DagRun {dag_id} @ {shown}: {run_id}, externally triggered: True>"
    return (
        f"Created <DagRun {dag_id} @ {when}: {run_id}, state:queued, "
        f"queued_at: {row.get('queued_at')}. externally triggered: True>"
    )


__all__ = ["TriggerRequest", "bad_date_error", "parse_trigger", "trigger_dag_run"]
