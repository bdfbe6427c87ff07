"""The flavor's user table: password lookups for Basic auth, and creating users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select

from api_plugin.dates import utcnow
from api_plugin.store import AIRFLOW1, Store
from api_plugin.store.tables import Tables


class UserTable:
    """``table(username) -> stored hash`` of an active user, or None.

    airflow2 (FAB's ``ab_user``) matches usernames case-insensitively, as its NOCASE
    collation does; airflow1's ``users`` table matches exactly. The lookup is asked on
    every Basic request (a cached good login is checked against the current hash and
    active flag), so it is a prepared query on the unique username index: the exact name
    first, and only when that finds nothing a case-insensitive match (which may scan).
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def __call__(self, username: str) -> str | None:
        if self.store.flavor.name == AIRFLOW1:
            row = self.store.prepared(_exact_user).first(username=username)
        else:
            row = self.store.prepared(_exact_active_user).first(
                username=username)
            if row is None:
                row = self.store.prepared(_nocase_active_user).first(
                    username=username.lower())
        return None if row is None or not row.password else str(row.password)

    def sample_hash(self) -> str | None:
        """Any one stored hash: tells which algorithm and cost the users' hashes have."""
        users = self.store.tables.users
        with self.store.read() as conn:
            return conn.execute(
                select(users.c.password).where(users.c.password.is_not(None)).limit(1)
            ).scalar()


def _exact_user(tables: Tables) -> Select[Any]:
    users = tables.users
    return select(users.c.password).where(users.c.username == bindparam("username")).limit(1)


def _exact_active_user(tables: Tables) -> Select[Any]:
    users = tables.users
    return select(users.c.password).where(
        users.c.username == bindparam("username"), users.c.active.is_not(False)).limit(1)


def _nocase_active_user(tables: Tables) -> Select[Any]:
    users = tables.users
    return select(users.c.password).where(
        func.lower(users.c.username) == bindparam("username"),
        users.c.active.is_not(False)).limit(1)


def user_lookup(store: Store) -> Callable[[str], str | None]:
    """The user table of ``store`` as a password lookup (see ``UserTable``); the
    ``password`` backend chooses between it and Airflow 3's simple auth manager with
    ``api_plugin.auth.users.user_source``."""
    return UserTable(store)


def create_user(store: Store, username: str, password_hash: str, email: str | None = None,
                first_name: str = "", last_name: str = "") -> None:
    """Insert a user row in the flavor's format (the hash already made for the flavor).

    An Airflow 3 database without FAB's ``ab_user`` has no user table: its simple auth
    manager keeps users in its configuration and passwords file, which this refuses to
    guess at.
    """
    users = store.tables.users
    if users.name not in store.schema:
        raise ValueError(
            f"this database has no {users.name} table: Airflow 3's simple auth manager "
            "keeps its users in [core] simple_auth_manager_users and the file named by "
            "[core] simple_auth_manager_passwords_file")
    values: dict[str, object]
    if store.flavor.name == AIRFLOW1:
        values = {"username": username, "email": email or f"{username}@localhost",
                  "password": password_hash, "superuser": True}
    else:
        now = utcnow()
        values = {"username": username, "email": email or f"{username}@localhost",
                  "password": password_hash, "first_name": first_name or username,
                  "last_name": last_name or username, "active": True, "created_on": now,
                  "changed_on": now, "login_count": 0, "fail_login_count": 0}
    with store.write() as conn:
        conn.execute(insert(users).values(**{k: v for k, v in values.items() if k in users.c}))
