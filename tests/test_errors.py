"""The error family (``api_plugin.errors``): each status carries its headers, one function
renders every error, and every place that answers an error uses it — the app, the auth
middleware, the mount's 404, the per-process 503 and the gunicorn worker's error page."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.test import Client

from api_plugin.auth.base import AuthMiddleware, Denied, Environ
from api_plugin.errors import (
    ApiError,
    BadRequest,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    error_for_status,
    error_response,
    status_line,
)
from api_plugin.serving.gunicorn_worker import write_json_error
from api_plugin.serving.mount import json_not_found
from api_plugin.serving.per_process import PerProcessApp
from conftest import PREFIX, ApiHarness

ROOT = Path(__file__).resolve().parent.parent


def rendered(error: ApiError) -> tuple[int, dict[str, list[str]], bytes]:
    status, headers, body = error_response(error)
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name, []).append(value)
    return int(status[:3]), grouped, body


def test_status_lines_are_werkzeugs_upper_cased() -> None:
    assert status_line(200) == "200 OK"
    assert status_line(413) == "413 REQUEST ENTITY TOO LARGE"
    assert status_line(503) == "503 SERVICE UNAVAILABLE"
    for code in (400, 401, 403, 404, 405, 408, 409, 429, 500):
        assert status_line(code) == f"{code} {HTTP_STATUS_CODES[code].upper()}"
    assert status_line(599) == "599 UNKNOWN"


def test_each_status_carries_its_headers() -> None:
    status, headers, body = rendered(MethodNotAllowed("no", allowed=["GET", "HEAD"]))
    assert (status, headers["Allow"]) == (405, ["GET, HEAD"])
    assert json.loads(body) == {"error": "no"}
    assert headers["Content-Type"] == ["application/json"]
    assert headers["Content-Length"] == [str(len(body))]
    assert rendered(ServiceUnavailable("later"))[1]["Retry-After"] == ["1"]
    assert rendered(ServiceUnavailable("later", retry_after=5))[1]["Retry-After"] == ["5"]
    assert rendered(TooManyRequests("slow", retry_after=61))[1]["Retry-After"] == ["61"]
    assert "Retry-After" not in rendered(TooManyRequests("slow"))[1]
    challenged = rendered(Unauthorized("who?", challenges=["Bearer", 'Basic realm="x"']))
    assert challenged[0] == 401
    assert challenged[1]["WWW-Authenticate"] == ["Bearer", 'Basic realm="x"']
    assert rendered(BadRequest("bad"))[2] == b'{"error":"bad"}'


def test_an_answer_rebuilds_the_same_error() -> None:
    for error in (BadRequest("a"), NotFound("b"), MethodNotAllowed("c", allowed=["GET"]),
                  ServiceUnavailable("d"), TooManyRequests("e", retry_after=3),
                  Unauthorized("f", challenges=["Negotiate"]), RequestTimeout("g"),
                  ApiError("h", 418)):
        status, headers, _ = error_response(error)
        again = error_for_status(int(status[:3]), error.message, headers[2:])
        assert type(again) is type(error) and again == error
        assert again.headers == error.headers  # no Retry-After added twice
    assert error_for_status(401, "x").status == 401
    assert isinstance(error_for_status(401, "x"), Unauthorized)


def test_an_error_is_a_wsgi_app_and_head_has_no_body() -> None:
    started: list[tuple[str, list[tuple[str, str]]]] = []
    body = NotFound("gone")({"REQUEST_METHOD": "HEAD"},
                            lambda status, headers: started.append((status, headers)))
    assert body == [b""] and started[0][0] == "404 NOT FOUND"
    assert ("Content-Length", str(len(b'{"error":"gone"}'))) in started[0][1]


def test_every_error_site_answers_through_the_one_renderer(api: ApiHarness) -> None:
    # the app: an unknown method on a known path
    response = api.call("PUT", "/pools")
    expected = MethodNotAllowed("Method PUT not allowed; use GET, HEAD, POST",
                                allowed=["GET", "HEAD", "POST"])
    status, _, body = error_response(expected)
    assert (response.status, response.get_data()) == (status, body)
    assert response.headers["Allow"] == "GET, HEAD, POST"
    # the auth middleware: a 401 with its challenge, and a refusal's own status
    class Refuses:
        name = "refuses"

        def __init__(self, outcome: Denied, challenge: str | None) -> None:
            self.outcome, self._challenge = outcome, challenge

        def challenge(self) -> str | None:
            return self._challenge

        def authenticate(self, environ: Environ) -> Denied:
            return self.outcome

    challenged = Client(AuthMiddleware(json_not_found, [Refuses(Denied(401, "No"), "Basic")]))
    response = challenged.get("/x", headers={"Authorization": "Basic eDp5"})
    assert response.status == "401 UNAUTHORIZED"
    assert response.get_data() == error_response(Unauthorized("No"))[2]
    assert response.headers.getlist("WWW-Authenticate") == ["Basic"]
    slowed = Client(AuthMiddleware(json_not_found, [Refuses(
        Denied(429, "Wait", (("Retry-After", "7"),)), None)]))
    response = slowed.get("/x", headers={"Authorization": "Basic eDp5"})
    assert (response.status, response.headers["Retry-After"]) == ("429 TOO MANY REQUESTS", "7")
    # the mount's 404 outside the prefix
    response = api.client.get("/elsewhere/é")
    assert response.status == "404 NOT FOUND"
    assert response.get_data() == error_response(NotFound("Not found: /elsewhere/é"))[2]
    # the per-process app that cannot start yet

    def broken() -> Any:
        raise RuntimeError("not yet")

    response = Client(PerProcessApp(broken)).get(PREFIX + "/test")
    assert (response.status, response.headers["Retry-After"]) == ("503 SERVICE UNAVAILABLE",
                                                                  "1")


def test_the_gunicorn_error_page_is_the_same_answer() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        write_json_error(ours, 400, "Bad Request", "Invalid HTTP Version")
        ours.shutdown(socket.SHUT_WR)
        raw = b""
        while chunk := theirs.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status, headers, expected = error_response(BadRequest("Bad Request: Invalid HTTP Version"))
    assert lines[0] == f"HTTP/1.1 {status}"
    assert lines[1:] == ["Connection: close", *(f"{k}: {v}" for k, v in headers)]
    assert body == expected


@pytest.mark.parametrize("package", ["web", "auth", "serving", "client", "cli"])
def test_no_second_status_table(package: str) -> None:
    """Status lines are written by ``errors.status_line`` alone."""
    literal = re.compile(r"[\"'][1-5]\d\d [A-Z][A-Za-z ]+[\"']")
    for source in (ROOT / "api_plugin" / package).rglob("*.py"):
        found = literal.findall(source.read_text(encoding="utf-8"))
        assert not found, f"{source.name} writes status lines of its own: {found}"
