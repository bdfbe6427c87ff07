"""Pieces every operation shares: finding a DAG, rendering dates, runs and values."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from sqlalchemy import bindparam, select
from sqlalchemy.sql import Select

from api_plugin.dates import to_utc
from api_plugin.errors import NotFound
from api_plugin.store import AIRFLOW1, DagSpec, Store
from api_plugin.store.tables import Tables


def dag_not_in_model(dag_id: str) -> NotFound:
    return NotFound(f"Dag id {dag_id} not found in DagModel")


def require_dag_spec(store: Store, dag_id: str) -> DagSpec:
    """The DAG's serialized definition, or the reference's 404s.

    One prepared query checks the DAG table and the serialized row's hash together; the
    parsed definition then comes from the per-process cache while that hash is unchanged.
    """
    row = store.prepared("dag_head", _dag_head_query).first(dag_id=dag_id)
    if row is None:
        raise dag_not_in_model(dag_id)
    spec = store.dag_spec_by_hash(dag_id, row.dag_hash) if row.sd_dag_id is not None else None
    if spec is None:
        raise NotFound(f"Dag id {dag_id} not found")
    return spec


def _dag_head_query(t: Tables) -> Select[Any]:
    dag, sd = t.dag, t.serialized_dag
    return (
        select(dag.c.dag_id, sd.c.dag_hash, sd.c.dag_id.label("sd_dag_id"))
        .select_from(dag.outerjoin(sd, sd.c.dag_id == dag.c.dag_id))
        .where(dag.c.dag_id == bindparam("dag_id"))
        .limit(1)
    )


def shown_date(store: Store, when: datetime) -> str:
    """A date inside an error text, as the flavor's webserver writes it there.

    Both references format the parsed request date with ``str()``: Airflow 2 parses
    with pendulum 3, whose ``str()`` puts a space between date and time; Airflow 1.10's
    pendulum 1 wrote ISO 8601 with a ``T``. The client's offset is kept either way.
    """
    return when.isoformat() if store.flavor == AIRFLOW1 else str(when)


def dag_run_url(store: Store, dag_id: str, execution_date: datetime | None, base: str = "") -> str:
    """The Airflow UI link of a run, as Flask's ``url_for`` builds it in the reference:
    the stored (UTC) date through ``str()``, form-encoded (space as ``+``)."""
    return _url_prefix(store.flavor, dag_id, base) + _form_date(execution_date)


@lru_cache(maxsize=4096)
def _url_prefix(flavor: str, dag_id: str, base: str) -> str:
    if flavor == AIRFLOW1:
        return f"{base}/admin/airflow/graph?dag_id={quote(dag_id, safe='')}&execution_date="
    return f"{base}/dags/{quote(dag_id, safe='')}/graph?execution_date="


def _form_date(when: datetime | None) -> str:
    """``quote_plus(str(to_utc(when)))`` for the few characters a datetime's str() has."""
    if when is None:
        return "None"
    return str(to_utc(when)).replace("+", "%2B").replace(":", "%3A").replace(" ", "+")


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
