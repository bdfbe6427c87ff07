"""The WSGI app served to an ASGI host (Airflow 3's api-server) with one thread hop.

An ASGI server runs its requests on an event loop; the API is a WSGI app whose requests
block on the database, so each must run on a thread of its own. A general bridge
(a2wsgi) hands every message of a request across between the loop and the thread: the
measured cost on this machine was about 1 ms a request, more than the API's own work on
most endpoints. This bridge reads the (bounded) body on the loop, then runs the app on a
worker thread in one go: the app is called and its answer gathered there, up to
``FIRST_BYTES``; the loop then sends it. Only an answer longer than that (a streamed run
list) goes on chunk by chunk, each fetched on a thread, so the transfer keeps its pace
and a worker never holds the whole of it.

The WSGI environ follows PEP 3333 from the ASGI scope: the mount point is
``SCRIPT_NAME`` (``root_path``), the rest ``PATH_INFO``; headers whose names hold ``_``
are dropped (they would pass for their ``-`` twins); a request with no client address
(a unix socket) has no ``REMOTE_ADDR``, so the loopback guard refuses it.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from api_plugin.auth.base import WSGIApp
from api_plugin.errors import PayloadTooLarge, error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: An answer up to this size is gathered on the thread and sent in one message.
FIRST_BYTES = 64 * 1024
#: A request body is read up to this size (the app refuses what is over its own limit,
#: ``[api] max_body_bytes``, with a 413 of its own); beyond it the bridge answers 413.
MAX_BODY = 16 * 1024 * 1024
THREADS = 8


class WsgiOnAsgi:
    """``app`` (WSGI) as an ASGI app, run on ``threads`` worker threads."""

    def __init__(self, app: WSGIApp, threads: int = THREADS) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="api_plugin")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets: not this API's
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        if len(body) > MAX_BODY:
            status, headers, content = error_response(PayloadTooLarge(
                f"Request body over {MAX_BODY} bytes"))
            await _send_whole(send, status, headers, content)
            return
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self.executor, self._run, environ(scope, body))
        status, headers, first, rest = answer
        await send({"type": "http.response.start", "status": int(status.split(" ", 1)[0]),
                    "headers": [(n.encode("latin-1"), v.encode("latin-1"))
                                for n, v in headers]})
        if rest is None:
            await send({"type": "http.response.body", "body": first})
            return
        try:
            await send({"type": "http.response.body", "body": first, "more_body": True})
            while (chunk := await loop.run_in_executor(self.executor, _next_chunk, rest)):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await loop.run_in_executor(self.executor, _close, rest)

    def _run(self, env: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes,
                                                   Iterator[bytes] | None]:
        """Call the app and gather its answer up to ``FIRST_BYTES`` (on a worker thread):
        (status, headers, the first bytes, the rest of the body's iterator or None)."""
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        result = self.app(env, start_response)
        chunks = iter(result)
        gathered, size = list(written), sum(map(len, written))
        try:
            while size < FIRST_BYTES:
                chunk = next(chunks, None)
                if chunk is None:
                    _close(result)
                    return started[0], started[1], b"".join(gathered), None
                gathered.append(chunk)
                size += len(chunk)
        except BaseException:
            _close(result)
            raise
        return started[0], started[1], b"".join(gathered), _Rest(chunks, result)


class _Rest(Iterator[bytes]):
    """The remainder of a long answer, closed as WSGI asks when it ends or is cut."""

    def __init__(self, chunks: Iterator[bytes], result: Iterable[bytes]) -> None:
        self.chunks, self.result = chunks, result

    def __next__(self) -> bytes:
        return next(self.chunks)

    def close(self) -> None:
        _close(self.result)


def _next_chunk(rest: Iterator[bytes]) -> bytes:
    """The next non-empty chunk, or b"" at the end."""
    for chunk in rest:
        if chunk:
            return chunk
    return b""


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """The PEP 3333 environ of an ASGI HTTP request."""
    script_name = scope.get("root_path", "").encode("utf-8").decode("latin-1")
    path_info = scope["path"].encode("utf-8").decode("latin-1")
    if script_name and path_info.startswith(script_name):
        path_info = path_info[len(script_name):]
    server = scope.get("server") or ("localhost", 80)
    env: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]) if server[1] is not None else "",
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        env["REMOTE_ADDR"], env["REMOTE_PORT"] = str(client[0]), str(client[1])
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if "_" in name:
            continue
        value = raw_value.decode("latin-1")
        if name == "content-type":
            env["CONTENT_TYPE"] = value
        elif name == "content-length":
            env["CONTENT_LENGTH"] = value
        else:
            key = "HTTP_" + name.upper().replace("-", "_")
            env[key] = f"{env[key]},{value}" if key in env else value
    if "CONTENT_LENGTH" not in env and body:
        env["CONTENT_LENGTH"] = str(len(body))
    return env


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, up to just over ``MAX_BODY``; None if the client left."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        part = message.get("body", b"")
        parts.append(part)
        size += len(part)
        if size > MAX_BODY or not message.get("more_body", False):
            return b"".join(parts)


async def _send_whole(send: Send, status: str, headers: list[tuple[str, str]],
                      content: bytes) -> None:
    await send({"type": "http.response.start", "status": int(status.split(" ", 1)[0]),
                "headers": [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]})
    await send({"type": "http.response.body", "body": content})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: the app is built per process on first use."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
