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

Connections are kept alive between requests (HTTP/1.1, gunicorn's ``--keep-alive``
seconds of idleness, 2 by default; 0 turns it off): an idle connection waits in the
selector like any other, so it holds no worker either, and a client that polls (a
``requests.Session``, a CI script) skips a TCP handshake and teardown per request, which
on loopback is most of what serving a small answer costs. A request whose end is not
certain (see ``request_buffer``) is its connection's last.

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
from datetime import datetime
from typing import Any

from gunicorn import http, util
from gunicorn.http import wsgi

from api_plugin.serving.gunicorn_worker import JsonErrorWorker, write_json_error
from api_plugin.serving.request_buffer import request_progress, without_expect
from api_plugin.settings.config import DEFAULT_CONFIG

DEFAULT_READ_TIMEOUT = DEFAULT_CONFIG.request_read_timeout
#: Requests are read whole up to this size; a larger one is handed over after its headers
#: (the app answers 413 and drains what it can).
MAX_BUFFERED = 17 * 1024 * 1024
READ_SIZE = 65536
#: Rounds a worker with requests to serve leaves a new connection to an idle worker
#: before it takes the connection itself.
MAX_DEFERRED_ACCEPTS = 8


@dataclass
class _Pending:
    """A connection whose request is still arriving."""

    listener: socket.socket
    address: Any
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    continued: bool = False
    #: Kept alive after an answer: its idle time counts from then, not its request's.
    kept: bool = False


class _Replay:
    """The client's socket, with the already-read request served first to the parser;
    everything else (sending the answer, closing) goes to the real socket. A request
    whose end is known (``whole``) is all the parser may read: the bytes after it belong
    to the next request, so the socket is never read through.

    ``hold_head`` keeps the next thing sent (gunicorn sends the status line and headers
    on their own) until the one after it, or ``release``: an answer whose body is in
    hand then leaves in one send, not two. On loopback each send wakes the client once
    and the second is a third of what serving a small answer costs.
    """

    def __init__(self, sock: socket.socket, data: bytes, whole: bool = False) -> None:
        self._sock = sock
        self._data = data
        self._whole = whole
        self._holding = False
        self._held = b""

    def hold_head(self) -> None:
        self._holding = True

    def sendall(self, data: bytes, *flags: int) -> None:
        if self._holding:
            self._holding = False
            self._held = bytes(data)
            return
        if self._held:
            data, self._held = self._held + data, b""
        self._sock.sendall(data, *flags)

    def release(self) -> None:
        """Send what is held (an answer without a body: a HEAD, a 204)."""
        self._holding = False
        if self._held:
            held, self._held = self._held, b""
            self._sock.sendall(held)

    def recv(self, size: int, *flags: int) -> bytes:
        if self._data:
            chunk, self._data = self._data[:size], self._data[size:]
            return chunk
        if self._whole:
            return b""
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
        self._ready: list[socket.socket] = []
        deferred = 0
        try:
            while self.alive:
                self.notify()
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    return
                ready, self._ready = self._ready, []
                for client in ready:  # pipelined requests in hand: one each per round
                    if client in pending and self.alive:
                        self._advance(client, selector, pending, ended=False)
                events = selector.select(self._wait(pending))
                busy = any(key.data == "client" for key, _ in events)
                for key, _ in events:
                    if key.data == "pipe":
                        os.read(self.PIPE[0], 1)
                    elif key.data is None:
                        if busy and deferred < MAX_DEFERRED_ACCEPTS:
                            deferred += 1  # an idle worker takes it; else a later round
                            continue
                        deferred = 0
                        self._accept(key.fileobj, selector, pending)  # type: ignore[arg-type]
                    else:
                        self._read(key.fileobj, selector, pending)  # type: ignore[arg-type]
                self._drop_late(selector, pending)
        finally:
            for sock in list(pending):
                util.close(sock)
            selector.close()

    def _wait(self, pending: dict[socket.socket, _Pending]) -> float:
        """Until the next deadline, at most a second (the heartbeat's pace); not at all
        while pipelined requests wait."""
        if self._ready:
            return 0.0
        if not pending:
            return 1.0
        soonest = min(p.deadline for p in pending.values())
        return max(0.0, min(1.0, soonest - time.monotonic()))

    def _accept(self, listener: socket.socket, selector: selectors.BaseSelector,
                pending: dict[socket.socket, _Pending]) -> None:
        """Take one new connection: one at a time, so that the workers share the
        connections that arrive together (each keeps its own for as long as it lives)."""
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
        if chunk and state.kept and not state.data:  # a kept connection's next request
            state.deadline = time.monotonic() + self.read_timeout
        state.data += chunk
        self._advance(client, selector, pending, ended=not chunk)

    def _advance(self, client: socket.socket, selector: selectors.BaseSelector,
                 pending: dict[socket.socket, _Pending], ended: bool) -> None:
        """Serve ``client``'s request once it is whole (or can never be)."""
        state = pending[client]
        progress = request_progress(state.data, self.max_header_bytes)
        if progress.expects_continue and not state.continued:
            state.continued = True
            state.data[:] = without_expect(bytes(state.data), progress.header_length)
            _send_quietly(client, b"HTTP/1.1 100 Continue\r\n\r\n")
        if progress.complete or len(state.data) > MAX_BUFFERED or (ended and state.data):
            # Whole, too big to hold, or cut short: gunicorn's parser takes it from here.
            self._forget(client, selector, pending)
            end = progress.end if progress.complete and not ended else None
            self._serve(client, state, end, selector, pending)
        elif ended:
            self._forget(client, selector, pending)
            util.close(client)

    def _serve(self, client: socket.socket, state: _Pending, end: int | None,
               selector: selectors.BaseSelector,
               pending: dict[socket.socket, _Pending]) -> None:
        """Answer the request in ``state``; keep the connection for the next one when
        the request's end is known and the answer allows it."""
        client.setblocking(True)
        client.settimeout(self.read_timeout)  # bounds writing the answer, and any rest
        if end is None:
            self.handle(state.listener, _Replay(client, bytes(state.data)), state.address)
            return
        request, rest = bytes(state.data[:end]), bytearray(state.data[end:])
        if not self._answer(state.listener, _Replay(client, request, whole=True),
                            state.address):
            return
        client.setblocking(False)
        pending[client] = _Pending(
            state.listener, state.address,
            time.monotonic() + (self.read_timeout if rest else self.cfg.keepalive),
            rest, kept=True)
        selector.register(client, selectors.EVENT_READ, "client")
        if rest:  # pipelined: the next request may be whole already
            self._ready.append(client)

    def _answer(self, listener: socket.socket, client: _Replay, addr: Any) -> bool:
        """The sync worker's ``handle`` for one request, leaving the connection open
        when the answer may keep it alive; True when it is kept."""
        req = None
        try:
            parser = http.get_parser(self.cfg, client, addr)
            req = next(parser)
            if self._respond(listener, req, client, addr):
                return True
        except http.errors.NoMoreData as exc:
            self.log.debug("Ignored premature client disconnection. %s", exc)
        except StopIteration as exc:
            self.log.debug("Closing connection. %s", exc)
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.exception("Socket error processing request.")
        except BaseException as exc:
            self.handle_error(req, client, addr, exc)
        util.close_graceful(client)
        return False

    def _respond(self, listener: socket.socket, req: Any, client: _Replay, addr: Any
                 ) -> bool:
        """Run the app for ``req`` and send its answer; whether the connection stays."""
        environ: dict[str, Any] = {}
        resp = None
        try:
            self.cfg.pre_request(self, req)
            started = datetime.now()
            resp, environ = wsgi.create(req, client, addr, listener.getsockname(), self.cfg)
            self.nr += 1
            if self.nr >= self.max_requests:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
            if not self.alive or self.cfg.keepalive <= 0:
                resp.force_close()
            answer = self.wsgi(environ, resp.start_response)
            try:
                if isinstance(answer, environ["wsgi.file_wrapper"]):
                    resp.write_file(answer)
                else:
                    if isinstance(answer, list | tuple):
                        client.hold_head()  # the body is in hand: one send for all
                    for item in answer:
                        resp.write(item)
                resp.close()
            finally:
                client.release()
                self.log.access(resp, req, environ, datetime.now() - started)
                if hasattr(answer, "close"):
                    answer.close()
            return not resp.should_close()
        except (Exception, SystemExit):
            if resp is not None and resp.headers_sent:
                # An answer cut off half way: a second status line would corrupt it.
                self.log.exception("Error handling request")
                raise StopIteration() from None
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")

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
