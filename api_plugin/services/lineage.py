"""A run's lineage: the inlets and outlets its tasks pushed as XComs.

Airflow's operators push them under the keys ``pipeline_inlets`` and
``pipeline_outlets`` when they run. Airflow 2 stores XCom values as JSON and its
webserver shows them the way its ORM loads them: an object Airflow serialized
(``{"__classname__": ..., "__version__": ..., "__data__": ...}``, a Dataset, say)
becomes the readable string of ``airflow.serialization.serde``, never an import of the
class; that string is rebuilt here from the JSON alone. Airflow 1.10 (which has no such
endpoint; the plugin serves it on that flavor too) pickles the values: they are read
with the conf's unpickler, which names no class and runs nothing, and a value that is
not plain data is shown as ``null``. Airflow 3 pushes no such XComs: there the answer
is each task's declared inlets and outlets, from the DAG's definition.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.sql import Select

from api_plugin.services.common import require_dag_spec
from api_plugin.services.runs import find_run
from api_plugin.store import Store
from api_plugin.store.decode_budget import OverBudget, loads_json
from api_plugin.store.safe_pickle import UnreadableConf, loads_conf
from api_plugin.store.tables import Tables

PIPELINE_INLETS = "pipeline_inlets"
PIPELINE_OUTLETS = "pipeline_outlets"
_KEYS = {"inlets": PIPELINE_INLETS, "outlets": PIPELINE_OUTLETS}
_SIDES = {key: side for side, key in _KEYS.items()}
_CLASSNAME, _VERSION, _DATA = "__classname__", "__version__", "__data__"
_OLD_TYPE, _OLD_DATA = "__type", "__var"
_BUILTIN_COLLECTIONS = ("builtins.tuple", "builtins.set", "builtins.frozenset")
_PICKLE_MARK = 0x80  # protocol 2 and later begin with PROTO


def get_lineage(store: Store, dag_id: str, execution_date: Any) -> dict[str, Any]:
    """``{"task_ids": {task_id: {"inlets": ..., "outlets": ...}}}`` for the run."""
    run = find_run(store, dag_id, execution_date)
    if not store.flavor.lineage_in_xcoms:
        declared = store.flavor.declared_lineage(require_dag_spec(store, dag_id))
        return {"task_ids": dict(sorted(declared.items()))}
    if "xcom" not in store.schema:
        return {"task_ids": {}}
    rows = store.prepared(_xcoms_query).all(
        dag_id=dag_id, run=store.flavor.lineage_run_key(run), **_KEYS)
    lineage: dict[str, dict[str, Any]] = {}
    # Rows newest first, the later overwriting the earlier, as Airflow builds it; every
    # inlet before every outlet.
    for key in (PIPELINE_INLETS, PIPELINE_OUTLETS):
        for row in rows:
            if row.key == key:
                lineage.setdefault(row.task_id, {})[_SIDES[key]] = _value(row.value)
    return {"task_ids": dict(sorted(lineage.items()))}


def _xcoms_query(t: Tables) -> Select[Any]:
    """The run's lineage XComs, newest first. Airflow 1.10 keys XComs by execution
    date, Airflow 2 by run_id."""
    x = t.xcom
    run_column = x.c.run_id if "run_id" in x.c else x.c.execution_date
    return (
        select(x.c.task_id, x.c.key, x.c.value)
        .where(x.c.dag_id == bindparam("dag_id"), run_column == bindparam("run"),
               (x.c.key == bindparam("inlets")) | (x.c.key == bindparam("outlets")))
        .order_by(x.c.timestamp.desc())
    )


def _value(stored: Any) -> Any:
    """A stored XCom value as the reference's webserver shows it; ``None`` for one that
    is not plain data or exceeds the decoding budget (``store.decode_budget``)."""
    if stored is None:
        return None
    data = bytes(stored)
    if data[:1] and data[0] == _PICKLE_MARK:
        try:
            return loads_conf(data)
        except UnreadableConf:
            return None
    try:
        return loads_json(data.decode("utf-8"), object_hook=_readable)
    except OverBudget:
        return None
    except (UnicodeDecodeError, ValueError):
        return data.decode("utf-8", "replace")


def _readable(dct: dict[str, Any]) -> Any:
    """One decoded JSON object as Airflow's ORM-side XCom decoding leaves it: plain
    dicts as they are, a serialized object as its readable string."""
    if _OLD_TYPE in dct and _OLD_DATA in dct:  # Airflow 2.0-2.4's serialization
        if dct[_OLD_TYPE] == "dict":
            return dct[_OLD_DATA]
        dct = {_CLASSNAME: dct[_OLD_TYPE], _VERSION: 0, _DATA: dct[_OLD_DATA]}
    classname, version = dct.get(_CLASSNAME), dct.get(_VERSION)
    if _CLASSNAME not in dct or _VERSION not in dct \
            or not isinstance(classname, str) or not isinstance(version, int):
        return dct
    value = dct.get(_DATA)
    if classname in _BUILTIN_COLLECTIONS and isinstance(value, list):
        return "(" + ",".join(str(item) for item in value) + ")"
    text = f"{classname}@version={version}("
    if isinstance(value, int | bool | float | str):
        text += f"{value}"
    elif isinstance(value, list):
        # serde joins the characters of the list's str(): reproduced, odd as it is.
        text += ",".join(str(value))
    elif isinstance(value, dict):
        text += ",".join(f"{key}={item}" for key, item in value.items())
    return text + ")"
