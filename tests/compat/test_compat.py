"""Side by side with real Apache Airflow 2.10.5 on Airflow's own database.

Airflow migrates a database and serializes the DAGs of ``dags/``; two copies of it are
served, one by Airflow's webserver, one by ``api-plugin serve``. The corpus goes to both
in the same order and the answers must be equal after normalisation, except where
docs/differences.rst lists a deliberate difference (then that difference, and only it, is checked).
Afterwards each side's database is read by the *other* server, and a run triggered
through the plugin is executed by Airflow's own scheduler.
"""

from __future__ import annotations

import http.client
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.compat.airflow_env import (
    PG_URL,
    AirflowHome,
    make_home,
    spawn,
    start_webserver,
    stop,
)
from tests.compat.corpus import CORPUS, Entry, airflow_failed_ours_4xx
from tests.compat.normalise import Answer
from tests.servers import free_port, start_server

pytestmark = pytest.mark.compat
PREFIX = "/api/experimental"
STARTED = datetime.now(UTC)


def send(port: int, entry: Entry) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"Content-Type": "application/json"} if entry.body is not None else {}
        conn.request(entry.method, PREFIX + entry.path, body=entry.raw_body, headers=headers)
        response = conn.getresponse()
        return Answer.parse(response.status, response.getheader("Content-Type", ""),
                            response.read(), STARTED)
    finally:
        conn.close()


def start_plugin(database: str, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    server = start_server(folder, database, new_session=True)
    return server.proc, server.port


# Airflow 2.10.5 also on PostgreSQL, as most deployments run it (tox's compat env
# demands the server, as the postgres env does).
HOMES = ["airflow2", "airflow1"] + (["airflow2-postgresql"] if PG_URL else [])


@pytest.fixture(scope="module", params=HOMES)
def home(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHome]:
    flavor, _, backend = str(request.param).partition("-")
    made = make_home(tmp_path_factory.mktemp(f"{request.param}_home"), flavor,
                     backend or "sqlite")
    yield made
    made.drop_databases()


@pytest.fixture(scope="module")
def answers(home: AirflowHome) -> Iterator[dict[str, tuple[Answer, Answer]]]:
    """The corpus sent to Airflow (on copy a) and to the plugin (on copy b), in order."""
    ours_db, theirs_db = home.copy_database("b"), home.copy_database("a")
    airflow = start_webserver(home, theirs_db, free_port_for_airflow := free_port())
    plugin, plugin_port = start_plugin(ours_db, home.path)
    try:
        yield {entry.name: (send(free_port_for_airflow, entry), send(plugin_port, entry))
               for entry in CORPUS}
    finally:
        stop(airflow)
        stop(plugin)


def describe(airflow: Answer, ours: Answer) -> str:
    """The two answers, or for two objects only the keys whose values differ."""
    if isinstance(airflow.body, dict) and isinstance(ours.body, dict):
        keys = sorted(k for k in airflow.body.keys() | ours.body.keys()
                      if airflow.body.get(k, "<absent>") != ours.body.get(k, "<absent>"))
        lines = [f"  {k}: airflow={airflow.body.get(k, '<absent>')!r} "
                 f"plugin={ours.body.get(k, '<absent>')!r}" for k in keys]
        return f"\nstatus airflow={airflow.status} plugin={ours.status}\n" + "\n".join(lines)
    return f"\nairflow: {airflow}\nplugin:  {ours}"


@pytest.mark.parametrize("entry", CORPUS, ids=[entry.name for entry in CORPUS])
def test_same_answer(home: AirflowHome, answers: dict[str, tuple[Answer, Answer]],
                     entry: Entry) -> None:
    airflow, ours = answers[entry.name]
    assert (ours.status < 500 and ours.is_json) or entry.path.endswith("/code")
    differs, check = entry.check_for(home.flavor)
    if check is None:
        assert (airflow.status, airflow.body) == (ours.status, ours.body), \
            describe(airflow, ours)
    else:
        assert check(airflow, ours), f"not only §{differs}:" + describe(airflow, ours)


READS = [e for e in CORPUS if e.method == "GET" and e.check is None]


@pytest.mark.parametrize("writer", ["airflow", "plugin"])
def test_each_reads_what_the_other_wrote(home: AirflowHome, answers: object,
                                         writer: str) -> None:
    """After the corpus, both servers read the same database: copy a (written by
    Airflow's webserver) or b (written by the plugin), and must answer every read alike."""
    database = home.copies["a" if writer == "airflow" else "b"]
    port = free_port()
    airflow = start_webserver(home, database, port)
    plugin, plugin_port = start_plugin(database, home.path)
    try:
        differences = []
        for entry in READS:
            theirs, ours = send(port, entry), send(plugin_port, entry)
            if airflow_failed_ours_4xx(404)(theirs, ours):
                continue  # §7.2: paused_dag is gone now, and Airflow answers that with a 500
            if (theirs.status, theirs.body) != (ours.status, ours.body):
                differences.append(f"{entry.name}:{describe(theirs, ours)}")
        assert not differences, "\n".join(differences)
    finally:
        stop(airflow)
        stop(plugin)


def test_scheduler_runs_what_the_plugin_triggered(home: AirflowHome) -> None:
    """A run triggered through the plugin is executed by ``airflow scheduler`` to success,
    and the plugin then reports the run's and every task instance's state."""
    database = home.copy_database("e2e")
    plugin, port = start_plugin(database, home.path)
    scheduler = None
    try:
        assert send(port, Entry("", "GET", "/dags/chain/paused/false")).status == 200
        trigger = send(port, Entry("", "POST", "/dags/chain/dag_runs",
                                   {"conf": {"who": "compat"}, "run_id": "e2e",
                                    "execution_date": "2025-10-01T00:00:00+00:00"}))
        assert trigger.status == 200, trigger
        when = "2025-10-01T00:00:00%2B00:00"
        lineage = home.flavor == "airflow2"  # Airflow 1.10 has no lineage endpoint
        if lineage:
            assert send(port, Entry("", "GET", "/dags/lineage/paused/false")).status == 200
            assert send(port, Entry("", "POST", "/dags/lineage/dag_runs", {
                "run_id": "e2e", "execution_date": "2025-10-01T00:00:00+00:00"})).status == 200
        scheduler = spawn(home, ["scheduler"], database, home.path / "scheduler.log")
        state = ""
        polls = iter(range(150))  # at least 1-2 s apart: five minutes at most
        while next(polls, None) is not None and state not in ("success", "failed"):
            time.sleep(2)
            answer = send(port, Entry("", "GET", f"/dags/chain/dag_runs/{when}"))
            assert answer.status == 200, answer
            state = answer.body["state"]
        assert state == "success", (home.path / "scheduler.log").read_text()[-4000:]
        state = "" if lineage else state
        while lineage and next(polls, None) is not None and state != "success":
            time.sleep(1)
            state = send(port, Entry("", "GET", f"/dags/lineage/dag_runs/{when}")).body["state"]
        assert state == "success", (home.path / "scheduler.log").read_text()[-4000:]
        stop(scheduler)
        for task in ("start", "left", "right", "end"):
            ti = send(port, Entry("", "GET", f"/dags/chain/dag_runs/{when}/tasks/{task}"))
            assert ti.status == 200 and ti.body["state"] == "success", ti
            assert ti.body["end_date"] != "None", ti
        listed = send(port, Entry("", "GET", "/dags/chain/dag_runs?state=success")).body
        assert [run["run_id"] for run in listed] == ["e2e"]
        if home.flavor == "airflow2":
            assert ti.body["try_number"] == "1", ti
            states = home.airflow("tasks", "states-for-dag-run", "chain", "e2e", "-o", "plain",
                                  database=database)
            assert states.count("success") == 4, states
        else:
            for task in ("start", "left", "right", "end"):
                state = home.airflow("task_state", "chain", task, "2025-10-01T00:00:00+00:00",
                                     database=database)
                assert state.strip().splitlines()[-1] == "success", state
        # What the scheduler wrote, the plugin reads as Airflow's own webserver does.
        airflow = start_webserver(home, database, airflow_port := free_port())
        try:
            reads = [Entry(f"ti {task}", "GET", f"/dags/chain/dag_runs/{when}/tasks/{task}")
                     for task in ("start", "left", "right", "end")]
            reads += [Entry("runs", "GET", "/dags/chain/dag_runs"),
                      Entry("state", "GET", f"/dags/chain/dag_runs/{when}")]
            pushed = Entry("lineage", "GET", f"/lineage/lineage/{when}")
            if lineage:  # what the tasks pushed, and the tasks' own inlets and outlets
                reads += [pushed,
                          Entry("lineage, chain", "GET", f"/lineage/chain/{when}"),
                          Entry("lineage, no run", "GET", "/lineage/lineage/2025-10-02"),
                          Entry("lineage, bad date", "GET", "/lineage/lineage/soon"),
                          Entry("lineage, unknown dag", "GET", f"/lineage/nope/{when}")]
                reads += [Entry(f"task {task}", "GET", f"/dags/lineage/tasks/{task}")
                          for task in ("fetch", "publish")]
            for entry in reads:
                theirs, ours = send(airflow_port, entry), send(port, entry)
                if entry.path.startswith("/lineage/") and ours.status == 200:
                    # The lineage again under "message", for Airflow 2's json_client.
                    assert ours.body.pop("message") == ours.body, entry.name
                assert (theirs.status, theirs.body) == (ours.status, ours.body), \
                    entry.name + describe(theirs, ours)
            if lineage:  # not two empty answers: what the tasks really pushed
                assert send(port, pushed).body["message"] == {"task_ids": {
                    "fetch": {"inlets": ["airflow.lineage.entities.File@version=0("
                                         "url=/data/in.csv,type_hint=None)"],
                              "outlets": ["airflow.datasets.Dataset@version=1("
                                          "uri=s3://lake/raw,extra=None)", "a plain string"]},
                    "publish": {"outlets": ["airflow.datasets.Dataset@version=1("
                                            "uri=s3://lake/published,extra={'team': 'ops'})"]}}}
        finally:
            stop(airflow)
    finally:
        if scheduler is not None:
            stop(scheduler)
        stop(plugin)
