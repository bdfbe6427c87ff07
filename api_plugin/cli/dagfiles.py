"""``api-plugin dags load``: declarative YAML/JSON DAGs written as Airflow would store them.

A file holds one DAG (or a list of them)::

    dag_id: example_etl
    description: three steps
    schedule: "@daily"
    start_date: 2024-01-01
    default_args: {owner: ops, retries: 1, retry_delay: 300}
    tasks:
      - {task_id: extract, operator: BashOperator, bash_command: echo extract}
      - {task_id: load, operator: EmptyOperator, upstream: [extract]}

The ``dag``, ``serialized_dag`` and ``dag_code`` rows follow the flavor's serialization
layout (``Flavor.serialize_dag`` and ``store_dag``), so every endpoint reads them exactly
as it reads DAGs Airflow serialized.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from api_plugin.dates import utcnow
from api_plugin.flavors import DagRecord, Flavor
from api_plugin.store import Store
from api_plugin.store.keys import fileloc_hash

OPERATOR_MODULES = {
    "BashOperator": ("airflow.operators.bash", ["bash_command", "env", "cwd"], "#f0ede4"),
    "EmptyOperator": ("airflow.operators.empty", [], "#e8f7e4"),
    "PythonOperator": ("airflow.operators.python", ["templates_dict", "op_args", "op_kwargs"],
                       "#ffefeb"),
}
_TASK_KEYS = {"task_id", "operator", "upstream"}
_TIMEDELTA_ARGS = {"retry_delay", "execution_timeout", "max_retry_delay", "sla"}


class DagFileError(ValueError):
    """A DAG file that cannot be loaded, with the reason."""


def _as_datetime(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise DagFileError(f"{what}: {value!r} is not an ISO date") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise DagFileError(f"{what}: {value!r} is not a date")


def _encode(value: Any, name: str = "") -> Any:
    """Airflow's ``{"__type", "__var"}`` encoding, for default_args values."""
    if name in _TIMEDELTA_ARGS and isinstance(value, int | float):
        value = timedelta(seconds=value)
    if isinstance(value, datetime | date):
        return {"__type": "datetime", "__var": _as_datetime(value, name).timestamp()}
    if isinstance(value, timedelta):
        return {"__type": "timedelta", "__var": value.total_seconds()}
    if isinstance(value, dict):
        return {"__type": "dict", "__var": {k: _encode(v, k) for k, v in value.items()}}
    return value


def read_dag_files(path: str | Path) -> list[tuple[Path, str, dict[str, Any]]]:
    """``(file, source text, definition)`` for a file, or every YAML/JSON file in a folder."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    elif root.is_file():
        files = [root]
    else:
        raise DagFileError(f"{root}: no such file or directory")
    found = []
    for file in files:
        text = file.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise DagFileError(f"{file}: {exc}") from None
        for item in data if isinstance(data, list) else [data]:
            if not isinstance(item, dict) or "dag_id" not in item:
                raise DagFileError(f"{file}: a DAG definition needs a dag_id")
            found.append((file.resolve(), text, item))
    return found


def serialize_dag(definition: dict[str, Any], fileloc: str, flavor: Flavor) -> dict[str, Any]:
    """The ``serialized_dag.data`` document for a declarative definition."""
    dag_id = str(definition["dag_id"])
    default_args = dict(definition.get("default_args") or {})
    start = definition.get("start_date", default_args.get("start_date"))
    if start is not None:
        default_args.setdefault("start_date", _as_datetime(start, "start_date"))
    tasks_in = definition.get("tasks") or []
    if not isinstance(tasks_in, list) or not tasks_in:
        raise DagFileError(f"DAG {dag_id}: tasks must be a non-empty list")
    ids = [str(t.get("task_id")) for t in tasks_in if isinstance(t, dict)]
    if len(ids) != len(tasks_in) or len(set(ids)) != len(ids) or "None" in ids:
        raise DagFileError(f"DAG {dag_id}: every task needs a unique task_id")
    downstream: dict[str, list[str]] = {t: [] for t in ids}
    for task in tasks_in:
        for parent in task.get("upstream") or []:
            if parent not in downstream:
                raise DagFileError(f"DAG {dag_id}: task {task['task_id']} has unknown "
                                   f"upstream {parent}")
            downstream[parent].append(str(task["task_id"]))
    tasks = [_task_fields(t, default_args, downstream[str(t["task_id"])]) for t in tasks_in]
    dag: dict[str, Any] = {
        "dag_id": dag_id,
        "fileloc": fileloc,
        "timezone": "UTC",
        "schedule": definition.get("schedule"),
        "description": definition.get("description"),
        "catchup": bool(definition.get("catchup", False)),
        "default_args": _encode(default_args),
        "start_date": _as_datetime(start, "start_date").timestamp() if start is not None
        else None,
    }
    return flavor.serialize_dag(dag, tasks)


def _task_fields(task: dict[str, Any], default_args: dict[str, Any],
                 downstream: list[str]) -> dict[str, Any]:
    """A task's serialized fields, before the flavor lays them out (``downstream`` is
    the list of its children's ids, ``task_type`` its operator)."""
    operator = str(task.get("operator") or "EmptyOperator")
    module, template_fields, color = OPERATOR_MODULES.get(
        operator, ("api_plugin.declarative", [], "#fff"))
    fields: dict[str, Any] = {
        "task_id": str(task["task_id"]),
        "task_type": operator,
        "_task_module": module,
        "template_fields": template_fields,
        "ui_color": color,
        "ui_fgcolor": "#000",
        "downstream": downstream,
    }
    merged = {**default_args, **{k: v for k, v in task.items() if k not in _TASK_KEYS}}
    for name, value in merged.items():
        if name in _TIMEDELTA_ARGS and isinstance(value, int | float | timedelta):
            seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
            fields[name] = seconds
        elif name in ("start_date", "end_date"):
            fields[name] = _as_datetime(value, name).timestamp()
        else:
            fields[name] = value
    return fields


def load_dags(store: Store, path: str | Path, *, paused: bool = False) -> list[str]:
    """Write every DAG found at ``path``; returns their ids. Existing ones are replaced
    (on Airflow 3 databases: get a new DAG version when their definition changed)."""
    loaded = []
    now = utcnow()
    for file, text, definition in read_dag_files(path):
        fileloc = str(file)
        document = serialize_dag(definition, fileloc, store.flavor)
        data = json.dumps(document, sort_keys=True)
        dag_id = str(definition["dag_id"])
        owner = str((definition.get("default_args") or {}).get("owner", "airflow"))
        dag_row = {"dag_id": dag_id, "is_paused": paused, "is_active": True, "is_subdag": False,
                   "fileloc": fileloc, "owners": owner,
                   "description": definition.get("description"),
                   "schedule_interval": json.dumps(definition.get("schedule")),
                   "default_view": "grid", "max_active_tasks": 16, "max_active_runs": 16,
                   "max_consecutive_failed_dag_runs": 0, "has_task_concurrency_limits": False,
                   "has_import_errors": False, "last_parsed_time": now}
        record = DagRecord(dag_id=dag_id, document=document,
                           dag_hash=hashlib.md5(data.encode(), usedforsecurity=False).hexdigest(),
                           fileloc=fileloc, source=text, dag_row=dag_row)
        with store.write() as conn:
            store.flavor.store_dag(conn, store.tables, record, now)
        loaded.append(dag_id)
    return loaded


__all__ = ["DagFileError", "fileloc_hash", "load_dags", "read_dag_files", "serialize_dag"]
