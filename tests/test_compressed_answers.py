"""A long kept answer (latest_runs of many DAGs) goes out gzipped to a client that
accepts gzip, byte for byte the same JSON once decompressed, and plain to one that does
not; either way it says ``Vary: Accept-Encoding``. Short answers are never compressed."""

from __future__ import annotations

import gzip
import http.client
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert, select

from api_plugin.client.json_client import JsonClient
from api_plugin.web.rendering import GZIP_MIN_BYTES, accepts_gzip
from conftest import ApiHarness
from tests.servers import Server


@pytest.mark.parametrize(("header", "expected"), [
    (None, False),
    ("", False),
    ("gzip", True),
    ("GZip", True),
    ("x-gzip", True),
    ("deflate, gzip;q=0.5", True),
    ("gzip, deflate, br", True),
    ("gzip;q=0", False),
    ("gzip; q=0.0", False),
    ("gzip;q=zero", False),
    ("*", True),
    ("*;q=0", False),
    ("br, *", True),
    ("gzip;q=0, *", False),
    ("identity", False),
    ("deflate", False),
])
def test_accept_encoding_is_read_as_http_says(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def many_dags_with_runs(api: ApiHarness, dags: int) -> None:
    """One triggered run, copied to ``dags`` other dag_ids (latest_runs reads dag_run
    alone), so that latest_runs is long."""
    first = api.post("/dags/example_etl/dag_runs",
                     json={"execution_date": "2025-01-01T00:00:00+00:00"})
    assert first.status_code == 200
    dag_run = api.store.tables.dag_run
    with api.store.engine.begin() as conn:
        row = dict(conn.execute(select(dag_run)).mappings().one())
        row.pop("id")
        conn.execute(insert(dag_run), [{**row, "dag_id": f"copy_{n:04d}"}
                                       for n in range(dags)])


def test_a_long_kept_answer_is_gzipped_for_clients_that_accept_it(api: ApiHarness) -> None:
    many_dags_with_runs(api, 150)
    plain = api.get("/latest_runs")
    assert len(plain.data) >= GZIP_MIN_BYTES
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    assert len(plain.get_json()["items"]) == 151

    zipped = api.get("/latest_runs", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.status_code == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert zipped.headers["Content-Type"] == plain.headers["Content-Type"]
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(plain.data) // 10
    assert gzip.decompress(zipped.data) == plain.data

    refused = api.get("/latest_runs", headers={"Accept-Encoding": "gzip;q=0, *"})
    assert "Content-Encoding" not in refused.headers
    assert refused.data == plain.data

    head = api.call("HEAD", "/latest_runs", headers={"Accept-Encoding": "gzip"})
    assert head.headers["Content-Encoding"] == "gzip"
    assert head.headers["Content-Length"] == zipped.headers["Content-Length"]
    assert head.data == b""


def test_short_answers_are_never_compressed(api: ApiHarness) -> None:
    api.post("/dags/example_etl/dag_runs", json={"execution_date": "2025-01-01T00:00:00+00:00"})
    for path in ("/latest_runs", "/test", "/pools", "/dags/example_etl/dag_runs"):
        answer = api.get(path, headers={"Accept-Encoding": "gzip"})
        assert answer.status_code == 200, path
        assert "Content-Encoding" not in answer.headers, path
        assert "Vary" not in answer.headers, path
        json.loads(answer.data)


def test_a_served_answer_reaches_both_kinds_of_client(
        api: ApiHarness, spawn_server: Callable[..., Server]) -> None:
    """Through a real server: http.client (asks for nothing) reads plain JSON; the
    HTTP client (requests, which asks for gzip) gets it compressed and decodes it."""
    many_dags_with_runs(api, 150)
    server = spawn_server(api.url)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/api/experimental/latest_runs", headers={"Accept-Encoding": "gzip"})
        answer = conn.getresponse()
        zipped = answer.read()
        assert answer.getheader("Content-Encoding") == "gzip"
        conn.request("GET", "/api/experimental/latest_runs")
        answer = conn.getresponse()
        plain = answer.read()
        assert answer.getheader("Content-Encoding") is None
    finally:
        conn.close()
    assert gzip.decompress(zipped) == plain
    client = JsonClient(server.base)
    try:
        latest: dict[str, Any] = client.latest_runs()
    finally:
        client.close()
    assert latest == json.loads(plain)
