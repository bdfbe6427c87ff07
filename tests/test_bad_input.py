"""Bad input is a 400 JSON error on every database, refused by the web layer before any
query: NUL and lone surrogates in paths, query strings and JSON; JSON nested past the
API's depth (directly, or in a conf string); numbers too long to read; run ids outside
Airflow's own rule; pause values other than exactly ``true``/``false``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from api_plugin.serving.mount import build_api, json_not_found, mount_into
from api_plugin.settings.config import Config
from api_plugin.web.web_input import MAX_JSON_DEPTH
from conftest import PREFIX, ApiHarness, LoopbackClient

RUN = "2025-01-01T00:00:00+00:00"

#: Every route with a path argument, the argument carrying a NUL (%00).
NUL_PATHS = [
    ("GET", "/dags/etl%00nightly/dag_runs"),
    ("POST", "/dags/etl%00nightly/dag_runs"),
    ("GET", f"/dags/example_etl%00/dag_runs/{RUN}"),
    ("GET", f"/dags/example_etl/dag_runs/{RUN}/tasks/lo%00ad"),
    ("GET", "/dags/example_etl/tasks/lo%00ad"),
    ("GET", "/dags/exa%00mple_etl/paused/true"),
    ("GET", "/dags/exa%00mple_etl/paused"),
    ("GET", f"/lineage/example_etl%00/{RUN}"),
    ("GET", "/pools/default%00pool"),
    ("DELETE", "/pools/default%00pool"),
    ("DELETE", "/dags/exa%00mple_etl"),
    ("GET", "/dags/exa%00mple_etl/code"),
    ("GET", "/dags/example_etl/dag_runs?state=run%00ning"),
    ("GET", "/dags/example_etl/dag_runs?st%00ate=running"),
]


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


#: JSON bodies (as text, so that escapes reach the server as sent) and what they break.
BAD_BODIES = [
    ("/dags/example_etl/dag_runs", '{"run_id": "a\\u0000b"}', "NUL"),
    ("/dags/example_etl/dag_runs", '{"run_id": "a\\ud800b"}', "surrogate"),
    ("/dags/example_etl/dag_runs", '{"run_id": "ok", "conf": {"a": "\\u0000"}}', "NUL"),
    ("/dags/example_etl/dag_runs", '{"run_id": "ok", "conf": {"\\udfff": 1}}', "surrogate"),
    ("/dags/example_etl/dag_runs", '{"conf": "{\\"a\\": \\"\\\\u0000\\"}"}', "NUL"),
    ("/dags/example_etl/dag_runs", json.dumps({"conf": nested(900)}), "nested too deeply"),
    ("/dags/example_etl/dag_runs", json.dumps({"conf": json.dumps(nested(900))}),
     "nested too deeply"),
    ("/dags/example_etl/dag_runs", json.dumps({"conf": "[" * 5000 + "]" * 5000}),
     "nested too deeply"),
    ("/dags/example_etl/dag_runs", json.dumps({"conf": nested(MAX_JSON_DEPTH)}),
     "nested too deeply"),
    ("/dags/example_etl/dag_runs", '{"execution_date": "2025-01-01\\u0000"}', "NUL"),
    ("/pools", '{"name": "p\\u0000", "slots": 1, "description": ""}', "NUL"),
    ("/pools", '{"name": "p\\ud800", "slots": 1, "description": ""}', "surrogate"),
    ("/pools", '{"name": "p", "slots": 1, "description": "\\ud83d"}', "surrogate"),
    ("/pools", '{"name": "p", "slots": ' + "9" * 5000 + ', "description": ""}', "digits"),
]


class QueryCounter:
    """Counts the statements sent to the database while it is armed."""

    def __init__(self, api: ApiHarness) -> None:
        self.count = 0
        self.armed = False
        self.engine = api.store.engine
        event.listen(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += self.armed

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


@pytest.fixture
def queries(api: ApiHarness) -> Iterator[QueryCounter]:
    counter = QueryCounter(api)
    yield counter
    counter.close()


def state(api: ApiHarness) -> list[Any]:
    return [api.get(path).json for path in ("/pools", "/dags/example_etl/dag_runs",
                                            "/dags/example_etl/paused")]


@pytest.mark.parametrize("method,path", NUL_PATHS, ids=[f"{m} {p}" for m, p in NUL_PATHS])
def test_nul_in_a_path_or_query_is_refused_before_any_query(
        api: ApiHarness, queries: QueryCounter, method: str, path: str) -> None:
    before = state(api)
    queries.armed = True
    response = api.call(method, path, json={} if method == "POST" else None)
    queries.armed = False
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "NUL character" in response.json["error"]
    assert queries.count == 0
    assert state(api) == before


@pytest.mark.parametrize("path,body,problem", BAD_BODIES,
                         ids=[f"{p} {m} {i}" for i, (p, _, m) in enumerate(BAD_BODIES)])
def test_unstorable_json_is_refused_before_any_query(
        api: ApiHarness, queries: QueryCounter, path: str, body: str, problem: str) -> None:
    before = state(api)
    queries.armed = True
    response = api.post(path, data=body.encode(), content_type="application/json")
    queries.armed = False
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    message = response.json["error"]
    assert problem in message, message
    assert "sys." not in message and "set_int_max_str_digits" not in message
    assert queries.count == 0
    assert state(api) == before


def test_what_is_accepted_stays_accepted(api: ApiHarness) -> None:
    """The gate refuses only what cannot be stored: other text, and conf as deep as the
    limit allows, go through (and come back) as before."""
    deepest = nested(MAX_JSON_DEPTH - 2)  # the body and conf objects hold it
    response = api.post("/dags/example_etl/dag_runs",
                        json={"run_id": "ok", "conf": {"deep": deepest, "text": "é ✓ 🎉"}})
    assert response.status_code == 200, response.json
    response = api.post("/pools", json={"name": "p é", "slots": 2, "description": "🎉"})
    assert response.status_code == 200 and response.json["pool"] == "p é"
    assert api.get("/pools/p%20%C3%A9").json["description"] == "🎉"


# Run ids: Airflow's rule on airflow2, today's on airflow1.

AIRFLOW2_REFUSED = ["a b", "a/b", "a#b", "ab\n", "é", "a;b", "a'b", "a\tb"]
ALLOWED_EVERYWHERE = ["ok", "A-Z_a.z~0:9+x", "manual__2025-01-01T00:00:00+00:00"]


@pytest.mark.parametrize("run_id", AIRFLOW2_REFUSED + ALLOWED_EVERYWHERE)
def test_run_ids_follow_the_flavors_rule(api: ApiHarness, run_id: str) -> None:
    response = api.post("/dags/example_etl/dag_runs",
                        json={"run_id": run_id, "execution_date": RUN})
    generated = {"airflow2": "dataset_triggered", "airflow3": "asset_triggered"}
    if api.flavor in generated and run_id in AIRFLOW2_REFUSED:
        assert response.status_code == 400
        assert response.json["error"] == (
            f"The run_id provided '{run_id}' does not match the pattern "
            f"'^[A-Za-z0-9_.~:+-]+$' or '^(?:manual|scheduled|{generated[api.flavor]})__"
            "(?:\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\+00:00)$'")
        assert api.get("/dags/example_etl/dag_runs").json == []
    else:
        assert response.status_code == 200, response.json
        assert response.json["run_id"] == run_id


def test_configured_run_id_pattern(api: ApiHarness) -> None:
    """``[scheduler] allowed_run_id_pattern`` replaces the default; the ids Airflow
    generates itself stay allowed."""
    config = Config.load(environ={}, database__sql_alchemy_conn=api.url,
                         api__auth_backend="default",
                         scheduler__allowed_run_id_pattern=r"^team-\d+$")
    client = LoopbackClient(mount_into(json_not_found, build_api(config, api.store), PREFIX))

    def trigger(run_id: str, when: str) -> int:
        return client.post(PREFIX + "/dags/example_etl/dag_runs",
                           json={"run_id": run_id, "execution_date": when}).status_code

    refused = 200 if api.flavor == "airflow1" else 400
    assert trigger("team-7", "2025-01-01T00:00:00") == 200
    assert trigger("manual__2025-01-02T00:00:00+00:00", "2025-01-02T00:00:00") == 200
    assert trigger("ok", "2025-01-03T00:00:00") == refused
    assert trigger("team-8\n", "2025-01-04T00:00:00") == refused


def test_a_broken_run_id_pattern_is_refused_at_start_up(api: ApiHarness) -> None:
    config = Config.load(environ={}, database__sql_alchemy_conn=api.url,
                         scheduler__allowed_run_id_pattern="^[unclosed")
    with pytest.raises(ValueError, match="allowed_run_id_pattern"):
        build_api(config, api.store)
