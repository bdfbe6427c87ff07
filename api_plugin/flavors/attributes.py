"""A task's public attributes, rebuilt from its serialized form without Airflow.

Airflow's endpoint answers ``vars(task)`` minus private names. The serializer leaves out
every attribute still at its default, so the defaults of the flavor's BaseOperator
(``COMMON_DEFAULTS`` and the flavor's own) are laid under the serialized fields, and the
graph fields are derived from the DAG. Each flavor finishes the result its own way.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from api_plugin.store.serialized import DagSpec, TaskSpec, decode_task_field

COMMON_DEFAULTS: dict[str, Any] = {
    "owner": "airflow",
    "email": None,
    "email_on_retry": True,
    "email_on_failure": True,
    "execution_timeout": None,
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
    "inlets": [],
    "outlets": [],
    "template_fields": [],
    "ui_color": "#fff",
    "ui_fgcolor": "#000",
    "operator_extra_links": (),
}

#: What Airflow 2's BaseOperator adds to the attributes of 1.10.
AIRFLOW2_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "doc_md": None,
    "doc_json": None,
    "doc_yaml": None,
    "doc_rst": None,
    "doc": None,
    "template_ext": [],
    "on_execute_callback": None,
    "on_skipped_callback": None,
    "executor": None,
    "ignore_first_depends_on_past": True,
    "wait_for_past_depends_before_skipping": False,
    "max_active_tis_per_dag": None,
    "max_active_tis_per_dagrun": None,
    "multiple_outputs": False,
    "map_index_template": None,
    "template_fields_renderers": {},
    "start_trigger_args": None,
    "start_from_trigger": False,
    "allow_nested_operators": True,
}

#: Serialized names that are not attributes of the same name on a live operator.
RENAMED = {"_downstream_task_ids": "downstream_task_ids", "_inlets": "inlets",
            "_outlets": "outlets"}

#: Serialized names that Airflow 2 keeps behind properties (``_is_setup``...), so that
#: ``vars(task)`` minus private names does not show them.
PROPERTIES = frozenset({"is_setup", "is_teardown", "on_failure_fail_dagrun"})

#: Objects Airflow 2 holds in these attributes, shown as their repr without the memory
#: address (deliberate difference 5 of docs/differences.rst).
WEIGHT_STRATEGIES = {
    "downstream": "_DownstreamPriorityWeightStrategy",
    "upstream": "_UpstreamPriorityWeightStrategy",
    "absolute": "_AbsolutePriorityWeightStrategy",
}
TASK_GROUP = "<airflow.utils.task_group.TaskGroup object>"


def base_attributes(defaults: dict[str, Any], spec: DagSpec, task: TaskSpec
                    ) -> dict[str, Any]:
    """The defaults, overlaid with the task's serialized fields and its graph."""
    attrs: dict[str, Any] = dict(defaults)
    for name in task.fields:
        public = RENAMED.get(name, name)
        if public.startswith("_"):
            continue
        attrs[public] = task.get(name)
    attrs["task_id"] = task.task_id
    attrs["downstream_task_ids"] = set(task.downstream)
    attrs["upstream_task_ids"] = set(task.upstream)
    for name in ("start_date", "end_date"):
        if attrs.get(name) is None and name not in task.fields:
            attrs[name] = _dag_date(spec, name)
    # Templated fields the operator left unset still exist on it, as None.
    for name in attrs.get("template_fields") or ():
        attrs.setdefault(name, None)
    return attrs


def airflow2_finish(attrs: dict[str, Any]) -> dict[str, Any]:
    """What Airflow 2 and 3 operators hold in place of some serialized fields."""
    for name in PROPERTIES:
        attrs.pop(name, None)
    rule = str(attrs.get("weight_rule") or "downstream")
    if rule in WEIGHT_STRATEGIES:
        attrs["weight_rule"] = (
            f"<airflow.task.priority_strategy.{WEIGHT_STRATEGIES[rule]} object>")
    attrs["task_group"] = TASK_GROUP
    return attrs


def _dag_date(spec: DagSpec, name: str) -> Any:
    """The DAG's own start or end date, which a task without one inherits."""
    value = spec.data.get(name)
    return decode_task_field(name, value) if value is not None else None
