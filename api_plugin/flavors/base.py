"""What every flavor describes: its tables, the rows a trigger writes, how answers read.

A flavor is the Airflow major version that made the metadata database. The services
are written once against this interface; each flavor module says only where its Airflow
differs (``airflow1.py``, ``airflow2.py``, ``airflow3.py``). A new Airflow version is a
new module here, not new branches in the services.
"""

from __future__ import annotations

import getpass
import pickle
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar
from urllib.parse import quote

from sqlalchemy.engine import Connection

from api_plugin.dates import to_utc
from api_plugin.errors import Conflict
from api_plugin.store.serialized import DagSpec, TaskSpec
from api_plugin.store.tables import Tables

#: A DAG's run link maker (``Flavor.run_links``): ``(run_id, utc_iso) -> link``.
RunLink = Callable[[str, str | None], str]

#: A task, its start and end dates, and its task instances' static columns.
TaskTemplate = tuple[TaskSpec, datetime | None, datetime | None, dict[str, Any]]

try:
    UNIXNAME = getpass.getuser()
except (KeyError, OSError):  # no passwd entry in some containers
    UNIXNAME = "airflow"


@dataclass(frozen=True)
class TriggerInput:
    """What a trigger asked for, resolved: the run's id and date, its conf, who asked."""

    dag_id: str
    run_id: str
    when: datetime
    conf: dict[str, Any] | None
    now: datetime
    user: str | None
    #: The client left the date (and the run id) to the server.
    defaulted: bool
    run_id_given: bool


@dataclass(frozen=True)
class DagRecord:
    """A DAG to store as Airflow's parser would: its serialized document and source."""

    dag_id: str
    document: dict[str, Any]
    dag_hash: str
    fileloc: str
    source: str
    #: The ``dag`` row's values; keys the database lacks are dropped.
    dag_row: dict[str, Any]


class Flavor(ABC):
    """The differences of one Airflow major version, as data and small methods."""

    #: ``airflow1`` / ``airflow2`` / ``airflow3``: what ``/info`` and logs call it.
    name: ClassVar[str]
    #: The date inside error texts is ``str(date)`` (pendulum 2+) or ISO 8601 (1.10).
    iso_dates_in_errors: ClassVar[bool] = False
    #: Pickle protocol of the ``executor_config`` written into new task instances.
    executor_config_protocol: ClassVar[int] = 4
    #: The run ids the flavor's Airflow generates, always allowed beside
    #: ``[scheduler] allowed_run_id_pattern``; None: its Airflow checks no run id.
    generated_run_id_pattern: ClassVar[str | None] = None
    #: The ``dag_run`` column a trigger fills with its own time (to the microsecond):
    #: how a write whose answer was lost knows its run from another's (``Store._written``).
    run_written_at: ClassVar[str] = "queued_at"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<flavor {self.name}>"

    # Schema

    @abstractmethod
    def recognises(self, schema: Mapping[str, Collection[str]]) -> bool:
        """Whether a database with these tables (name -> columns) is this flavor's."""

    @abstractmethod
    def build_tables(self, present: Mapping[str, Collection[str]] | None = None) -> Tables:
        """The flavor's tables; with ``present``, only the columns the database has."""

    # Rendering

    def shown_date(self, when: datetime) -> str:
        """A date inside an error text, as the flavor's webserver writes it there."""
        return when.isoformat() if self.iso_dates_in_errors else str(when)

    def run_url(self, dag_id: str, run_date: datetime | None, run_id: str, base: str) -> str:
        """The Airflow UI's link to a run."""
        utc_iso = None if run_date is None else to_utc(run_date).isoformat()
        return self.run_link(dag_id, run_id, utc_iso, base)

    def run_link(self, dag_id: str, run_id: str, utc_iso: str | None, base: str) -> str:
        """``run_url`` from the run's date already written in ISO 8601 in UTC (None: the
        run has no date): a run list writes that string once for two fields."""
        return self.run_links(dag_id, base)(run_id, utc_iso)

    @abstractmethod
    def run_links(self, dag_id: str, base: str) -> RunLink:
        """``run_link`` for the runs of one DAG, ``(run_id, utc_iso) -> link``, with
        what their links share written once: a run list's links are all of one DAG."""

    @abstractmethod
    def created_message(self, request: TriggerInput, row: Mapping[str, Any]) -> str:
        """The trigger's ``message``: ``Created <DagRun ...>`` as the flavor writes it."""

    def duplicate_error(self, dag_id: str, run_id: str, when: datetime) -> Conflict:
        return Conflict(
            f"A DAG Run already exists for DAG {dag_id} at {when} with run id {run_id}")

    @abstractmethod
    def task_instance_answer(self, columns: dict[str, Any], run: Mapping[str, Any]
                             ) -> dict[str, Any]:
        """A task instance's answer from its columns and its run's (``run_*`` keys)."""

    # Writing

    def check_triggerable(self, dag: Mapping[str, Any]) -> None:
        """Refuse a trigger the flavor's Airflow would refuse, from the ``dag`` row;
        before 3.x, every DAG with a definition can be triggered."""
        return None

    @abstractmethod
    def run_row(self, spec: DagSpec, request: TriggerInput, dag: Mapping[str, Any]
                ) -> dict[str, Any]:
        """The ``dag_run`` row Airflow's ``create_dagrun`` writes, given the trigger and
        the ``dag`` row's state."""

    def task_instance_static(self, spec: DagSpec, task: TaskSpec) -> dict[str, Any]:
        """A new task instance's columns that follow from the definition alone (state
        NULL, try 0): the same for every run of this DAG version, so made once per
        version (``task_instance_rows``). These are the columns every flavor has."""
        return {
            "task_id": task.task_id,
            "dag_id": spec.dag_id,
            "state": None,
            "try_number": 0,
            "max_tries": int(task.get("retries", spec.default_args.get("retries", 0)) or 0),
            "hostname": "",
            "unixname": UNIXNAME,
            "pool": task.get("pool") or "default_pool",
            "pool_slots": int(task.get("pool_slots", 1) or 1),
            "queue": task.get("queue") or "default",
            "priority_weight": priority_weight(spec, task.task_id),
            "operator": task.task_type,
            "executor_config": pickle.dumps({}, protocol=self.executor_config_protocol),
        }

    def task_instance_per_run(self, task: TaskSpec, request: TriggerInput) -> dict[str, Any]:
        """A new task instance's columns that differ from run to run: none that every
        flavor has."""
        return {}

    def task_instance_rows(self, spec: DagSpec, request: TriggerInput) -> list[dict[str, Any]]:
        """The task instances Airflow creates with a run: one per task that exists at
        the run's date (its own start date, else the DAG's, not after it; its end date
        not before it), each its static columns and its run's."""
        when = to_utc(request.when)
        rows = []
        for task, start, end, static in self._task_instance_templates(spec):
            if start is not None and start > when:
                continue
            if end is not None and when > end:
                continue
            rows.append({**static, **self.task_instance_per_run(task, request)})
        return rows

    def _task_instance_templates(self, spec: DagSpec) -> list[TaskTemplate]:
        """Each task with its start and end dates and its static columns, made at the
        first trigger of this DAG version and kept with the parsed definition."""
        key = (type(self), "task_instances")
        templates: list[TaskTemplate] | None = spec.derived.get(key)
        if templates is None:
            dag_start, dag_end = spec.start_date, spec.end_date
            templates = spec.derived[key] = [
                (task, task.get("start_date") or dag_start, task.get("end_date") or dag_end,
                 self.task_instance_static(spec, task))
                for task in spec.tasks.values()]
        return templates

    def audit_row(self, request: TriggerInput) -> dict[str, Any] | None:
        """The audit ``log`` row the flavor's API writes on a trigger, if it writes one."""
        return None

    #: Whether a run's lineage is in its ``pipeline_*`` XComs (else: ``declared_lineage``).
    lineage_in_xcoms: ClassVar[bool] = True

    def declared_lineage(self, spec: DagSpec) -> dict[str, dict[str, Any]]:
        """A run's lineage from the DAG's definition, for an Airflow that records none
        per run: nothing by default."""
        return {}

    def lineage_run_key(self, run: Any) -> Any:
        """What the flavor's ``xcom`` table keys a run's values by."""
        return run.run_id

    @abstractmethod
    def store_dag(self, conn: Connection, tables: Tables, record: DagRecord,
                  now: datetime) -> None:
        """Write a DAG's ``dag``, ``serialized_dag`` and ``dag_code`` rows."""

    @abstractmethod
    def serialize_dag(self, dag: dict[str, Any], tasks: list[dict[str, Any]]
                      ) -> dict[str, Any]:
        """The serialized document around a DAG's fields and its tasks' fields."""

    # Task attributes

    task_defaults: ClassVar[dict[str, Any]] = {}

    @abstractmethod
    def task_attributes(self, spec: DagSpec, task: TaskSpec) -> dict[str, Any]:
        """Attribute name -> value, as ``vars(task)`` of a live operator holds them."""


def priority_weight(spec: DagSpec, task_id: str) -> int:
    """The task's effective weight under its weight rule, as Airflow computes it."""
    task = spec.tasks[task_id]
    own = int(task.get("priority_weight", 1) or 0)
    rule = str(task.get("weight_rule", "downstream") or "downstream").lower()
    if rule == "absolute":
        return own
    related = (spec.upstream_closure(task_id) if rule == "upstream"
               else spec.downstream_closure(task_id))
    return own + sum(int(spec.tasks[t].get("priority_weight", 1) or 0) for t in related)


def form_date(utc_iso: str | None) -> str:
    """``quote_plus(str(when))`` of a UTC date from its ISO 8601 form: ``str()`` differs
    from ``isoformat()`` only by the space at the ``T``, which quote_plus writes ``+``."""
    if utc_iso is None:
        return "None"
    return utc_iso.replace("+", "%2B").replace(":", "%3A").replace("T", "+")


#: A string ``quote(value, safe="")`` leaves as it is: only unreserved characters.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def quoted(value: str) -> str:
    """A path segment, percent-encoded as Flask's and FastAPI's URL builders do.

    Most dag_ids need no escape and are returned after one match (latest_runs writes a
    link for each DAG: at 10,000 DAGs a cache of the quoted forms missed every time)."""
    return value if _UNRESERVED(value) else _escaped(value)


@lru_cache(maxsize=4096)
def _escaped(value: str) -> str:
    return quote(value, safe="")
