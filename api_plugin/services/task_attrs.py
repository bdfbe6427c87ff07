"""A task's public attributes, rebuilt from its serialized form without Airflow.

Airflow's endpoint answers ``vars(task)`` minus private names. The serializer leaves out
every attribute still at its default, so the defaults of the flavor's BaseOperator are
laid under the serialized fields, and the graph fields are derived from the DAG.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from api_plugin.store import AIRFLOW1, DagSpec
from api_plugin.store.serialized import TaskSpec

_COMMON_DEFAULTS: dict[str, Any] = {
    "owner": "airflow",
    "email": None,
    "email_on_retry": True,
    "email_on_failure": True,
    "execution_timeout": None,
    "on_execute_callback": None,
    "on_failure_callback": None,
    "on_success_callback": None,
    "on_retry_callback": None,
    "start_date": None,
    "end_date": None,
    "executor_config": {},
    "run_as_user": None,
    "retries": 0,
    "queue": "default",
    "pool": "default_pool",
    "pool_slots": 1,
    "sla": None,
    "trigger_rule": "all_success",
    "depends_on_past": False,
    "wait_for_downstream": False,
    "retry_delay": timedelta(seconds=300),
    "retry_exponential_backoff": False,
    "max_retry_delay": None,
    "params": {},
    "priority_weight": 1,
    "weight_rule": "downstream",
    "resources": None,
    "do_xcom_push": True,
    "doc_md": None,
    "doc_json": None,
    "doc_yaml": None,
    "doc_rst": None,
    "doc": None,
    "inlets": [],
    "outlets": [],
    "template_fields": [],
    "template_ext": [],
    "ui_color": "#fff",
    "ui_fgcolor": "#000",
}

DEFAULTS: dict[str, dict[str, Any]] = {
    AIRFLOW1: {**_COMMON_DEFAULTS, "task_concurrency": None, "executor_config": {}},
    "airflow2": {
        **_COMMON_DEFAULTS,
        "on_skipped_callback": None,
        "executor": None,
        "ignore_first_depends_on_past": True,
        "wait_for_past_depends_before_skipping": False,
        "max_active_tis_per_dag": None,
        "max_active_tis_per_dagrun": None,
        "multiple_outputs": False,
        "map_index_template": None,
        "is_setup": False,
        "is_teardown": False,
        "on_failure_fail_dagrun": False,
        "template_fields_renderers": {},
        "start_trigger_args": None,
        "start_from_trigger": False,
        "allow_nested_operators": True,
    },
}

#: Serialized names that are not attributes of the same name on a live operator.
_RENAMED = {"_downstream_task_ids": "downstream_task_ids", "_inlets": "inlets",
            "_outlets": "outlets"}


def task_attributes(flavor: str, spec: DagSpec, task: TaskSpec) -> dict[str, Any]:
    """Attribute name -> Python value, as ``vars(task)`` would hold them."""
    attrs: dict[str, Any] = dict(DEFAULTS.get(flavor, DEFAULTS["airflow2"]))
    for name in task.fields:
        public = _RENAMED.get(name, name)
        if public.startswith("_"):
            continue
        attrs[public] = task.get(name)
    attrs["task_id"] = task.task_id
    attrs["downstream_task_ids"] = set(task.downstream)
    attrs["upstream_task_ids"] = set(task.upstream)
    if flavor == AIRFLOW1:
        attrs["inlets"], attrs["outlets"] = [], []
    return attrs
