"""A DAG's head: its ``dag`` row's state and its serialized definition's hash, the row
every operation that needs the DAG's definition reads first; and, on PostgreSQL, the
signature that lets a trigger's one-statement write check that the head it was built
from is still the DAG's.

A trigger needs the head to build its rows (the definition, the state a flavor reads,
such as 3.x's ``bundle_version``), and used to read it in a round trip of its own before
the write. A store on PostgreSQL keeps the last head each DAG's trigger saw
(``Store.heads``); the next trigger builds its rows from that head and its write
carries the head's signature, checked by the same statement (``unchanged_head_query``):
one round trip, and one statement for a server to parse and plan (behind PgBouncer,
where nothing can be prepared, planning is most of the server's work). A head that
changed in between (a new definition, a stale or deleted DAG, any state column) makes
the statement write nothing and say so; the trigger then reads the head afresh, as it
always did.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, bindparam, cast, func, literal_column, select
from sqlalchemy.sql import ColumnElement, Select

from api_plugin.store.tables import Tables

#: ``dag`` columns a flavor may need for a trigger (those the database has).
DAG_STATE_COLUMNS = ("is_stale", "has_import_errors", "allowed_run_types", "bundle_version")

#: The parameters of ``unchanged_head_query``.
HEAD_DAG_ID, HEAD_SIGNATURE = "head_dag_id", "head_signature"


def dag_head_query(t: Tables) -> Select[Any]:
    """The DAG's head: its ``dag`` row's id and state columns, its serialized
    definition's hash (``sd_dag_id`` None when it has none); no row for an unknown DAG."""
    dag, sd = t.dag, t.serialized_dag
    state = [dag.c[name] for name in DAG_STATE_COLUMNS if name in dag.c]
    return (
        select(dag.c.dag_id, *state, sd.c.dag_hash, sd.c.dag_id.label("sd_dag_id"))
        .select_from(dag.outerjoin(sd, t.serialized_of(dag.c.dag_id)))
        .where(dag.c.dag_id == bindparam("dag_id"))
        .limit(1)
    )


def signed_dag_head_query(t: Tables) -> Select[Any]:
    """``dag_head_query`` with the head's signature (PostgreSQL only)."""
    return dag_head_query(t).add_columns(_signature(t).label("head_signature"))


def unchanged_head_query(t: Tables) -> Select[Any]:
    """A row when the DAG's head still has the signature ``head_signature``, none when
    not (PostgreSQL only): the condition of a trigger's write built from a kept head.
    No LIMIT: its value would be a parameter the write does not pass.

    The definition's hash is a scalar subquery here, not the read's outer join: the same
    value (null when the DAG has no definition; at most one row, the definition's key
    being the DAG, or in 3.x its version), and about 20 µs less for the server to plan
    each time, which it does on every trigger behind a pooler that keeps no prepared
    statements."""
    dag, sd = t.dag, t.serialized_dag
    dag_hash = select(sd.c.dag_hash).where(t.serialized_of(dag.c.dag_id)).scalar_subquery()
    return (
        select(literal_column("1"))
        .select_from(dag)
        .where(dag.c.dag_id == bindparam(HEAD_DAG_ID, type_=dag.c.dag_id.type),
               _signature(t, dag_hash) == bindparam(HEAD_SIGNATURE, type_=Text))
    )


def _signature(t: Tables, dag_hash: ColumnElement[Any] | None = None) -> ColumnElement[Any]:
    """Everything of the head a trigger's rows depend on, as the server writes it as
    text: ``ROW(dag_hash, state columns...)``. Comparing the text compares every column
    whatever its type (``json`` has no equality), a null included. ``dag_hash`` is the
    definition's hash as the query finds it (by default the joined ``serialized_dag``'s)."""
    dag, sd = t.dag, t.serialized_dag
    state = [dag.c[name] for name in DAG_STATE_COLUMNS if name in dag.c]
    return cast(func.row(sd.c.dag_hash if dag_hash is None else dag_hash, *state), Text)
