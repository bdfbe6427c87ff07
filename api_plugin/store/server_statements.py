"""The hot reads prepared on the server as SQL (``PREPARE`` once, then ``EXECUTE``), and
sent as text: what lets a read carry the token's guard in its own message.

A read that carries the request's revocation lookup as a guard (``prepared.py``) goes
to the server as one text of two statements, the values written in: psycopg2 sends any
text so, and psycopg 3 so from a client-binding cursor (its simple-query protocol; its
own preparing needs the extended protocol, which takes one statement a message).
Text is planned anew on every run, though, and planning is a third of the server's
work for a read such as the task instance's (0.3 ms against 0.08 ms to run it).
PostgreSQL's own ``PREPARE name AS ...`` and ``EXECUTE name(...)`` keep the plan from
plain SQL text, so the text names prepared statements where it may.

The same rules as psycopg 3's own preparing hold. Only a connection that reaches the
server directly prepares (``engine.reaches_server_directly``): behind a transaction
pooler the next message may run on another server connection, where the name is
unknown. A statement is prepared on its connection once that connection has run it
``threshold`` times (psycopg's own default, 5), so a one-off query is never prepared.
``PREPARE`` goes out on its own, once per statement and connection: whether it was done
is then known exactly. A statement PostgreSQL cannot prepare as it is written (a value
whose type it cannot tell from the text) is run as plain text on that connection from
then on. The names are new for every ``PREPARE`` in the process, so a statement prepared
again (after the server forgot it: ``DISCARD ALL``, ``DEALLOCATE``) never meets an old
one, nor one psycopg 3 prepared itself (``_pg3_*``).

Which connections are *adopted* (``engine.watch_prepares``): every psycopg2 connection
of the read pool that reaches the server directly, and every psycopg 3 one whose URL
leaves ``prepare_threshold`` to the plugin (directly: prepared from the sixth run;
through a pooler: text, never prepared). A psycopg 3 connection the URL gives a fixed
threshold is not adopted, and keeps psycopg's own preparing (and its pipeline) for
reads that carry the guard, as a pooler that keeps prepared statements wants.

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

from api_plugin.store.driver import KEPT_ROWS_MAX, is_psycopg2, sqlstate

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
    the values left to write in; "" for a statement that cannot be prepared), how often
    it ran each other statement (``threshold`` None: it never prepares), and psycopg 3's
    client-binding cursor it keeps."""

    def __init__(self, threshold: int | None) -> None:
        self.threshold = threshold
        self.names: dict[str, str] = {}
        self.runs: dict[str, int] = {}
        self.cursor: Any = None


_connections: WeakKeyDictionary[Any, ConnectionStatements] = WeakKeyDictionary()


def adopt(connection: Any, threshold: int | None) -> None:
    """``connection`` sends a read that carries a guard as text (psycopg 3: from its
    client-binding cursor), and prepares the statements it runs more than ``threshold``
    times (None: never; ``engine``'s connect hook)."""
    _connections[connection] = ConnectionStatements(threshold)


def prepares(connection: Any) -> bool:
    """Whether ``connection`` prepares statements as SQL."""
    statements = _connections.get(connection)
    return statements is not None and statements.threshold is not None


def text_cursor(cursor: Any) -> Any:
    """A cursor on ``cursor``'s connection that writes values into the text, so that
    one ``execute`` may carry several statements; None when the connection is not to
    send reads as text (a psycopg 3 connection not adopted). psycopg2's cursors all
    write values in: ``cursor`` itself. psycopg 3's is made once per connection and
    kept (making one builds its type adaptation anew, some 25 µs), and made afresh
    after an answer of more than ``KEPT_ROWS_MAX`` rows, as ``driver.py``'s kept
    cursor is."""
    connection = cursor.connection
    if is_psycopg2(connection):
        return cursor
    statements = _connections.get(connection)
    if statements is None:
        return None
    kept = statements.cursor
    if kept is None or kept.closed or kept.rowcount > KEPT_ROWS_MAX:
        import psycopg

        if kept is not None:
            kept.close()
        kept = statements.cursor = psycopg.ClientCursor(connection)
    return kept


def statement_text(cursor: Any, sql: str, values: Mapping[str, Any]) -> bytes:
    """The text to send for ``sql`` with ``values`` on ``cursor`` (a client-binding one,
    ``text_cursor``): an ``EXECUTE`` of the statement prepared on its connection, once
    it has run there often enough (the ``PREPARE`` sent first, on its own), else ``sql``
    with the values written in. A driver error of that ``PREPARE`` is raised when the
    connection was lost; otherwise the statement is left unprepared on that
    connection."""
    statements = _connections.get(cursor.connection)
    if statements is None or statements.threshold is None:
        return _written(cursor, sql, values)
    execute = statements.names.get(sql)
    if execute is None:
        runs = statements.runs[sql] = statements.runs.get(sql, 0) + 1
        if runs <= statements.threshold:
            return _written(cursor, sql, values)
        execute = statements.names[sql] = _prepare(cursor, sql)
    return _written(cursor, execute or sql, values)


def _written(cursor: Any, sql: str, values: Mapping[str, Any]) -> bytes:
    """``sql`` with ``values`` written in by the driver, as the bytes it would send."""
    text = cursor.mogrify(sql, values)
    if isinstance(text, bytes):
        return text
    return str(text).encode(cursor.connection.info.encoding)


def _prepare(cursor: Any, sql: str) -> str:
    """``sql`` prepared on ``cursor``'s connection under a new name, and the ``EXECUTE``
    that runs it; "" when the server refused it (and the connection is still there)."""
    with _names_lock:
        name = f"api_plugin_{next(_names)}"
    form = ServerForm(sql)
    if is_psycopg2(cursor.connection):
        from psycopg2 import Error
    else:
        from psycopg import Error
    try:
        cursor.execute(f"PREPARE {name} AS {form.body}".encode())
    except Error:
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
    if statements is None or sqlstate(exc) not in _FORGOTTEN:
        return False
    dropped = [sql for sql in sqls if statements.names.get(sql)]
    for sql in dropped:
        del statements.names[sql]
        statements.runs[sql] = statements.threshold or 0
    return bool(dropped)
