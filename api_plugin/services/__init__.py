"""The API's operations, with no HTTP in them: the one list of what the API does.

Each operation is a function of its subject's module taking the ``Store`` first and
plain Python values after it; it checks them and returns the JSON-ready answer, or
raises an ``api_plugin.errors.ApiError`` carrying the status and text. The views call
them directly; every client reaches them through the views.
"""

from __future__ import annotations

from api_plugin.services.about import health, info
from api_plugin.services.dags import delete_dag, get_dag_code, get_paused, set_paused
from api_plugin.services.lineage import get_lineage
from api_plugin.services.pools import create_pool, delete_pool, get_pool, get_pools
from api_plugin.services.runs import (
    get_dag_run_state,
    get_dag_runs,
    latest_runs,
    stream_dag_runs,
)
from api_plugin.services.tasks import get_task, get_task_instance
from api_plugin.services.trigger import trigger_dag

__all__ = [
    "create_pool",
    "delete_dag",
    "delete_pool",
    "get_dag_code",
    "get_dag_run_state",
    "get_dag_runs",
    "get_lineage",
    "get_paused",
    "get_pool",
    "get_pools",
    "get_task",
    "get_task_instance",
    "health",
    "info",
    "latest_runs",
    "set_paused",
    "stream_dag_runs",
    "trigger_dag",
]
