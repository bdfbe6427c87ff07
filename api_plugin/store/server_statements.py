"""psycopg2's hot reads prepared on the server, as SQL: ``PREPARE`` once, then ``EXECUTE``.

psycopg 3 prepares a statement on the server by itself once a connection has run it a
few times, so PostgreSQL parses and plans it once and not on every request; on a
direct connection that is a third of the server's work for a read such as the task
instance's (its planning alone is 0.3 ms against 0.08 ms to run it). psycopg2 never
prepares, but PostgreSQL's own ``PREPARE name AS ...`` and ``EXECUTE name(...)`` do the
same from plain SQL text, which psycopg2 sends as it sends any.

The same rules as psycopg 3's hold. Only a connection that reaches the server directly
prepares (``engine.reaches_server_directly``): behind a transaction pooler the next
message may run on another server connection, where the name is unknown. A statement
is prepared on its connection once that connection has run it ``threshold`` times
(psycopg's own default, 5), so a one-off query is never prepared. ``PREPARE`` goes out
on its own, once per statement and connection: whether it was done is then known
exactly. A statement PostgreSQL cannot prepare as it is written (a value whose type it
cannot tell from the text) is run as plain text on that connection from then on. The
names are new for every ``PREPARE`` in the process, so a statement prepared again
(after the server forgot it: ``DISCARD ALL``, ``DEALLOCATE``) never meets an old one.

What a connection holds lives in a weak mapping keyed by the driver's connection, so it
goes with the connection.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Mapping
from typing import Any
from weakref import WeakKeyDictionary

#: A pyformat placeholder, or the escaped percent sign.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
#: The SQLSTATEs after which the server no longer runs a statement it had prepared:
#: the name is unknown (``DISCARD ALL``, ``DEALLOCATE``) or its plan cannot be used
#: (a table's columns changed under a ``SELECT``).
_FORGOTTEN = frozenset({"26000", "0A000"})

_names = itertools.count(1)
_names_lock = threading.Lock()


class ServerForm:
    """A pyformat statement as ``PREPARE`` wants it (``$1``, ``$2``, ... in the order the
    values first appear) and the ``EXECUTE`` arguments that pass its values."""

    def __init__(self, sql: str) -> None:
        order: list[str] = []

        def numbered(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%"
            if name not in order:
                order.append(name)
            return f"${order.index(name) + 1}"

        self.body = _PLACEHOLDER.sub(numbered, sql)
        self.arguments = f"({', '.join(f'%({name})s' for name in order)})" if order else ""


class ConnectionStatements:
    """What one connection prepared (by statement text, the ``EXECUTE`` that runs it with
    the values left to write in; "" for a statement that cannot be prepared) and how
    often it ran each other statement."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.names: dict[str, str] = {}
        self.runs: dict[str, int] = {}


_connections: WeakKeyDictionary[Any, ConnectionStatements] = WeakKeyDictionary()


def adopt(connection: Any, threshold: int) -> None:
    """``connection`` (psycopg2's) prepares the statements it runs more than ``threshold``
    times (``engine``'s connect hook, on a direct connection only)."""
    _connections[connection] = ConnectionStatements(threshold)


def prepares(connection: Any) -> bool:
    """Whether ``connection`` was adopted."""
    return connection in _connections


def statement_text(cursor: Any, sql: str, values: Mapping[str, Any]) -> bytes:
    """The text to send for ``sql`` with ``values`` on ``cursor`` (psycopg2's): an
    ``EXECUTE`` of the statement prepared on its connection, once it has run there often
    enough (the ``PREPARE`` sent first, on its own), else ``sql`` with the values
    written in. A driver error of that ``PREPARE`` is raised when the connection was
    lost; otherwise the statement is left unprepared on that connection."""
    statements = _connections.get(cursor.connection)
    if statements is None:
        return bytes(cursor.mogrify(sql, values))
    execute = statements.names.get(sql)
    if execute is None:
        runs = statements.runs[sql] = statements.runs.get(sql, 0) + 1
        if runs <= statements.threshold:
            return bytes(cursor.mogrify(sql, values))
        execute = statements.names[sql] = _prepare(cursor, sql)
    return bytes(cursor.mogrify(execute or sql, values))


def _prepare(cursor: Any, sql: str) -> str:
    """``sql`` prepared on ``cursor``'s connection under a new name, and the ``EXECUTE``
    that runs it; "" when the server refused it (and the connection is still there)."""
    with _names_lock:
        name = f"api_plugin_{next(_names)}"
    form = ServerForm(sql)
    import psycopg2

    try:
        cursor.execute(f"PREPARE {name} AS {form.body}".encode())
    except psycopg2.Error:
        if cursor.connection.closed:
            raise
        return ""
    return f"EXECUTE {name}{form.arguments}"


def forgotten(cursor: Any, sqls: tuple[str, ...], exc: BaseException) -> bool:
    """After the driver's ``exc`` on ``cursor``, for a message made of ``sqls``: whether
    the server no longer runs a statement it had prepared for one of them. Those are
    then prepared afresh on their next run, which may be at once (a read is safe to
    repeat)."""
    statements = _connections.get(cursor.connection)
    if statements is None or getattr(exc, "pgcode", None) not in _FORGOTTEN:
        return False
    dropped = [sql for sql in sqls if statements.names.get(sql)]
    for sql in dropped:
        del statements.names[sql]
        statements.runs[sql] = statements.threshold
    return bool(dropped)
