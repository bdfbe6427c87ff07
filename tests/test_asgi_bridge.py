"""The ASGI bridge that serves the API inside Airflow 3's api-server (asgi_bridge.py),
driven in-process the way an ASGI server drives it: the PEP 3333 environ it builds,
whole answers, streamed ones (closed however they end), bodies, and lifespan. The real
api-server hosting it is tests/compat/test_airflow3.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from api_plugin.serving import asgi_bridge
from api_plugin.serving.asgi_bridge import WsgiOnAsgi, environ
from api_plugin.serving.mount import build_api
from api_plugin.settings.config import Config
from conftest import ApiHarness

PREFIX = "/api/experimental"


def scope(path: str, method: str = "GET", query: bytes = b"",
          headers: list[tuple[bytes, bytes]] | None = None,
          client: tuple[str, int] | None = ("127.0.0.1", 50000)) -> dict[str, Any]:
    return {"type": "http", "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "root_path": PREFIX, "query_string": query,
            "headers": headers or [(b"host", b"localhost")], "server": ("127.0.0.1", 8080),
            "client": client}


def call(app: Any, request: dict[str, Any], body: bytes = b"",
         parts: int = 1) -> tuple[int, dict[str, str], list[bytes]]:
    """Run one request through ``app`` as a server would: (status, headers, body parts)."""
    size = max(1, -(-len(body) // parts))
    chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    incoming = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
                for i, chunk in enumerate(chunks)]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(request, receive, send))
    start, *bodies = sent
    assert start["type"] == "http.response.start"
    assert [m.get("more_body", False) for m in bodies] == [True] * (len(bodies) - 1) + [False]
    headers = {n.decode().lower(): v.decode() for n, v in start["headers"]}
    return start["status"], headers, [m["body"] for m in bodies]


@pytest.fixture
def bridged(api: ApiHarness) -> WsgiOnAsgi:
    config = Config.load(environ={}, database__sql_alchemy_conn=api.url,
                         api__auth_backend="default")
    return WsgiOnAsgi(build_api(config, api.store))


def test_the_environ_follows_pep_3333() -> None:
    env = environ(scope(f"{PREFIX}/dags/caf\u00e9/paused", query=b"a=1&b=%20",
                        headers=[(b"host", b"h"), (b"content-type", b"application/json"),
                                 (b"x-many", b"1"), (b"x-many", b"2"),
                                 (b"x_forwarded_for", b"10.0.0.1")]), b"{}")
    assert env["SCRIPT_NAME"] == PREFIX
    assert env["PATH_INFO"] == "/dags/caf\u00e9/paused".encode().decode("latin-1")
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert (env["CONTENT_TYPE"], env["CONTENT_LENGTH"]) == ("application/json", "2")
    assert env["HTTP_X_MANY"] == "1,2"
    assert "HTTP_X_FORWARDED_FOR" not in env  # an underscore name never passes for a dash
    assert (env["REMOTE_ADDR"], env["SERVER_NAME"], env["SERVER_PORT"]) == (
        "127.0.0.1", "127.0.0.1", "8080")
    assert env["wsgi.input"].read() == b"{}"
    assert "REMOTE_ADDR" not in environ(scope(PREFIX + "/test", client=None), b"")


def test_answers_match_the_wsgi_app(api: ApiHarness, bridged: WsgiOnAsgi) -> None:
    status, headers, body = call(bridged, scope(PREFIX + "/test"))
    assert (status, json.loads(b"".join(body))) == (200, {"status": "OK"})
    assert headers["content-type"] == "application/json"
    when = "2031-02-03T04:05:06+00:00"
    payload = json.dumps({"execution_date": when, "conf": {"k": "v" * 5000}}).encode()
    status, _, body = call(bridged, scope(PREFIX + "/dags/example_etl/dag_runs", "POST",
                                          headers=[(b"content-type", b"application/json"),
                                                   (b"content-length",
                                                    str(len(payload)).encode())]),
                           payload, parts=4)
    assert status == 200 and json.loads(b"".join(body))["execution_date"] == when
    status, _, body = call(bridged, scope(PREFIX + "/dags/nope/paused"))
    assert status == 404 and "error" in json.loads(b"".join(body))
    status, _, body = call(bridged, scope(PREFIX + "/dags/example_etl/dag_runs",
                                          query=b"limit=1"))
    assert [r["execution_date"] for r in json.loads(b"".join(body))] == [
        r["execution_date"] for r in api.get("/dags/example_etl/dag_runs?limit=1").get_json()]


def test_the_open_backend_refuses_a_request_with_no_client_address(
        bridged: WsgiOnAsgi) -> None:
    status, _, body = call(bridged, scope(PREFIX + "/test", client=None))
    assert status == 403 and "error" in json.loads(b"".join(body))


class Chunks:
    """A WSGI app whose answer comes in ``count`` chunks, noting when it is closed."""

    def __init__(self, count: int, size: int) -> None:
        self.count, self.size, self.closed = count, size, False

    def __call__(self, env: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return self._body()

    def _body(self) -> Iterator[bytes]:
        try:
            for n in range(self.count):
                yield bytes([65 + n % 26]) * self.size
        finally:
            self.closed = True


def test_a_long_answer_is_sent_in_chunks_and_closed() -> None:
    app = Chunks(40, 10_000)  # 400 kB: over FIRST_BYTES, so streamed
    status, _, body = call(WsgiOnAsgi(app), scope(PREFIX + "/x"))
    assert status == 200 and b"".join(body) == b"".join(
        bytes([65 + n % 26]) * 10_000 for n in range(40))
    assert 1 < len(body) <= 40 - asgi_bridge.FIRST_BYTES // 10_000 + 2
    assert app.closed
    short = Chunks(3, 10)
    status, _, body = call(WsgiOnAsgi(short), scope(PREFIX + "/x"))
    assert body == [b"A" * 10 + b"B" * 10 + b"C" * 10] and short.closed


def test_a_transfer_cut_by_the_client_still_closes_the_answer() -> None:
    app = Chunks(40, 10_000)
    bridge = WsgiOnAsgi(app)
    sends = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal sends
        sends += 1
        if sends == 3:
            raise OSError("client went away")

    with pytest.raises(OSError):
        asyncio.run(bridge(scope(PREFIX + "/x"), receive, send))
    assert app.closed


def test_a_body_over_the_bridges_bound_is_refused(
        bridged: WsgiOnAsgi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asgi_bridge, "MAX_BODY", 1000)
    status, _, body = call(bridged, scope(PREFIX + "/pools", "POST"), b"x" * 3000, parts=3)
    assert status == 413 and "error" in json.loads(b"".join(body))


def test_a_client_gone_before_its_body_gets_nothing(bridged: WsgiOnAsgi) -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(bridged(scope(PREFIX + "/pools", "POST"), receive, send))
    assert sent == []


def test_lifespan_is_acknowledged(bridged: WsgiOnAsgi) -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    asyncio.run(bridged({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
