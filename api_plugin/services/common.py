"""Pieces every operation shares: finding a DAG, rendering dates, runs and values."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.sql import Select

from api_plugin.errors import NotFound
from api_plugin.store import DagSpec, Store
from api_plugin.store.tables import Tables


def dag_not_in_model(dag_id: str) -> NotFound:
    return NotFound(f"Dag id {dag_id} not found in DagModel")


def require_dag_spec(store: Store, dag_id: str) -> DagSpec:
    """The DAG's serialized definition, or the reference's 404s."""
    return require_dag(store, dag_id)[0]


def require_dag(store: Store, dag_id: str) -> tuple[DagSpec, Any]:
    """The DAG's serialized definition and its ``dag`` row's state, or the 404s.

    One prepared query checks the DAG table and the serialized row's hash together; the
    parsed definition then comes from the per-process cache while that hash is unchanged.
    """
    row = store.prepared(_dag_head_query).first(dag_id=dag_id)
    if row is None:
        raise dag_not_in_model(dag_id)
    spec = store.dag_spec_by_hash(dag_id, row.dag_hash) if row.sd_dag_id is not None else None
    if spec is None:
        raise NotFound(f"Dag id {dag_id} not found")
    return spec, row


#: ``dag`` columns a flavor may need for a trigger (those the database has).
_DAG_STATE_COLUMNS = ("is_stale", "has_import_errors", "allowed_run_types", "bundle_version")


def _dag_head_query(t: Tables) -> Select[Any]:
    dag, sd = t.dag, t.serialized_dag
    state = [dag.c[name] for name in _DAG_STATE_COLUMNS if name in dag.c]
    return (
        select(dag.c.dag_id, *state, sd.c.dag_hash, sd.c.dag_id.label("sd_dag_id"))
        .select_from(dag.outerjoin(sd, t.serialized_of(dag.c.dag_id)))
        .where(dag.c.dag_id == bindparam("dag_id"))
        .limit(1)
    )


def shown_date(store: Store, when: datetime) -> str:
    """A date inside an error text, as the flavor's webserver writes it there."""
    return store.flavor.shown_date(when)


def dag_run_url(store: Store, dag_id: str, run_date: datetime | None, run_id: str,
                base: str = "") -> str:
    """The Airflow UI's link to a run, as the flavor's webserver builds it."""
    return store.flavor.run_url(dag_id, run_date, run_id, base)


def py_str(value: Any) -> str:
    """``str(value)`` as Python (and so Airflow) renders it, with no memory addresses.

    Objects whose default repr carries an address are named by their type instead, so
    an answer never depends on the process that produced it.
    """
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float | datetime | timedelta):
        return str(value)
    if isinstance(value, set | frozenset):
        # A set's str() order depends on the process's hash seed: sort it.
        return "{" + ", ".join(sorted(map(repr, value))) + "}" if value else "set()"
    if isinstance(value, list | tuple | dict):
        text = str(value)
        return text if " at 0x" not in text else repr(type(value).__name__)
    text = str(value)
    if " at 0x" in text or "object at" in text:
        return f"<{type(value).__name__}>"
    return text
