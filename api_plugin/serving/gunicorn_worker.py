"""A gunicorn sync worker whose own error pages are JSON.

gunicorn answers some requests before the application sees them (a request line or
header over its limits, a malformed request) with an HTML page. This worker answers
those in the API's ``{"error": ...}`` form instead, so no client ever gets HTML:

    gunicorn -k api_plugin.serving.gunicorn_worker.JsonErrorWorker api_plugin.wsgi:application
"""

from __future__ import annotations

import socket

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

from api_plugin.errors import error_for_status, error_response


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error``, answered as the API answers its own errors."""
    error = error_for_status(status_int, f"{reason}: {mesg}" if mesg else reason)
    status, headers, body = error_response(error)
    head = "".join(f"{name}: {value}\r\n" for name, value in [("Connection", "close"), *headers])
    util.write_nonblock(sock, f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1") + body)


class JsonErrorWorker(SyncWorker):  # type: ignore[misc]
    """The sync worker, with gunicorn's error pages rendered as JSON."""

    def init_process(self) -> None:
        util.write_error = write_json_error  # this worker process only
        super().init_process()
