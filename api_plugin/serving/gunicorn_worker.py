"""A gunicorn sync worker whose own error pages are JSON.

gunicorn answers some requests before the application sees them (a request line or
header over its limits, a malformed request) with an HTML page. This worker answers
those in the API's ``{"error": ...}`` form instead, so no client ever gets HTML:

    gunicorn -k api_plugin.serving.gunicorn_worker.JsonErrorWorker api_plugin.wsgi:application
"""

from __future__ import annotations

import json
import socket

from gunicorn import util
from gunicorn.workers.sync import SyncWorker


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's ``util.write_error`` with a JSON body."""
    body = json.dumps({"error": f"{reason}: {mesg}" if mesg else reason})
    response = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body.encode())}\r\n"
        "\r\n"
        f"{body}"
    )
    util.write_nonblock(sock, response.encode("utf-8"))


class JsonErrorWorker(SyncWorker):  # type: ignore[misc]
    """The sync worker, with gunicorn's error pages rendered as JSON."""

    def init_process(self) -> None:
        util.write_error = write_json_error  # this worker process only
        super().init_process()
