"""The request corpus sent, in this order, to Airflow 2.10.5's webserver and to the plugin.

Each entry is one request. ``differs`` names the deliberate difference ("7.n": item n of
docs/differences.rst; "3b": an endpoint beyond the seed) under which the two answers may
legitimately differ, and ``check`` decides whether the pair of answers
is that difference and nothing else. Entries without ``differs`` must match exactly after
normalisation (see ``normalise.py``). Where Airflow 1.10.15 behaves otherwise than 2.10.5,
``airflow1`` holds the check for that flavor (``SAME``: must match exactly).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.compat.normalise import Answer

Check = Callable[[Answer, Answer], bool]


def SAME(airflow: Answer, ours: Answer) -> bool:
    """No difference allowed."""
    return (airflow.status, airflow.body) == (ours.status, ours.body)


@dataclass(frozen=True)
class Entry:
    name: str
    method: str
    path: str
    body: Any = None
    differs: str = ""
    check: Check | None = None
    airflow1: Check | None = None
    differs1: str = ""

    def check_for(self, flavor: str) -> tuple[str, Check | None]:
        """(difference item, check) for answers of that flavor; (\"\", None) for exact."""
        if flavor == "airflow1" and self.airflow1 is not None:
            return (self.differs1, None if self.airflow1 is SAME else self.airflow1)
        return self.differs, self.check

    @property
    def raw_body(self) -> bytes | None:
        if self.body is None:
            return None
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


def _json_4xx(ours: Answer) -> bool:
    return 400 <= ours.status < 500 and ours.is_json and "error" in ours.body


def same_error_but_409(airflow: Answer, ours: Answer) -> bool:
    """§7.1: a duplicate run answers 409 instead of 400, with the same text."""
    return airflow.status == 400 and ours.status == 409 and airflow.body == ours.body


def airflow_failed_ours_4xx(status: int) -> Check:
    """§7.2/§7.8/§7.11: where Airflow answers 500 or HTML, the plugin answers a JSON 4xx."""

    def check(airflow: Answer, ours: Answer) -> bool:
        return (airflow.status >= 500 or not airflow.is_json) and ours.status == status \
            and _json_4xx(ours)

    return check


def airflow_500_ours_empty(airflow: Answer, ours: Answer) -> bool:
    """§7.11: an unknown state filter gives [] (Airflow 2.10: 500)."""
    return airflow.status == 500 and ours.status == 200 and ours.body == []


def string_conf_accepted(airflow: Answer, ours: Answer) -> bool:
    """§7.3: conf as a string holding a JSON object is accepted on airflow2."""
    return airflow.status == 400 and ours.status == 200 and "run_id" in ours.body


def paused_value_refused(airflow: Answer, ours: Answer) -> bool:
    """§7.9: ``/paused/<value>`` other than true/false is a 400, not an un-pause."""
    return airflow.status == 200 and ours.status == 400 and _json_4xx(ours)


def page_of(full_length: int, limit: int) -> Check:
    """§7.4: the run list takes limit/offset; Airflow ignores them and lists everything."""

    def check(airflow: Answer, ours: Answer) -> bool:
        return airflow.status == ours.status == 200 and len(airflow.body) == full_length \
            and ours.body == airflow.body[:limit]

    return check


def same_items_sorted(airflow: Answer, ours: Answer) -> bool:
    """§7.12: latest_runs ordered by dag_id; Airflow applies no order."""
    items = sorted(airflow.body["items"], key=lambda item: item["dag_id"])
    return airflow.status == ours.status == 200 and ours.body == {"items": items}


def openapi_only_here(airflow: Answer, ours: Answer) -> bool:
    """§7.6: the OpenAPI document is ours alone."""
    return airflow.status == 404 and ours.status == 200 and ours.body["openapi"].startswith("3.1")


def info_is_ours(airflow: Answer, ours: Answer) -> bool:
    """§3b: /info names the plugin's version and the flavor (Airflow 2: its own version;
    Airflow 1.10 has no /info)."""
    theirs_ok = (airflow.status == 200 and set(airflow.body) == {"version"}) or \
        airflow.status == 404
    return theirs_ok and ours.status == 200 and bool(ours.body["version"]) \
        and ours.body["flavor"] in ("airflow1", "airflow2")


def every_row_counted(rows: int) -> Check:
    """§3b: the count is every row removed. Airflow 2.10 deletes model by model in the
    order of a frozenset of mappers, which changes with the process's hash seed, so a
    foreign-key cascade sometimes removes task instances before they are counted: its
    count varies from process to process (2 or 3 here) and never exceeds the rows."""

    def check(airflow: Answer, ours: Answer) -> bool:
        return airflow.status == ours.status == 200 and ours.body == {
            "message": f"Removed {rows} record(s)", "count": rows} \
            and 0 < airflow.body["count"] <= rows

    return check


ETL = "/dags/etl_nightly"
CHAIN = "/dags/chain"
D1 = "2025-01-01T00:00:00+00:00"
D2 = "2025-07-01T06:30:00+02:00"  # stored as 04:30 UTC
D3 = "2025-03-01T10:00:00.123456+00:00"
D4 = "2025-08-01T12:00:00.654321+00:00"

CORPUS: list[Entry] = [
    Entry("test", "GET", "/test"),
    Entry("paused initially", "GET", f"{ETL}/paused"),
    Entry("paused of paused_dag", "GET", "/dags/paused_dag/paused"),
    Entry("paused unknown dag", "GET", "/dags/nope/paused",
          differs="7.2", check=airflow_failed_ours_4xx(404)),
    Entry("unpause", "GET", f"{ETL}/paused/false"),
    Entry("paused after unpause", "GET", f"{ETL}/paused"),
    Entry("pause chain", "GET", f"{CHAIN}/paused/true"),
    Entry("paused after pause", "GET", f"{CHAIN}/paused"),
    Entry("pause with odd value", "GET", f"{CHAIN}/paused/maybe",
          differs="7.9", check=paused_value_refused),
    Entry("pause chain again", "GET", f"{CHAIN}/paused/true"),
    Entry("pause unknown dag", "GET", "/dags/nope/paused/true",
          differs="7.2", check=airflow_failed_ours_4xx(404)),
    # Triggers.
    Entry("trigger with date, run_id, conf", "POST", f"{ETL}/dag_runs",
          {"execution_date": D1, "run_id": "first", "conf": {"a": 1, "b": [1, 2]}}),
    Entry("trigger duplicate run_id", "POST", f"{ETL}/dag_runs",
          {"execution_date": "2025-01-02T00:00:00+00:00", "run_id": "first"},
          differs="7.1", check=same_error_but_409),
    Entry("trigger duplicate date", "POST", f"{ETL}/dag_runs",
          {"execution_date": D1, "run_id": "other"}, differs="7.1", check=same_error_but_409,
          differs1="7.2", airflow1=airflow_failed_ours_4xx(409)),
    Entry("trigger with an offset", "POST", f"{ETL}/dag_runs", {"execution_date": D2}),
    Entry("trigger, microseconds kept", "POST", f"{CHAIN}/dag_runs",
          {"execution_date": D3, "replace_microseconds": "false"}),
    Entry("trigger, microseconds dropped", "POST", f"{CHAIN}/dag_runs",
          {"execution_date": D4, "replace_microseconds": "true", "conf": {}}),
    Entry("trigger with defaults", "POST", "/dags/paused_dag/dag_runs", {}),
    Entry("trigger conf as list", "POST", f"{CHAIN}/dag_runs",
          {"execution_date": "2025-09-02T00:00:00+00:00", "conf": [1, 2]},
          differs1="7.2", airflow1=airflow_failed_ours_4xx(400)),
    Entry("trigger conf as number", "POST", f"{CHAIN}/dag_runs",
          {"execution_date": "2025-09-03T00:00:00+00:00", "conf": 5},
          differs1="7.2", airflow1=airflow_failed_ours_4xx(400)),
    Entry("trigger bad date", "POST", f"{ETL}/dag_runs", {"execution_date": "yesterday"}),
    Entry("trigger unknown dag", "POST", "/dags/nope/dag_runs", {}),
    Entry("trigger before default_args start_date", "POST", f"{ETL}/dag_runs",
          {"execution_date": "2023-06-01T00:00:00+00:00"},
          differs="7.8", check=airflow_failed_ours_4xx(400)),
    Entry("trigger body not JSON", "POST", f"{ETL}/dag_runs", b"{not json",
          differs="7.2", check=airflow_failed_ours_4xx(400)),
    # Run lists.
    Entry("list runs", "GET", f"{ETL}/dag_runs"),
    Entry("list runs of chain", "GET", f"{CHAIN}/dag_runs"),
    Entry("list runs by state", "GET", f"{ETL}/dag_runs?state=queued"),
    Entry("list runs by other state", "GET", f"{ETL}/dag_runs?state=success"),
    Entry("list runs unknown state", "GET", f"{ETL}/dag_runs?state=bogus",
          differs="7.11", check=airflow_500_ours_empty, airflow1=SAME),
    Entry("list runs limit", "GET", f"{CHAIN}/dag_runs?limit=1",
          differs="7.4", check=page_of(2, 1)),
    Entry("list runs unknown dag", "GET", "/dags/nope/dag_runs"),
    # Run state.
    Entry("run state", "GET", f"{ETL}/dag_runs/{D1}".replace("+", "%2B")),
    Entry("run state, date without offset", "GET", f"{ETL}/dag_runs/2025-01-01T00:00:00"),
    Entry("run state, client offset", "GET", f"{ETL}/dag_runs/{D2}".replace("+", "%2B")),
    Entry("run state, microseconds", "GET", f"{CHAIN}/dag_runs/2025-03-01T10:00:00.123456"),
    Entry("run state, missing run", "GET", f"{ETL}/dag_runs/2025-02-02T00:00:00"),
    Entry("run state, bad date", "GET", f"{ETL}/dag_runs/notadate"),
    Entry("run state, unknown dag", "GET", "/dags/nope/dag_runs/2025-01-01T00:00:00"),
    # Tasks.
    *[Entry(f"task {dag}.{task}", "GET", f"/dags/{dag}/tasks/{task}")
      for dag, task in [("etl_nightly", "extract"), ("etl_nightly", "transform"),
                        ("etl_nightly", "load"), ("chain", "start"), ("chain", "left"),
                        ("chain", "right"), ("chain", "end"), ("paused_dag", "only")]],
    Entry("task unknown", "GET", f"{ETL}/tasks/nope"),
    Entry("task unknown dag", "GET", "/dags/nope/tasks/extract"),
    # Task instances.
    *[Entry(f"task instance {dag}.{task}", "GET", f"/dags/{dag}/dag_runs/{when}/tasks/{task}")
      for dag, when, task in [
          ("etl_nightly", "2025-01-01T00:00:00", "extract"),
          ("etl_nightly", "2025-01-01T00:00:00", "transform"),
          ("etl_nightly", "2025-07-01T04:30:00", "load"),
          ("chain", "2025-03-01T10:00:00.123456", "start"),
          ("chain", "2025-03-01T10:00:00.123456", "left"),
          ("chain", "2025-03-01T10:00:00.123456", "right"),
          ("chain", "2025-08-01T12:00:00", "end")]],
    Entry("task instance not created", "GET",
          f"{ETL}/dag_runs/2025-01-01T00:00:00/tasks/load"),
    Entry("task instance missing run", "GET",
          f"{ETL}/dag_runs/2025-02-02T00:00:00/tasks/extract"),
    Entry("task instance unknown task", "GET", f"{ETL}/dag_runs/2025-01-01T00:00:00/tasks/x"),
    Entry("task instance bad date", "GET", f"{ETL}/dag_runs/nodate/tasks/extract"),
    Entry("latest runs", "GET", "/latest_runs", differs="7.12", check=same_items_sorted),
    # Pools.
    Entry("pools", "GET", "/pools"),
    Entry("pool default", "GET", "/pools/default_pool"),
    Entry("pool unknown", "GET", "/pools/nope"),
    Entry("pool create", "POST", "/pools", {"name": "p1", "slots": 3, "description": "one"}),
    Entry("pool update", "POST", "/pools", {"name": "p1", "slots": "5", "description": "x"}),
    Entry("pool read back", "GET", "/pools/p1"),
    Entry("pool create second", "POST", "/pools", {"name": "p2", "slots": 0,
                                                    "description": ""}),
    Entry("pool empty name", "POST", "/pools", {"name": "", "slots": 1, "description": ""}),
    Entry("pool bad slots", "POST", "/pools", {"name": "p3", "slots": "many",
                                               "description": ""}),
    Entry("pool missing field", "POST", "/pools", {"name": "p3", "slots": 1},
          differs="7.2", check=airflow_failed_ours_4xx(400)),
    Entry("pools after changes", "GET", "/pools"),
    Entry("pool delete", "DELETE", "/pools/p2"),
    Entry("pool delete unknown", "DELETE", "/pools/p2"),
    Entry("pool delete default", "DELETE", "/pools/default_pool"),
    # Beyond the seed (§3b) and the plumbing (§2).
    Entry("dag code", "GET", f"{ETL}/code"),
    Entry("dag code unknown", "GET", "/dags/nope/code"),
    Entry("info", "GET", "/info", differs="3b", check=info_is_ours),
    Entry("openapi", "GET", "/openapi.json", differs="7.6", check=openapi_only_here),
    Entry("unknown route", "GET", "/nowhere", differs="7.2", check=airflow_failed_ours_4xx(404)),
    Entry("wrong method", "PUT", "/pools", differs="7.2", check=airflow_failed_ours_4xx(405)),
    # paused_dag's rows: the DAG, its one run and that run's one task instance.
    Entry("delete dag", "DELETE", "/dags/paused_dag", differs="3b", check=every_row_counted(3)),
    Entry("delete dag again", "DELETE", "/dags/paused_dag"),
    Entry("latest runs after delete", "GET", "/latest_runs",
          differs="7.12", check=same_items_sorted),
    # Last, since the plugin creates a run here that Airflow refuses to create.
    Entry("trigger conf as string", "POST", f"{CHAIN}/dag_runs",
          {"execution_date": "2025-09-01T00:00:00+00:00", "conf": '{"key": "value"}'},
          differs="7.3", check=string_conf_accepted, airflow1=SAME),
]
