"""DAG and task definitions read from the ``serialized_dag`` table, never by importing code.

Every Airflow layout is understood: 1.10 stores tasks as plain dicts with
``_downstream_task_ids``; 2.x wraps each as ``{"__type": "operator", "__var": {...}}`` and
may compress the whole document with zlib into ``data_compressed``; 3.x (format 3) drops
the leading underscores (``dag_id``, ``task_type``), describes the schedule as a
``timetable`` object and leaves out every field equal to its default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from api_plugin.store.decode_budget import DOCUMENT_BUDGET, check_value, decompress, loads_json

#: Operator fields Airflow serializes as bare seconds or epoch numbers.
TIMEDELTA_FIELDS = frozenset({"retry_delay", "execution_timeout", "max_retry_delay", "sla"})
DATETIME_FIELDS = frozenset({"start_date", "end_date"})


class Shown:
    """A value Airflow deserializes into one of its own classes (a Dataset), kept as the
    text that object's ``repr()`` gives, so it renders as in Airflow with no import."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Shown) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


_DATASET_KINDS = ("dataset", "dataset_alias", "dataset_any", "dataset_all",
                  "asset", "asset_alias", "asset_any", "asset_all")


def _dataset(kind: str, var: dict[str, Any]) -> Shown:
    """Airflow 2's dataset condition as its attrs/own ``repr()`` writes it."""
    if kind == "dataset":
        return Shown(f"Dataset(uri={var.get('uri')!r}, extra={decode_value(var.get('extra'))!r})")
    if kind == "asset":  # Airflow 3's rename, with a name and a group
        return Shown(f"Asset(name={var.get('name')!r}, uri={var.get('uri')!r}, "
                     f"group={var.get('group')!r}, extra={decode_value(var.get('extra'))!r}, "
                     "watchers=[])")
    if kind in ("dataset_alias", "asset_alias"):
        prefix = "Dataset" if kind.startswith("dataset") else "Asset"
        return Shown(f"{prefix}Alias(name={var.get('name')!r})")
    parts = []
    for item in var.get("objects") or ():
        if isinstance(item, dict):
            item = _dataset(str(item.get("__type")), item.get("__var", item))
        parts.append(str(item))
    prefix = "Dataset" if kind.startswith("dataset") else "Asset"
    return Shown(f"{prefix}{'Any' if kind.endswith('_any') else 'All'}({', '.join(parts)})")


def decode_value(value: Any) -> Any:
    """Undo Airflow's ``{"__type", "__var"}`` encoding of one value."""
    if isinstance(value, dict):
        if value.get("__type") in _DATASET_KINDS and isinstance(value.get("__var", value), dict):
            return _dataset(value["__type"], value.get("__var", value))
        if "__type" in value and "__var" in value:
            kind, var = value["__type"], value["__var"]
            if kind == "datetime":
                return datetime.fromtimestamp(float(var), UTC)
            if kind == "timedelta":
                return timedelta(seconds=float(var))
            if kind == "dict":
                return {k: decode_value(v) for k, v in var.items()}
            if kind in ("set", "tuple"):
                items = [decode_value(v) for v in var]
                return set(items) if kind == "set" else tuple(items)
            return decode_value(var)
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    return value


def decode_task_field(name: str, value: Any) -> Any:
    """A task field's Python value: bare numbers become datetimes or timedeltas by name."""
    if value is not None and isinstance(value, int | float) and not isinstance(value, bool):
        if name in DATETIME_FIELDS:
            return datetime.fromtimestamp(float(value), UTC)
        if name in TIMEDELTA_FIELDS:
            return timedelta(seconds=float(value))
    return decode_value(value)


@dataclass
class TaskSpec:
    """One task of a serialized DAG: its raw fields and its place in the graph."""

    task_id: str
    fields: dict[str, Any]
    downstream: list[str]
    upstream: list[str] = field(default_factory=list)

    @property
    def task_type(self) -> str:
        return str(self.fields.get("_task_type") or self.fields.get("task_type")
                   or "BaseOperator")

    def get(self, name: str, default: Any = None) -> Any:
        """A field's decoded value, or ``default`` when the serializer left it out."""
        if name in self.fields:
            return decode_task_field(name, self.fields[name])
        return default


@dataclass
class DagSpec:
    """A serialized DAG: what trigger, task lookups and task-instance creation need."""

    dag_id: str
    data: dict[str, Any]
    tasks: dict[str, TaskSpec]
    default_args: dict[str, Any]
    dag_hash: str | None = None
    #: 3.x: the ``dag_version`` this definition belongs to.
    version_id: str | None = None
    #: What is worked out from this definition once and used at every trigger (the
    #: flavor's task instance templates), kept as long as the parsed definition is.
    derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def timezone(self) -> str:
        return str(self.data.get("timezone") or "UTC")

    @property
    def schedule_interval(self) -> Any:
        return decode_value(self.data.get("schedule_interval"))

    @property
    def timetable(self) -> dict[str, Any] | None:
        """3.x: the serialized timetable (``{"__type": <class path>, "__var": {...}}``)."""
        value = self.data.get("timetable")
        return value if isinstance(value, dict) else None

    @property
    def start_date(self) -> datetime | None:
        value = self.data.get("start_date")
        return decode_task_field("start_date", value) if value is not None else None

    @property
    def end_date(self) -> datetime | None:
        value = self.data.get("end_date")
        return decode_task_field("end_date", value) if value is not None else None

    def downstream_closure(self, task_id: str) -> set[str]:
        """Every task reachable downstream of ``task_id`` (not including it)."""
        return self._closure(task_id, lambda t: t.downstream)

    def upstream_closure(self, task_id: str) -> set[str]:
        """Every task ``task_id`` depends on, directly or not."""
        return self._closure(task_id, lambda t: t.upstream)

    def _closure(self, task_id: str, edges: Any) -> set[str]:
        seen: set[str] = set()
        stack = list(edges(self.tasks[task_id]))
        while stack:
            current = stack.pop()
            if current in seen or current not in self.tasks:
                continue
            seen.add(current)
            stack.extend(edges(self.tasks[current]))
        return seen


def load_document(data: Any, data_compressed: bytes | None) -> dict[str, Any]:
    """The serialized document from either column (JSON text, parsed JSON or zlib),
    within ``DOCUMENT_BUDGET`` (``OverBudget`` beyond it)."""
    if data_compressed:
        data = decompress(bytes(data_compressed), DOCUMENT_BUDGET)
    if isinstance(data, bytes | bytearray | str):
        data = loads_json(data, DOCUMENT_BUDGET)
    else:
        check_value(data, DOCUMENT_BUDGET)
    if not isinstance(data, dict):
        raise ValueError("serialized_dag holds no DAG document")
    return data


def parse_dag(document: dict[str, Any], dag_hash: str | None = None,
              version_id: str | None = None) -> DagSpec:
    """A DagSpec from a serialized document of any Airflow version."""
    dag = document.get("dag", document)
    tasks: dict[str, TaskSpec] = {}
    for raw in dag.get("tasks", []):
        fields = raw["__var"] if isinstance(raw, dict) and "__var" in raw else raw
        downstream = fields.get("downstream_task_ids", fields.get("_downstream_task_ids")) or []
        tasks[fields["task_id"]] = TaskSpec(fields["task_id"], dict(fields), sorted(downstream))
    for task in tasks.values():
        for child in task.downstream:
            if child in tasks:
                tasks[child].upstream.append(task.task_id)
    for task in tasks.values():
        task.upstream.sort()
    default_args = decode_value(dag.get("default_args") or {})
    return DagSpec(
        dag_id=str(dag.get("_dag_id") or dag.get("dag_id")),
        data=dag,
        tasks=tasks,
        default_args=default_args if isinstance(default_args, dict) else {},
        dag_hash=dag_hash,
        version_id=version_id,
    )
