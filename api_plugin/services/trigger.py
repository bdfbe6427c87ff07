"""Triggering a DAG run: validation, the run row and its task instances, in one transaction.

The rows written are the ones the flavor's Airflow writes when its own API triggers a
run (see ``api_plugin.flavors``), so Airflow's scheduler picks the run up and runs it as
if its own webserver had made it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from api_plugin.dates import bad_date_error, parse_datetime, to_utc, utcnow
from api_plugin.errors import BadRequest
from api_plugin.flavors import TriggerInput
from api_plugin.run_ids import DEFAULT_ALLOWED_PATTERN, RunIdRule, check_run_id
from api_plugin.services.common import require_dag
from api_plugin.store import DagSpec, Store

CONF_NOT_A_DICT = "Dag Run conf must be a dictionary object, other types are not supported"
MAX_RUN_ID_LENGTH = 250
_TRUE_WORDS = {"true", "t", "y", "yes", "1"}
_FALSE_WORDS = {"false", "f", "n", "no", "0"}


@dataclass(frozen=True)
class TriggerRequest:
    """A validated trigger: what the client asked for, in Python values."""

    dag_id: str
    run_id: str | None
    conf: dict[str, Any] | None
    execution_date: datetime | None
    replace_microseconds: bool


def trigger_dag(
    store: Store,
    dag_id: str,
    run_id: Any = None,
    conf: Any = None,
    execution_date: Any = None,
    replace_microseconds: Any = None,
    *,
    user: str | None = None,
    allowed_run_id_pattern: str | None = None,
) -> dict[str, str]:
    """The trigger operation: check the fields, a chosen run id against the flavor's
    Airflow rule (``[scheduler] allowed_run_id_pattern``, or Airflow's default), then
    write the run as ``user``."""
    request = parse_trigger(dag_id, run_id, conf, execution_date, replace_microseconds)
    generated = store.flavor.generated_run_id_pattern
    if request.run_id is not None and generated is not None:
        rule = RunIdRule(allowed_run_id_pattern or DEFAULT_ALLOWED_PATTERN, generated)
        check_run_id(request.run_id, rule)
    return trigger_dag_run(store, request, user)


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


def trigger_dag_run(store: Store, request: TriggerRequest, user: str | None = None
                    ) -> dict[str, str]:
    """Create the run, its task instances (and, where the flavor's API writes one, the
    audit log row) in one transaction; the reference's answer or its error."""
    now = utcnow()
    defaulted = request.execution_date is None
    when = now if defaulted else request.execution_date
    assert when is not None
    if request.replace_microseconds:
        when = when.replace(microsecond=0)
    run_id = request.run_id or f"manual__{when.isoformat()}"
    asked = TriggerInput(dag_id=request.dag_id, run_id=run_id, when=when, conf=request.conf,
                         now=now, user=user, defaulted=defaulted,
                         run_id_given=request.run_id is not None)
    kept = store.heads.get(request.dag_id)
    if kept is not None:
        answer = _write_from_kept_head(store, asked, kept)
        if answer is not None:
            return answer
    # Everything that needs no lock is done before the write transaction, which then
    # only checks for a duplicate and inserts: writers queue for as short as possible.
    signed = store.is_postgresql
    spec, head = require_dag(store, request.dag_id, signed=signed)
    store.flavor.check_triggerable(head._asdict())
    _check_start_date(spec, when)
    if signed:
        store.heads.put(request.dag_id, head)
    answer = _write(store, asked, spec, head, checks_head=False)
    assert answer is not None, "a write that checks no head has an answer"
    return answer


def _write_from_kept_head(store: Store, asked: TriggerInput, head: Any
                          ) -> dict[str, str] | None:
    """The trigger written from the DAG's kept head (``Store.heads``), in the one
    statement that also checks the head is still the DAG's; None when it could not be
    (the head changed, or its definition is no longer kept, or it would refuse this
    trigger's date: the fresh head has the last word), and nothing was written."""
    spec = store.dag_spec_by_hash(asked.dag_id, head.dag_hash)
    if spec is None or _start_date_error(spec, asked.when) is not None:
        return None
    answer = _write(store, asked, spec, head, checks_head=True)
    if answer is None:
        store.heads.pop(asked.dag_id)
    return answer


def _write(store: Store, asked: TriggerInput, spec: DagSpec, head: Any, *,
           checks_head: bool) -> dict[str, str] | None:
    """Build the rows from ``spec`` and the DAG's ``head`` and write them: the answer,
    the flavor's clash error, or (``checks_head``) None when the head changed."""
    flavor, t = store.flavor, store.tables
    dag_state = head._asdict()
    run_row = _known(flavor.run_row(spec, asked, dag_state), t.dag_run)
    ti_rows = [_known(row, t.task_instance) for row in flavor.task_instance_rows(spec, asked)]
    audit, log_table = flavor.audit_row(asked), t.log
    audit_row = _known(audit, log_table) if audit and log_table is not None else None
    written = store.insert_run(
        run_row, ti_rows, audit_row, dag_id=asked.dag_id, run_id=asked.run_id,
        when=asked.when, head_signature=head.head_signature if checks_head else None)
    if written is None:
        return None
    if not written:
        raise flavor.duplicate_error(asked.dag_id, asked.run_id, asked.when)
    message = flavor.created_message(asked, run_row)
    return {"message": message, "execution_date": asked.when.isoformat(),
            "run_id": asked.run_id}


def _known(row: dict[str, Any], table: Any) -> dict[str, Any]:
    """The row's values for the columns ``table`` has in this database (the row itself
    when it has no others, as it mostly has: that check is one C-level set test)."""
    names = _column_names(table)
    if names.issuperset(row):
        return row
    return {k: v for k, v in row.items() if k in names}


@lru_cache(maxsize=64)
def _column_names(table: Any) -> frozenset[str]:
    """``table``'s column names, as a set (a column collection's lookup costs more)."""
    return frozenset(table.c.keys())


def _check_start_date(spec: DagSpec, when: datetime) -> None:
    error = _start_date_error(spec, when)
    if error is not None:
        raise error


def _start_date_error(spec: DagSpec, when: datetime) -> BadRequest | None:
    """The 400 of a date before the DAG's ``default_args`` start date, if it is."""
    start = spec.default_args.get("start_date")
    if isinstance(start, datetime) and to_utc(when) < start:
        return BadRequest(
            f"The execution_date [{when.isoformat()}] should be >= start_date "
            f"[{start.isoformat()}] from DAG's default_args"
        )
    return None


__all__ = ["TriggerRequest", "bad_date_error", "parse_trigger", "trigger_dag_run"]
