"""Connections kept alive by ``api-plugin serve`` (the buffering worker): several requests
per connection, pipelined requests answered in order, and never a request read out of
another one's bytes. Each property is shown by what comes back on the socket: which
answers, in which order, and when the server closes."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable

import pytest

from tests.servers import Server

PREFIX = "/api/experimental"
OK = b'{"status":"OK"}'


@pytest.fixture
def served(spawn_server: Callable[..., Server]) -> Server:
    return spawn_server()


def get(path: str, extra: str = "") -> bytes:
    return f"GET {PREFIX}{path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode()


class Answers:
    """HTTP answers read one after another from one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")

    def next(self) -> tuple[int, dict[str, str], bytes] | None:
        """The next answer (status, headers, body), or None when the server closed."""
        line = self.file.readline()
        if not line:
            return None
        status = int(line.split()[1])
        headers: dict[str, str] = {}
        while (header := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while (size := int(self.file.readline().split(b";")[0], 16)) > 0:
                body += self.file.read(size)
                self.file.readline()
            self.file.readline()
        else:
            body = self.file.read(int(headers.get("content-length", "0")))
        return status, headers, body

    def closed(self) -> bool:
        """True when the server has closed the connection (nothing more comes)."""
        return self.file.read(1) == b""


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def test_one_connection_serves_request_after_request(served: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    answers = []
    conn.request("GET", PREFIX + "/test")
    first = conn.getresponse()
    answers.append((first.status, first.read()))
    sock = conn.sock
    body = json.dumps({"name": "kept", "slots": 3, "description": "d"})
    conn.request("POST", PREFIX + "/pools", body=body,
                 headers={"Content-Type": "application/json"})
    created = conn.getresponse()
    answers.append((created.status, created.read()))
    conn.request("GET", PREFIX + "/pools/nope")
    missing = conn.getresponse()
    answers.append((missing.status, missing.read()))
    conn.request("GET", PREFIX + "/pools/kept")
    again = conn.getresponse()
    answers.append((again.status, again.read()))
    assert conn.sock is sock, "the connection was not kept"
    assert [status for status, _ in answers] == [200, 200, 404, 200]
    assert first.getheader("Connection") == "keep-alive"
    assert json.loads(answers[3][1])["slots"] == 3
    conn.close()


def test_pipelined_requests_are_answered_in_order(served: Server) -> None:
    with connect(served) as sock:
        sock.sendall(get("/test") + get("/pools/default_pool") + get("/dags/nope/paused")
                     + get("/test", "Connection: close\r\n"))
        answers = Answers(sock)
        got = [answers.next() for _ in range(4)]
        assert answers.closed()
    statuses = [a[0] for a in got if a is not None]
    assert statuses == [200, 200, 404, 200]
    assert json.loads(got[1][2])["pool"] == "default_pool"  # type: ignore[index]
    assert got[3][1]["connection"] == "close"  # type: ignore[index]


def test_an_unread_body_is_never_taken_for_the_next_request(served: Server) -> None:
    """A body the app refuses without reading (405) is dropped with the request; the
    request hidden inside it is not served, the next real one is."""
    hidden = get("/pools/default_pool")
    refused = (f"POST {PREFIX}/test HTTP/1.1\r\nHost: localhost\r\n"
               f"Content-Length: {len(hidden)}\r\n\r\n").encode() + hidden
    with connect(served) as sock:
        sock.sendall(refused + get("/test", "Connection: close\r\n"))
        answers = Answers(sock)
        first, second = answers.next(), answers.next()
        assert answers.closed()
    assert first is not None and first[0] == 405
    assert second is not None and (second[0], json.loads(second[2])) == (200, {"status": "OK"})


@pytest.mark.parametrize("framing", [
    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "Content-Length: 5\r\nContent-Length: 5\r\n",
    "Transfer-Encoding: gzip, chunked\r\n",
    "Content-Length: +5\r\n",
], ids=["length-and-chunked", "two-lengths", "chunked-not-alone", "signed-length"])
def test_ambiguous_framing_ends_the_connection(served: Server, framing: str) -> None:
    """Where two readers could disagree on where a request ends, it is the last one on
    its connection: whatever follows is never answered as a request."""
    smuggled = get("/pools/default_pool")
    request = (f"POST {PREFIX}/pools HTTP/1.1\r\nHost: localhost\r\n{framing}\r\n"
               "0\r\n\r\n").encode() + smuggled
    with connect(served) as sock:
        sock.sendall(request)
        answers = Answers(sock)
        first = answers.next()
        assert answers.closed()
    assert first is not None and 400 <= first[0] < 500
    assert first[1]["content-type"] == "application/json"


@pytest.mark.parametrize("request_bytes", [
    f"GET {PREFIX}/test HTTP/1.0\r\n\r\n".encode(),
    get("/test", "Connection: close\r\n"),
], ids=["http-1.0", "connection-close"])
def test_a_client_that_asks_for_close_gets_it(served: Server, request_bytes: bytes) -> None:
    with connect(served) as sock:
        sock.sendall(request_bytes + get("/test"))
        answers = Answers(sock)
        first = answers.next()
        assert answers.closed()
    assert first is not None and first[0] == 200


def test_keep_alive_zero_closes_after_every_answer(
        spawn_server: Callable[..., Server]) -> None:
    server = spawn_server(settings={"webserver__keep_alive": "0"})
    with connect(server) as sock:
        sock.sendall(get("/test") + get("/test"))
        answers = Answers(sock)
        first = answers.next()
        assert answers.closed()
    assert first is not None and first[1]["connection"] == "close"


def test_an_idle_connection_is_closed_by_the_server(
        spawn_server: Callable[..., Server]) -> None:
    server = spawn_server(settings={"webserver__keep_alive": "1"})
    with connect(server) as sock:
        sock.sendall(get("/test"))
        answers = Answers(sock)
        first = answers.next()
        assert first is not None and first[1]["connection"] == "keep-alive"
        assert answers.closed()  # no request came: the server let it go (no 408)


def test_idle_kept_connections_hold_no_worker(served: Server) -> None:
    """Forty connections each kept after an answer, against two workers: a new client
    is still answered, and so is every kept connection's next request."""
    kept = [connect(served) for _ in range(40)]
    try:
        readers = []
        for sock in kept:
            sock.sendall(get("/test"))
            reader = Answers(sock)
            answer = reader.next()
            assert answer is not None and answer[0] == 200
            readers.append(reader)
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        conn.request("GET", PREFIX + "/pools")
        assert conn.getresponse().status == 200
        conn.close()
        for sock, reader in zip(kept, readers, strict=True):
            sock.sendall(get("/pools/default_pool"))
            answer = reader.next()
            assert answer is not None and answer[0] == 200
    finally:
        for sock in kept:
            sock.close()


def test_expect_continue_on_a_kept_connection(served: Server) -> None:
    body = json.dumps({"name": "later", "slots": 1, "description": ""}).encode()
    head = (f"POST {PREFIX}/pools HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
            f"application/json\r\nExpect: 100-continue\r\nContent-Length: {len(body)}"
            "\r\n\r\n").encode()
    with connect(served) as sock:
        sock.sendall(get("/test"))
        answers = Answers(sock)
        assert answers.next() is not None
        sock.sendall(head)
        assert answers.file.readline().startswith(b"HTTP/1.1 100")
        assert answers.file.readline() == b"\r\n"
        sock.sendall(body + get("/pools/later", "Connection: close\r\n"))
        created, read = answers.next(), answers.next()
        assert answers.closed()
    assert created is not None and created[0] == 200
    assert read is not None and json.loads(read[2])["pool"] == "later"


class _Sends:
    """A socket that records each ``sendall``."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendall(self, data: bytes, *flags: int) -> None:
        self.sent.append(bytes(data))


def test_an_answer_in_hand_leaves_in_one_send() -> None:
    """gunicorn sends the status line and headers on their own; held, they go with the
    body's first piece. With nothing after them (a HEAD), ``release`` sends them alone;
    anything sent after that goes as it comes."""
    from api_plugin.serving.buffered_worker import _Replay

    sock = _Sends()
    replay = _Replay(sock, b"", whole=True)  # type: ignore[arg-type]
    replay.hold_head()
    replay.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    assert sock.sent == []
    replay.sendall(b"{}")
    replay.release()
    assert sock.sent == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    sock.sent.clear()
    replay.hold_head()
    replay.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
    replay.release()
    replay.sendall(b"more")
    assert sock.sent == [b"HTTP/1.1 200 OK\r\n\r\n", b"more"]


def test_a_head_answer_and_the_next_one_arrive_whole(served: Server) -> None:
    """An answer without a body (HEAD) still gets its held headers out, before the next
    answer on the same connection; and a streamed list is not held back."""
    with connect(served) as sock:
        sock.sendall(get("/test").replace(b"GET", b"HEAD", 1) + get("/test")
                     + get("/dags/example_etl/dag_runs"))
        answers = Answers(sock)
        status = answers.file.readline()
        headers = []
        while (header := answers.file.readline()) not in (b"\r\n", b""):
            headers.append(header.decode("latin-1").lower().strip())
        assert status.startswith(b"HTTP/1.1 200")
        assert f"content-length: {len(OK)}" in headers
        # no body after a HEAD's headers: the next bytes are the next answer
        after = answers.next()
        assert after is not None and (after[0], after[2]) == (200, OK)
        listed = answers.next()
        assert listed is not None and listed[0] == 200
        assert isinstance(json.loads(listed[2]), list)
