"""The statements of a trigger's write: the run's INSERT, its task instances', the audit
log row's, and the query that finds a run clashing with a new one.

The rows themselves come from the flavor (``Flavor.run_row`` and friends); these are
only the statements, each built from the store's tables and compiled once per set of
keys (``Store.insert_run`` runs them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, bindparam, column, func, insert, or_, select, table
from sqlalchemy.sql import Select

from api_plugin.store.tables import Tables


def run_clash_query(t: Tables) -> Select[Any]:
    """A run of ``dag_id`` with the same ``run_id`` or the same date, if there is one."""
    dr = t.dag_run
    return (
        select(dr.c.id)
        .where(dr.c.dag_id == bindparam("dag_id"),
               or_(dr.c.run_id == bindparam("run_id"), t.run_date == bindparam("when")))
        .limit(1)
    )


def run_insert(t: Tables, has_log_template: bool) -> Insert:
    """The dag_run INSERT; where the table has ``log_template_id`` and the database a
    ``log_template`` table, it fills the newest template's id in the same statement."""
    dr = t.dag_run
    if "log_template_id" in dr.c and has_log_template:
        newest: Select[Any] = select(func.max(column("id"))).select_from(table("log_template"))
        return insert(dr).values(log_template_id=newest.scalar_subquery())
    return insert(dr)


def task_instance_insert(t: Tables) -> Insert:
    return insert(t.task_instance)


def log_insert(t: Tables) -> Insert:
    assert t.log is not None, "only called for a flavor that writes an audit row"
    return insert(t.log)
