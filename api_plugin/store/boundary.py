"""The one place a database driver's error becomes an API error.

Every query the store runs (``Store.read``/``write``, prepared reads, the trigger's
write, the change marker) runs inside ``BOUNDARY``, which lets an API error through
untouched and turns a driver error into one of two:

- the database cannot be reached now (a restart, a dropped connection, a full pool, a
  SQLite file locked past its busy timeout): ``DatabaseUnavailable``, a 503 that asks
  the client to retry (``Retry-After: 1``), logged as a one-line warning;
- anything else (a wrong query, a violated constraint nobody expected):
  ``DatabaseFailure``, a 500 that says no more than "Internal database error", logged
  with its traceback.

So no layer above ``store/`` ever sees SQLAlchemy's or the driver's exceptions.
"""

from __future__ import annotations

import logging
import sqlite3
from types import TracebackType

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api_plugin.errors import ApiError, InternalServerError, ServiceUnavailable
from api_plugin.store.driver import sqlstate

log = logging.getLogger(__name__)

#: The 503's text.
DB_UNAVAILABLE = "The metadata database is unavailable; try again shortly"
#: The 500's text: the cause stays in the log, never in the answer.
DB_FAILURE = "Internal database error"

#: Driver messages (lower case) that mean "cannot reach the database now".
UNAVAILABLE_HINTS = ("database is locked", "unable to open database", "could not connect",
                     "connection refused", "server closed the connection",
                     "terminating connection", "the database system is",
                     "connection to server", "no connection to the server")

#: What a driver or the pool raises (SQLite's own module for the change marker).
DRIVER_ERRORS = (DBAPIError, PoolTimeout, sqlite3.Error)


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached now: a 503, worth retrying in a second."""

    def __init__(self, message: str = DB_UNAVAILABLE) -> None:
        super().__init__(message)


class DatabaseFailure(InternalServerError):
    """The database refused a statement for a reason of its own: a 500."""

    def __init__(self, message: str = DB_FAILURE) -> None:
        super().__init__(message)


def database_unavailable(exc: BaseException) -> bool:
    """True when the database cannot be reached now (a 503), not when a query is wrong."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    driver_error = getattr(exc, "orig", exc)
    if any(_lost_server(error) for error in _chain(driver_error)):
        return True
    text = str(driver_error).lower()
    return isinstance(exc, OperationalError | sqlite3.OperationalError) and any(
        hint in text for hint in UNAVAILABLE_HINTS)


def _lost_server(error: BaseException) -> bool:
    """A PostgreSQL error of class 08 (connection) or 57P (the server shutting down);
    psycopg 3 names the code ``sqlstate``, psycopg2 ``pgcode``."""
    code = sqlstate(error) or ""
    return code.startswith(("08", "57P"))


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from or during, a few links deep: psycopg 3
    reports a server shutdown in the middle of a pipelined ``executemany`` as
    "cannot exit pipeline mode while busy", the shutdown itself being its context."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(found) < 5:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def api_error_for(exc: BaseException, conflict: ApiError | None = None) -> ApiError:
    """The API error a driver error stands for (see the module's docstring), logged.

    ``conflict``, when given, is what a violated constraint means to the caller (a
    concurrent create, say): it is returned for an ``IntegrityError``, unlogged.
    """
    if conflict is not None and isinstance(exc, IntegrityError):
        return conflict
    if database_unavailable(exc):
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("database unavailable: %s", first_line)
        return DatabaseUnavailable()
    log.error("database error", exc_info=exc)
    return DatabaseFailure()


class Boundary:
    """A context manager: driver errors raised inside come out as API errors.

    A class rather than a generator, since every prepared read enters one: entering and
    leaving cost two plain method calls. Stateless, so one instance (``BOUNDARY``) serves
    every thread; ``Boundary(conflict=...)`` gives a violated constraint a meaning.
    """

    __slots__ = ("conflict",)

    def __init__(self, conflict: ApiError | None = None) -> None:
        self.conflict = conflict

    def __enter__(self) -> None:
        return None

    def __exit__(self, _exc_type: type[BaseException] | None, exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        if exc is not None and isinstance(exc, DRIVER_ERRORS):
            raise api_error_for(exc, self.conflict) from exc


#: The boundary every query runs inside.
BOUNDARY = Boundary()

__all__ = ["BOUNDARY", "DB_FAILURE", "DB_UNAVAILABLE", "Boundary", "DatabaseFailure",
           "DatabaseUnavailable", "api_error_for", "database_unavailable"]
