"""Slow clients cannot take ``api-plugin serve`` offline: with 50 sockets sending one byte
a second (request headers, or a body that will never be whole) open against 2 workers,
a normal client is answered every time, and the slow ones are cut after the request-read
deadline. Proved by behaviour, not by a stopwatch; the latency figures are in
bench/slow_clients.py."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.servers import Server

PREFIX = "/api/experimental"
READ_TIMEOUT = 8  # seconds a request may take to arrive, for this server


@pytest.fixture
def served(spawn_server: Callable[..., Server]) -> int:
    """``api-plugin serve`` (2 workers) with the request-read deadline: its port."""
    return spawn_server(settings={"webserver__request_read_timeout": str(READ_TIMEOUT)}).port


HEADERS_SLOWLY = f"GET {PREFIX}/test HTTP/1.1\r\nHost: localhost\r\nX-Pad: {'p' * 200}\r\n"
BODY_HEAD = (f"POST {PREFIX}/pools HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
             "application/json\r\nContent-Length: 100000\r\n\r\n")


@dataclass
class SlowSocket:
    """One client trickling a request it never finishes: ``pending`` is sent a byte a
    tick after ``head`` went at once."""

    sock: socket.socket
    pending: bytes
    cut: bool = False
    answer: bytes = b""

    def tick(self) -> None:
        if self.cut:
            return
        try:
            self.sock.setblocking(False)
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                data = None
            if data is not None:  # the server answered (408) or closed: it cut us off
                self.answer += data
                self.cut = True
                return
            self.sock.setblocking(True)
            self.sock.send(self.pending[:1])
            self.pending = self.pending[1:]
        except OSError:
            self.cut = True


@dataclass
class SlowClients:
    """50 slow sockets, trickled one byte a second by a background thread."""

    port: int
    sockets: list[SlowSocket] = field(default_factory=list)
    ticks: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def open(self, headers: int, bodies: int) -> None:
        for i in range(headers + bodies):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            if i < headers:
                slow = SlowSocket(sock, HEADERS_SLOWLY.encode())
            else:
                sock.sendall(BODY_HEAD.encode())
                slow = SlowSocket(sock, b'{"name": "' + b"n" * 99_990)
            slow.tick()
            self.sockets.append(slow)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for slow in self.sockets:
                slow.tick()
            self.ticks += 1

    def __enter__(self) -> SlowClients:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for slow in self.sockets:
            slow.sock.close()

    @property
    def still_open(self) -> int:
        return sum(not s.cut for s in self.sockets)


def normal_get(port: int, path: str = "/test") -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", PREFIX + path)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_slow_clients_neither_block_others_nor_stay(served: int) -> None:
    port = served
    with SlowClients(port) as slow:
        slow.open(headers=25, bodies=25)
        time.sleep(2)  # two bytes each: every worker has met slow sockets by now
        answers = [normal_get(port) for _ in range(30)]
        open_while_served = slow.still_open
        for _ in range(READ_TIMEOUT * 3):  # ticks of one byte a second, then give up
            if not slow.still_open:
                break
            time.sleep(1)
        print(f"\nslow clients: {open_while_served} of 50 open while 30 normal requests "
              f"were answered; all cut after about {slow.ticks} ticks")
    assert answers == [(200, {"status": "OK"})] * 30
    assert open_while_served == 50, "the slow sockets were cut before the test could run"
    assert slow.still_open == 0, "slow sockets were never dropped"
    # Those that had sent something were told why, in JSON, before the close.
    told = [s.answer for s in slow.sockets if s.answer]
    assert told and all(a.startswith(b"HTTP/1.1 408 ") and b"application/json" in a
                        for a in told)


def test_requests_still_arrive_whole(served: int) -> None:
    """What the buffering must not break: bodies sent in pieces, chunked bodies,
    Expect: 100-continue, several requests back to back."""
    body = json.dumps({"name": "pieces", "slots": 3, "description": "é"}).encode()
    with socket.create_connection(("127.0.0.1", served), timeout=10) as sock:
        sock.sendall((f"POST {PREFIX}/pools HTTP/1.1\r\nHost: x\r\nContent-Length: "
                      f"{len(body)}\r\nExpect: 100-continue\r\n\r\n").encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        for i in range(0, len(body), 7):
            sock.sendall(body[i:i + 7])
            time.sleep(0.01)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert b"100 Continue" not in answer
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 10]), body[i:i + 10])
                      for i in range(0, len(body), 10)) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", served), timeout=10) as sock:
        sock.sendall(f"POST {PREFIX}/pools HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
                     "chunked\r\n\r\n".encode())
        for i in range(0, len(chunks), 5):
            sock.sendall(chunks[i:i + 5])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert normal_get(served, "/pools/pieces")[1] == {
        "description": "é", "id": 2, "include_deferred": False, "pool": "pieces", "slots": 3}
