"""The newcomer's path: ``api-plugin serve`` as a real gunicorn process over loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(url: str, body: Any = None, method: str | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until_up(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.1)):  # polls, each at least 0.1 s apart
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            request(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds}s")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "API_PLUGIN_CONFIG": str(tmp_path / "home" / "api_plugin.cfg")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "api_plugin.cli", "serve", "--bind", f"127.0.0.1:{port}",
         "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/experimental"
    try:
        wait_until_up(base + "/test", proc)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
