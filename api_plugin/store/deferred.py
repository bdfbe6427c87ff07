"""A small read a request needs answered before it answers, sent with its next query.

``airflow_jwt`` must look the token up in ``revoked_token`` on every request, as Airflow's
api-server does. On its own that lookup is a round trip to PostgreSQL before the request
has even begun, about as long as the request's own query. Instead the check is handed to
the request (``deferred``) and goes out with the request's first prepared read, in the
same message (``Prepared`` does that when ``riding_with`` names a read): both statements
as one text, the check first, made to fail when it finds a row (only a check that
``refuses_any_row`` can ride so), which stops the read unrun (psycopg2, and psycopg 3
from a client-binding cursor); or, on a psycopg 3 connection that keeps psycopg's own
preparing (a fixed ``prepare_threshold``), its pipeline mode: both statements and one
Sync, and both answers come back together.

What keeps this safe:

- Nothing is written before the check is answered: every write of the store first
  ``settle_pending()``, which runs the check on its own when no read carried it, and
  raises the check's refusal when it fails. So a revoked token never writes a row.
- Nothing is answered before it is answered: the auth middleware settles the check once
  the application has its answer ready and refuses the request then when it fails
  (``auth/base.py``). The application's answer is then dropped unsent.
- A read that fails (but for the check failing it on its row, which refuses), or
  SQLite, leaves the check unanswered, and it is then made on its own, exactly as before.
- A write made of one statement (the trigger's on PostgreSQL) may instead carry a check
  whose verdict refuses exactly when the read finds a row (``refuses_any_row``) as its
  own guard: it writes only when ``NOT EXISTS (the read)``, and says whether the read
  found one (``guarding``, ``found``). The verdict is then judged on that, before the
  request goes on, so a refused check has written nothing there either, and the write
  costs no round trip of the check's own.

The pending read lives in a context variable, so it belongs to the thread (or task) that
serves the request, and it is removed when the request is done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from api_plugin.store.prepared import Prepared


class DeferredRead:
    """``prepared`` with ``values``, whose rows are judged by ``verdict`` (which raises
    when they refuse the request) once they are known."""

    def __init__(self, prepared: Prepared, values: dict[str, Any],
                 verdict: Callable[[list[Any]], None], *,
                 refuses_any_row: bool = False) -> None:
        self.prepared = prepared
        self.values = values
        self.verdict = verdict
        #: Whether ``verdict`` refuses exactly when the read finds a row: then a write may
        #: carry the read as its guard (``guarding``).
        self.refuses_any_row = refuses_any_row
        #: The rows, once read (with the request's query, or on its own).
        self.rows: list[Any] | None = None

    def received(self, rows: list[Any]) -> None:
        """The rows came with another query."""
        self.rows = rows

    def found(self, any_row: bool) -> None:
        """A write that carried the read as its guard found a row (and so wrote nothing)
        or none: all a ``refuses_any_row`` verdict looks at."""
        assert self.refuses_any_row, "only such a read's verdict can be judged on this"
        self.rows = [()] if any_row else []

    def settle(self) -> None:
        """Read the rows now unless a query brought them, then judge them."""
        if self.rows is None:
            self.rows = self.prepared.all(**self.values)
        self.verdict(self.rows)


_pending: ContextVar[DeferredRead | None] = ContextVar("api_plugin_deferred_read",
                                                       default=None)


@contextmanager
def deferred(read: DeferredRead) -> Iterator[DeferredRead]:
    """``read`` pending for the block: the request's first prepared read on its engine
    takes it along."""
    token = _pending.set(read)
    try:
        yield read
    finally:
        _pending.reset(token)


def riding_with(engine: Engine) -> DeferredRead | None:
    """The pending read still unanswered, when it is for ``engine``."""
    read = _pending.get()
    if read is None or read.rows is not None or read.prepared.engine is not engine:
        return None
    return read


def guarding(engine: Engine) -> DeferredRead | None:
    """The pending read still unanswered, for ``engine``, when a write may carry it as its
    guard (its verdict refuses exactly when it finds a row)."""
    read = riding_with(engine)
    return read if read is not None and read.refuses_any_row else None


def settle_pending() -> None:
    """Before anything is written: the pending read answered and judged (its verdict's
    refusal raised)."""
    read = _pending.get()
    if read is not None:
        read.settle()
