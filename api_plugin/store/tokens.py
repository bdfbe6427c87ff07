"""Airflow 3's ``revoked_token`` table: the one read ``airflow_jwt`` makes per request.

``/api/v2/auth/logout`` stores a token's ``jti`` there (its primary key) until the token
would have expired anyway. Databases made by Airflow 1.10 and 2.x have no such table, and
there no token can be revoked: the check is then left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import MetaData, Select, bindparam, inspect, select

from api_plugin.store import Store
from api_plugin.store.deferred import DeferredRead
from api_plugin.store.tables import Tables
from api_plugin.store.tables_airflow3 import revoked_token_table

#: Built on its own, since the check runs on databases of every flavor that have it.
_revoked_token = revoked_token_table(MetaData())
REVOKED_TOKEN = _revoked_token.name


def _revoked_query(_tables: Tables) -> Select[Any]:
    """The token's row, if revoked (the table is the same on every flavor that has it)."""
    return select(_revoked_token.c.jti).where(_revoked_token.c.jti == bindparam("jti")).limit(1)


def has_table(store: Store, name: str) -> bool:
    """Whether the database has table ``name`` (from the schema read at start-up, else
    asked once of the database, for a table made since)."""
    if name in store.schema:
        return True
    return bool(inspect(store.engine).has_table(name))


class RevocationCheck:
    """``check(jti) -> True`` when the token was revoked: one primary-key lookup
    (``SELECT jti FROM revoked_token WHERE jti = :jti``), compiled once and run on a
    pooled connection. ``later(jti, verdict)`` is the same lookup made to travel with
    the request's first query instead (``deferred.py``), where the driver can send two
    statements in one message (PostgreSQL's psycopg 3 and psycopg2); None on SQLite."""

    def __init__(self, store: Store) -> None:
        self.query = store.prepared(_revoked_query)

    def __call__(self, jti: str) -> bool:
        return self.query.first(jti=jti) is not None

    def later(self, jti: str, verdict: Callable[[list[Any]], None]) -> DeferredRead | None:
        """``verdict`` judges the token's row: any row refuses it, none lets it through
        (so a one-statement write may carry the lookup as its guard)."""
        if not self.query.carries_riders:
            return None
        return DeferredRead(self.query, {"jti": jti}, verdict, refuses_any_row=True)


def revoked_token_check(store: Store) -> RevocationCheck | None:
    """The store's ``RevocationCheck``; None without the table."""
    if not has_table(store, REVOKED_TOKEN):
        return None
    return RevocationCheck(store)
