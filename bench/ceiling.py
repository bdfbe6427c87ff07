"""The ceilings: the cheapest WSGI apps that answer like ``/test`` and like
``/pools/<name>`` do.

``app`` answers ``/test``'s body and nothing else. ``pool_app`` answers a pool as the
plugin does, but with only what one pool read needs: one psycopg 3 connection per process
(the sync worker serves one request at a time), opened at the first request, in
autocommit, the statement prepared on the server from the first execution, one reused
cursor, the row written out as JSON. No routing, no auth, no pool of connections, no
error handling: what it answers per second is the most any implementation that reads the
database once per request can answer on this machine and this server, which is what
the plugin's PostgreSQL figures are measured against in ``pg.py ceiling``. Its database
is ``CEILING_PG_URL`` (a libpq URL).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"status":"OK"}'
HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
POOL_SQL = "SELECT id, pool, slots, description FROM slot_pool WHERE pool = %s LIMIT 1"

_cursor: Any = None


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", HEADERS)
    return [BODY]


def pool_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    global _cursor
    if _cursor is None:
        import psycopg

        _cursor = psycopg.connect(os.environ["CEILING_PG_URL"], autocommit=True,
                                  prepare_threshold=0).cursor()
    _cursor.execute(POOL_SQL, (environ["PATH_INFO"].rsplit("/", 1)[-1],))
    row = _cursor.fetchone()
    if row is None:
        start_response("404 NOT FOUND", [("Content-Type", "application/json")])
        return [b'{"error":"no such pool"}']
    body = json.dumps({"id": row[0], "pool": row[1], "slots": row[2],
                       "description": row[3]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
