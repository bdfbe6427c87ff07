"""Pieces every operation shares: finding a DAG, rendering dates, runs and values."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from api_plugin.errors import NotFound
from api_plugin.store import DagSpec, Store
from api_plugin.store.dag_head import dag_head_query, signed_dag_head_query


def dag_not_in_model(dag_id: str) -> NotFound:
    return NotFound(f"Dag id {dag_id} not found in DagModel")


def require_dag_spec(store: Store, dag_id: str) -> DagSpec:
    """The DAG's serialized definition, or the reference's 404s."""
    return require_dag(store, dag_id)[0]


def require_dag(store: Store, dag_id: str, *, signed: bool = False) -> tuple[DagSpec, Any]:
    """The DAG's serialized definition and its head (``store/dag_head.py``: the ``dag``
    row's state, with its signature when ``signed``), or the 404s.

    One prepared query checks the DAG table and the serialized row's hash together; the
    parsed definition then comes from the per-process cache while that hash is unchanged.
    """
    row = store.prepared(signed_dag_head_query if signed else dag_head_query).first(
        dag_id=dag_id)
    if row is None:
        raise dag_not_in_model(dag_id)
    spec = store.dag_spec_by_hash(dag_id, row.dag_hash) if row.sd_dag_id is not None else None
    if spec is None:
        raise NotFound(f"Dag id {dag_id} not found")
    return spec, row


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
