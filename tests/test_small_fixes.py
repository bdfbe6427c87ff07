"""Issue 13's small items: non-ASCII in the 404 outside the prefix, a number too long to
read named without Python's settings, gunicorn's log telling a worker timeout as one,
and a ``password,deny_all`` chain still challenging a client without credentials."""

from __future__ import annotations

from pathlib import Path

from gunicorn.config import Config as GunicornConfig

from api_plugin.serving.gunicorn_logging import TimeoutAwareLogger
from conftest import ApiHarness
from tests.test_auth import app_with, basic


def test_the_404_outside_the_prefix_shows_non_ascii(api: ApiHarness) -> None:
    response = api.client.get("/café/ü%20x")
    assert response.status_code == 404
    assert response.json == {"error": "Not found: /café/ü x"}
    response = api.client.get("/api/experimental/dags/é/nope")
    assert response.json == {"error": "Not found: /dags/é/nope"}


def test_a_number_too_long_names_no_python_setting(api: ApiHarness) -> None:
    response = api.post("/pools", data=b'{"name": "p", "slots": ' + b"7" * 5000 + b"}",
                        content_type="application/json")
    assert response.status_code == 400
    assert response.json == {"error": "Request body holds a number with more than 4300 digits"}


def gunicorn_log(tmp_path: Path) -> tuple[TimeoutAwareLogger, Path]:
    path = tmp_path / "error.log"
    cfg = GunicornConfig()
    cfg.set("errorlog", str(path))
    cfg.set("timeout", 7)
    return TimeoutAwareLogger(cfg), path


def test_a_worker_killed_after_a_timeout_is_logged_as_a_timeout(tmp_path: Path) -> None:
    """The calls gunicorn's arbiter makes (``murder_workers``, then ``reap_workers``)."""
    log, path = gunicorn_log(tmp_path)
    log.critical("WORKER TIMEOUT (pid:%s)", 4242)
    log.error("Worker (pid:%s) was sent %s! Perhaps out of memory?", 4242, "SIGKILL")
    log.error("Worker (pid:%s) was sent %s! Perhaps out of memory?", 5151, "SIGKILL")
    text = path.read_text()
    assert "Perhaps out of memory" not in text
    assert "WORKER TIMEOUT (pid:4242): a request ran longer than the worker timeout (7 s" in text
    assert ("Worker (pid:4242) was killed with SIGKILL: its request ran longer than the "
            "worker timeout (7 s)") in text
    assert "Worker (pid:5151) was sent SIGKILL! It was not sent by gunicorn" in text


def test_serve_uses_the_timeout_aware_logger() -> None:
    """``api-plugin serve`` hands gunicorn this logger, and gunicorn loads it."""
    from api_plugin.serving.serve import gunicorn_options
    from api_plugin.settings.config import Config

    options = gunicorn_options(Config.load(environ={}), "127.0.0.1:1", 1)
    cfg = GunicornConfig()
    for key, value in options.items():
        cfg.set(key, value)
    assert cfg.logger_class is TimeoutAwareLogger


def test_password_deny_all_challenges_a_client_without_credentials(
        api: ApiHarness, users: dict[str, str]) -> None:
    client = app_with(api, "password,deny_all")
    response = client.get("/api/experimental/test")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic realm=")
    assert client.get("/api/experimental/test", headers=basic("alice", users["alice"])).json == {
        "status": "OK"}
    assert client.get("/api/experimental/test",
                      headers=basic("alice", "wrong")).status_code in (401, 403)
    assert app_with(api, "deny_all").get("/api/experimental/test").status_code == 403
