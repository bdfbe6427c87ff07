"""Pools: list, read, create-or-update, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from api_plugin.errors import BadRequest, Conflict, NotFound
from api_plugin.store import Store
from api_plugin.store.schema import DEFAULT_POOL
from api_plugin.store.tables import Tables

MAX_SLOTS = 2**31 - 1
MAX_NAME = 256


def _pool_dict(store: Store, row: Any) -> dict[str, Any]:
    pool = {"id": row.id, "pool": row.pool, "slots": row.slots, "description": row.description}
    if "include_deferred" in store.tables.slot_pool.c:
        pool["include_deferred"] = bool(row.include_deferred)
    return pool


def _pool_not_found(name: str) -> NotFound:
    return NotFound(f"Pool '{name}' doesn't exist")


def _select_pool(store: Store, conn: Connection, name: str) -> Any:
    sp = store.tables.slot_pool
    return conn.execute(select(sp).where(sp.c.pool == name)).first()


def _pools_query(t: Tables) -> Select[Any]:
    return select(t.slot_pool).order_by(t.slot_pool.c.id)


def _pool_query(t: Tables) -> Select[Any]:
    return select(t.slot_pool).where(t.slot_pool.c.pool == bindparam("name")).limit(1)


def get_pools(store: Store) -> list[dict[str, Any]]:
    rows = store.prepared(_pools_query).all()
    return [_pool_dict(store, row) for row in rows]


def get_pool(store: Store, name: str) -> dict[str, Any]:
    row = store.prepared(_pool_query).first(name=name)
    if row is None:
        raise _pool_not_found(name)
    return _pool_dict(store, row)


def _parse_slots(slots: Any) -> int:
    if isinstance(slots, bool) or (isinstance(slots, float) and not slots.is_integer()):
        raise BadRequest(f"Bad value for `slots`: {slots}")
    try:
        value = int(slots.strip() if isinstance(slots, str) else slots)
    except (TypeError, ValueError, OverflowError):
        raise BadRequest(f"Bad value for `slots`: {slots}") from None
    if not -1 <= value <= MAX_SLOTS:
        raise BadRequest(f"Bad value for `slots`: {slots} (must be between -1 and {MAX_SLOTS})")
    return value


def create_pool(store: Store, name: Any, slots: Any, description: Any) -> dict[str, Any]:
    """Create the pool, or update the one of that name (same id)."""
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("Pool name shouldn't be empty")
    if len(name) > MAX_NAME:
        raise BadRequest(f"Pool name can't be more than {MAX_NAME} characters")
    value = _parse_slots(slots)
    if description is not None and not isinstance(description, str):
        raise BadRequest("Pool description must be a string")
    sp = store.tables.slot_pool
    with store.write(conflict=Conflict(f"Pool '{name}' was created concurrently; retry")
                     ) as conn:
        row = _select_pool(store, conn, name)
        if row is None:
            values: dict[str, Any] = {"pool": name, "slots": value, "description": description}
            if "include_deferred" in sp.c:
                values["include_deferred"] = False
            conn.execute(insert(sp).values(**values))
        else:
            conn.execute(
                update(sp).where(sp.c.id == row.id).values(slots=value, description=description)
            )
        row = _select_pool(store, conn, name)
    return _pool_dict(store, row)


def delete_pool(store: Store, name: str) -> dict[str, Any]:
    """Delete and return the pool; ``default_pool`` stays."""
    if name == DEFAULT_POOL:
        raise BadRequest("default_pool cannot be deleted")
    sp = store.tables.slot_pool
    with store.write() as conn:
        row = _select_pool(store, conn, name)
        if row is None:
            raise _pool_not_found(name)
        conn.execute(delete(sp).where(sp.c.id == row.id))
    return _pool_dict(store, row)
