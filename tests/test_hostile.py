"""Hostile input against a real server process: schemathesis drives generated and
malformed requests from the served OpenAPI document, then targeted attacks. No 5xx, no
HTML, every error JSON, and nothing changes on a refused request."""

from __future__ import annotations

import http.client
import json
import os
import pickle
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from sqlalchemy import update

from api_plugin.store import Store
from api_plugin.web.openapi import openapi_document
from tests.servers import running_server
from tests.test_clients import seeded_database

SEEN = {"requests": 0, "5xx": 0}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, database URL) of ``api-plugin serve`` over a seeded airflow2 database."""
    from conftest import _create_sqlite_schema

    folder = tmp_path_factory.mktemp("hostile")
    path = folder / "airflow.db"
    _create_sqlite_schema(path, "airflow2")
    url = f"sqlite:///{path}"
    seeded_database(lambda flavor, backend: url, "airflow2")
    with running_server(folder, url) as server:
        yield server.base, url


# The schema is built from the document the server itself serves, without the
# schemathesis pytest plugin: each operation and generation mode becomes one plain test
# that drives a hypothesis strategy of cases, so the suite does not depend on the
# plugin's hooks into pytest internals (which broke with pytest 9.2).
SCHEMA = schemathesis.openapi.from_dict(openapi_document("http://127.0.0.1/api/experimental"))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Negative generation needs a constraint to break: a body or a typed query parameter.
# Free-form string path parameters and parameterless operations only get positive cases.
CASES = [(op, mode) for op in OPERATIONS for mode in GenerationMode
         if mode is GenerationMode.POSITIVE or len(op.body) or op.query]
EXAMPLES = {GenerationMode.POSITIVE: 160, GenerationMode.NEGATIVE: 300}


@pytest.mark.parametrize("operation,mode", CASES,
                         ids=[f"{op.label}-{mode.value}" for op, mode in CASES])
def test_generated_requests_never_fail_the_server(
        live_server: tuple[str, str], operation: Any, mode: GenerationMode) -> None:
    base, _ = live_server
    base_url = base + "/api/experimental"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, timeout=10)
        SEEN["requests"] += 1
        SEEN["5xx"] += response.status_code >= 500
        assert response.status_code < 500, (case.path, case.body, response.text)
        headers = {k.lower(): v for k, v in response.headers.items()}
        content_type = headers.get("content-type", "")
        if isinstance(content_type, list):
            content_type = content_type[0] if content_type else ""
        if operation.path != "/dags/{dag_id}/code" or response.status_code != 200:
            assert content_type == "application/json", (case.path, response.status_code,
                                                         response.request.method, headers)
            assert response.text == "" or isinstance(response.json(), dict | list)
        assert "<html" not in response.text.lower()

    check()


def raw(base: str, method: str, path: str, body: bytes = b"",
        headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


PREFIX = "/api/experimental"
TARGETED: list[tuple[str, str, bytes, set[int]]] = [
    ("POST", "/dags/example_etl/dag_runs", b'{"conf": "' + b"x" * (2 << 20) + b'"}', {413}),
    ("POST", "/dags/example_etl/dag_runs", b"[" * 50_000 + b"]" * 50_000, {400}),
    ("POST", "/dags/example_etl/dag_runs", b'{"conf": {"a": "\xff\xfe"}}', {400}),
    ("POST", "/dags/example_etl/dag_runs", b'{"execution_date": "9999-12-31T23:59:59-23:59"}',
     {400}),
    ("POST", "/dags/example_etl/dag_runs", b'{"execution_date": "0001-01-01T00:00:00+14:00"}',
     {400}),
    ("POST", "/dags/example_etl/dag_runs", b'{"execution_date": 1e309}', {400}),
    ("POST", "/dags/example_etl/dag_runs", b'{"run_id": {"$ne": 1}}', {400}),
    ("GET", "/dags/..%2F..%2Fetc%2Fpasswd/dag_runs", b"", {400, 404}),
    ("GET", "/dags/../../etc/passwd", b"", {404}),
    ("GET", "/dags/x'%20OR%201=1--/dag_runs", b"", {400}),
    ("GET", "/dags/example_etl'%3B%20DROP%20TABLE%20dag_run%3B--/paused", b"", {404}),
    ("GET", "/pools/default_pool'%20OR%20'1'='1", b"", {404}),
    ("POST", "/pools", b'{"name": "p", "slots": 99999999999999999999, "description": ""}',
     {400}),
    ("POST", "/pools", b'{"name": "p", "slots": -5, "description": ""}', {400}),
    ("POST", "/pools", b'{"name": "p", "slots": "1; DROP TABLE slot_pool", "description": ""}',
     {400}),
    ("POST", "/pools", b'{"name": "' + b"n" * 300 + b'", "slots": 1, "description": ""}', {400}),
    ("GET", "/dags/example_etl/dag_runs?limit=99999999999999999999", b"", {400}),
    ("GET", "/dags/example_etl/dag_runs/" + "9" * 3000, b"", {400}),
    ("GET", "/dags/example_etl/dag_runs/" + "9" * 9000, b"", {414, 400}),
    ("GET", "/dags/example_etl/dag_runs/%00", b"", {400}),
    ("GET", "/dags/example%00_etl/paused/true", b"", {400}),
    ("GET", "/dags/example_etl/paused/TRUE", b"", {400}),
    ("GET", "/pools/default%00pool", b"", {400}),
    ("GET", "/dags/example_etl/dag_runs?state=%00", b"", {400}),
    ("POST", "/dags/example_etl/dag_runs", b'{"run_id": "x\\u0000"}', {400}),
    ("POST", "/dags/example_etl/dag_runs", b'{"run_id": "x\\ud800"}', {400}),
    ("POST", "/dags/example_etl/dag_runs", b'{"run_id": "a b"}', {400}),
    ("POST", "/dags/example_etl/dag_runs", b'{"conf": ' + b'{"a": ' * 900 + b"1" + b"}" * 901,
     {400}),
    ("POST", "/dags/example_etl/dag_runs",
     b'{"conf": "' + b'{\\"a\\": ' * 900 + b"1" + b"}" * 900 + b'"}', {400}),
    ("POST", "/pools", b'{"name": "p\\ud800", "slots": 1, "description": ""}', {400}),
    ("DELETE", "/test", b"", {405}),
    ("TRACE", "/test", b"", {405}),
]


@pytest.mark.parametrize("method,path,body,expected", TARGETED,
                         ids=[f"{m} {p[:40]}" for m, p, _, _ in TARGETED])
def test_targeted_attacks(live_server: tuple[str, str], method: str, path: str, body: bytes,
                          expected: set[int]) -> None:
    base, _ = live_server
    before = [raw(base, "GET", PREFIX + p)[2] for p in ("/pools", "/dags/example_etl/dag_runs")]
    status, content_type, payload = raw(base, method, PREFIX + path, body,
                                        {"Content-Type": "application/json"})
    assert status in expected, payload[:300]
    assert content_type == "application/json"
    assert "error" in json.loads(payload)
    after = [raw(base, "GET", PREFIX + p)[2] for p in ("/pools", "/dags/example_etl/dag_runs")]
    assert after == before  # a refused request changes nothing


MALFORMED_CHUNKS = [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXX\r\n0\r\n\r\n", b"-1\r\n",
                    b"5\r\nab"]


@pytest.mark.parametrize("chunks", MALFORMED_CHUNKS, ids=["size", "terminator", "negative",
                                                          "cut"])
@pytest.mark.parametrize("path", ["/pools", "/dags/example_etl/dag_runs"])
def test_a_malformed_chunked_body_is_a_400(live_server: tuple[str, str], path: str,
                                           chunks: bytes) -> None:
    base, _ = live_server
    host, port = base.removeprefix("http://").split(":")
    before = raw(base, "GET", PREFIX + "/pools")[2]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {PREFIX}{path} HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunks)
        sock.shutdown(socket.SHUT_WR)  # the cut body ends here
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"Content-Type: application/json" in head
    assert "could not be read" in json.loads(body)["error"]
    assert raw(base, "GET", PREFIX + "/pools")[2] == before


def test_oversized_headers_get_json_from_gunicorn_itself(live_server: tuple[str, str]) -> None:
    base, _ = live_server
    status, content_type, payload = raw(base, "GET", PREFIX + "/test",
                                        headers={"X-Big": "b" * 10_000})
    assert status in (400, 431) and content_type == "application/json"
    assert json.loads(payload)["error"]
    headers = {f"X-H{i}": "v" for i in range(200)}
    status, content_type, _ = raw(base, "GET", PREFIX + "/test", headers=headers)
    assert status in (400, 431) and content_type == "application/json"


def test_generated_request_count(capsys: pytest.CaptureFixture[str]) -> None:
    """Reports how many generated requests the server answered (for the closing notes)."""
    with capsys.disabled():
        print(f"\nschemathesis: {SEEN['requests']} generated requests, {SEEN['5xx']} 5xx")
    assert SEEN["requests"] >= 2000 and SEEN["5xx"] == 0


class Exploit:
    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, ("touch /tmp/api_plugin_pwned",))


def test_a_pickled_conf_that_runs_code_is_never_executed(live_server: tuple[str, str],
                                                         tmp_path: Path) -> None:
    base, url = live_server
    marker = Path("/tmp/api_plugin_pwned")
    marker.unlink(missing_ok=True)
    status, _, _ = raw(base, "POST", PREFIX + "/dags/example_etl/dag_runs",
                       b'{"execution_date": "2025-09-09T00:00:00"}')
    assert status == 200
    store = Store.open(url)
    try:
        with store.write() as conn:
            conn.execute(update(store.tables.dag_run).values(conf=pickle.dumps(Exploit())))
    finally:
        store.dispose()
    for path in ["/dags/example_etl/dag_runs", "/dags/example_etl/dag_runs/2025-09-09T00:00:00",
                 "/dags/example_etl/dag_runs/2025-09-09T00:00:00/tasks/load", "/latest_runs"]:
        status, _, _ = raw(base, "GET", PREFIX + path)
        assert status == 200
    assert not marker.exists()
