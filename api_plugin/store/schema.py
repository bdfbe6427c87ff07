"""``api-plugin db init``: the airflow2 subset the plugin needs, on an empty database."""

from __future__ import annotations

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine

from api_plugin.store.tables import AIRFLOW2, build_tables

DEFAULT_POOL = "default_pool"
DEFAULT_POOL_SLOTS = 128
DEFAULT_POOL_DESCRIPTION = "Default pool"


def init_database(engine: Engine) -> None:
    """Create the tables that are missing and the ``default_pool``; idempotent.

    No ``alembic_version`` row is written: this is a subset of Airflow's schema, and
    Airflow must not mistake it for a fully migrated database.
    """
    tables = build_tables(AIRFLOW2)
    tables.metadata.create_all(engine, checkfirst=True)
    pool = tables.slot_pool
    with engine.begin() as conn:
        exists = conn.execute(
            select(func.count()).select_from(pool).where(pool.c.pool == DEFAULT_POOL)
        ).scalar_one()
        if not exists:
            conn.execute(
                insert(pool).values(
                    pool=DEFAULT_POOL,
                    slots=DEFAULT_POOL_SLOTS,
                    description=DEFAULT_POOL_DESCRIPTION,
                    include_deferred=False,
                )
            )
