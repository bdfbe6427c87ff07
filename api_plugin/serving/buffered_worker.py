"""A gunicorn worker that reads each request whole, under a deadline, before serving it.

gunicorn's sync worker (and each thread of gthread) blocks on one client's socket until
that client's request has arrived: two sockets sending one byte a second keep two
workers from everyone else until the worker timeout, and then again. This worker keeps
the sync worker's model for the application (one request at a time per process, no
threads in the app) but reads with a selector: any number of connections are read
side by side without blocking, each must deliver its whole request (line, headers,
body) within ``[webserver] request_read_timeout`` seconds (default 10) or is dropped,
and only a complete request reaches gunicorn's parser and the WSGI app, replayed from
memory. A slow client then costs a socket and a buffer, never a worker.

It is what ``api-plugin serve`` runs; standalone gunicorn takes it with
``-k api_plugin.serving.buffered_worker.BufferedWorker``. In production, put a buffering
reverse proxy in front anyway (see the README): this worker is the second line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from gunicorn import util

from api_plugin.serving.gunicorn_worker import JsonErrorWorker, write_json_error
from api_plugin.serving.request_buffer import request_progress, without_expect
from api_plugin.settings.config import DEFAULT_CONFIG

DEFAULT_READ_TIMEOUT = DEFAULT_CONFIG.request_read_timeout
#: Requests are read whole up to this size; a larger one is handed over after its headers
#: (the app answers 413 and drains what it can).
MAX_BUFFERED = 17 * 1024 * 1024
READ_SIZE = 65536


@dataclass
class _Pending:
    """A connection whose request is still arriving."""

    listener: socket.socket
    address: Any
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    continued: bool = False


class _Replay:
    """The client's socket, with the already-read request served first to the parser;
    everything else (sending the answer, closing) goes to the real socket."""

    def __init__(self, sock: socket.socket, data: bytes) -> None:
        self._sock = sock
        self._data = data

    def recv(self, size: int, *flags: int) -> bytes:
        if self._data:
            chunk, self._data = self._data[:size], self._data[size:]
            return chunk
        return self._sock.recv(size, *flags)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class BufferedWorker(JsonErrorWorker):
    """The sync worker, with requests read whole by a selector before they are served."""

    def init_process(self) -> None:
        self.read_timeout = _read_timeout()
        self.max_header_bytes = (self.cfg.limit_request_line
                                 + self.cfg.limit_request_fields
                                 * (self.cfg.limit_request_field_size or 8190) + 4)
        super().init_process()

    def run(self) -> None:
        if self.cfg.is_ssl:  # TLS handshakes need the blocking path: gunicorn's own loop
            super().run()
            return
        selector = selectors.DefaultSelector()
        for listener in self.sockets:
            listener.setblocking(False)
            selector.register(listener, selectors.EVENT_READ, None)
        selector.register(self.PIPE[0], selectors.EVENT_READ, "pipe")
        pending: dict[socket.socket, _Pending] = {}
        try:
            while self.alive:
                self.notify()
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    return
                for key, _ in selector.select(self._wait(pending)):
                    if key.data == "pipe":
                        os.read(self.PIPE[0], 1)
                    elif key.data is None:
                        self._accept(key.fileobj, selector, pending)  # type: ignore[arg-type]
                    else:
                        self._read(key.fileobj, selector, pending)  # type: ignore[arg-type]
                self._drop_late(selector, pending)
        finally:
            for sock in list(pending):
                util.close(sock)
            selector.close()

    def _wait(self, pending: dict[socket.socket, _Pending]) -> float:
        """Until the next deadline, at most a second (the heartbeat's pace)."""
        if not pending:
            return 1.0
        soonest = min(p.deadline for p in pending.values())
        return max(0.0, min(1.0, soonest - time.monotonic()))

    def _accept(self, listener: socket.socket, selector: selectors.BaseSelector,
                pending: dict[socket.socket, _Pending]) -> None:
        while True:
            try:
                client, address = listener.accept()
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                    return
                raise
            client.setblocking(False)
            util.close_on_exec(client)
            if len(pending) >= max(1, self.cfg.worker_connections):
                # Full: the connection that has had the longest goes first.
                oldest = min(pending, key=lambda s: pending[s].deadline)
                self._forget(oldest, selector, pending)
                util.close(oldest)
            pending[client] = _Pending(listener, address, time.monotonic() + self.read_timeout)
            selector.register(client, selectors.EVENT_READ, "client")

    def _read(self, client: socket.socket, selector: selectors.BaseSelector,
              pending: dict[socket.socket, _Pending]) -> None:
        state = pending[client]
        try:
            chunk = client.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk, state.data = b"", bytearray()
        state.data += chunk
        progress = request_progress(state.data, self.max_header_bytes)
        if progress.expects_continue and not state.continued:
            state.continued = True
            state.data[:] = without_expect(bytes(state.data), progress.header_length)
            _send_quietly(client, b"HTTP/1.1 100 Continue\r\n\r\n")
        if progress.complete or len(state.data) > MAX_BUFFERED or (not chunk and state.data):
            # Whole, too big to hold, or cut short: gunicorn's parser takes it from here.
            self._forget(client, selector, pending)
            self._serve(client, state)
        elif not chunk:
            self._forget(client, selector, pending)
            util.close(client)

    def _serve(self, client: socket.socket, state: _Pending) -> None:
        client.setblocking(True)
        client.settimeout(self.read_timeout)  # bounds writing the answer, and any rest
        self.handle(state.listener, _Replay(client, bytes(state.data)), state.address)

    def _drop_late(self, selector: selectors.BaseSelector,
                   pending: dict[socket.socket, _Pending]) -> None:
        now = time.monotonic()
        for client in [s for s, p in pending.items() if p.deadline <= now]:
            started = bool(pending[client].data)
            self._forget(client, selector, pending)
            if started:
                with contextlib.suppress(OSError):
                    client.setblocking(True)
                    client.settimeout(1.0)
                    write_json_error(client, 408, "Request Timeout",
                                     f"the request did not arrive within "
                                     f"{self.read_timeout:g} s")
            util.close(client)

    @staticmethod
    def _forget(client: socket.socket, selector: selectors.BaseSelector,
                pending: dict[socket.socket, _Pending]) -> None:
        pending.pop(client, None)
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(client)


def _send_quietly(client: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        client.send(data)


def _read_timeout() -> float:
    """``[webserver] request_read_timeout`` from the plugin's configuration."""
    from api_plugin.settings.config import Config

    try:
        value = Config.load().request_read_timeout
    except Exception:  # an unreadable config must not stop the worker: the default holds
        value = DEFAULT_READ_TIMEOUT
    return value if value > 0 else DEFAULT_READ_TIMEOUT
