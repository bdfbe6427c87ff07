"""The newcomer's path: ``api-plugin serve`` as a real gunicorn process over loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers import Server, request


@pytest.fixture
def served(spawn_server: Callable[..., Server]) -> str:
    """``api-plugin serve`` on the embedded default database: the API's URL."""
    return spawn_server().api


def test_serve_answers_and_triggers_the_example(served: str) -> None:
    assert request(served + "/test") == (200, {"status": "OK"})
    status, body = request(served + "/dags/example_etl/dag_runs", {"conf": '{"key":"value"}'})
    assert status == 200 and body["run_id"].startswith("manual__")
    # several workers share the one SQLite file: every request sees the run
    for _ in range(6):
        status, runs = request(served + "/dags/example_etl/dag_runs")
        assert status == 200 and [r["run_id"] for r in runs] == [body["run_id"]]
    assert request(served.rsplit("/api/", 1)[0] + "/")[0] == 404


@pytest.mark.parametrize("bind", ["0.0.0.0:1", "unix:{tmp}/api.sock"])
def test_serve_refuses_an_open_api_on_a_public_bind(tmp_path: Path, bind: str) -> None:
    """A public address, or a unix socket (what a proxy in front connects to, making
    every client look local)."""
    env = {**os.environ, "API_PLUGIN_CONFIG": str(tmp_path / "api_plugin.cfg")}
    result = subprocess.run(
        [sys.executable, "-m", "api_plugin.cli", "serve", "--bind", bind.format(tmp=tmp_path)],
        env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "allow_open_api" in result.stderr
