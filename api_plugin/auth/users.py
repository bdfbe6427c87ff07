"""Where the ``password`` backend finds users: the database's user table, or the users of
Airflow 3's simple auth manager.

Airflow 1.10 keeps users in ``users`` and Airflow 2 (and Airflow 3 with the FAB auth
manager) in FAB's ``ab_user``: both are read from the database (``store/users.py``).
Airflow 3's default auth manager keeps none in the database: its users are listed in
``[core] simple_auth_manager_users`` (``name:role,...``) and their passwords, in plain
text, in the JSON file ``[core] simple_auth_manager_passwords_file`` (default
``$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``) that the api-server writes.
``user_source`` picks one by what the database holds, not by flavor name.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import threading
from pathlib import Path
from typing import Any, Protocol

from api_plugin.settings.airflow import default_passwords_file
from api_plugin.settings.config import Config, parse_bool
from api_plugin.store import AIRFLOW1, Store

log = logging.getLogger(__name__)

DEFAULT_SIMPLE_USERS = "admin:admin"  # Airflow 3's default [core] simple_auth_manager_users


class UserSourceError(ValueError):
    """The configured user source cannot be used (it would let people in unchecked)."""


class UserSource(Protocol):
    """``source(username) -> stored credential`` of an active user, or None."""

    def __call__(self, username: str) -> str | None: ...


def parse_simple_users(text: str) -> dict[str, str]:
    """``admin:admin,viewer:viewer`` -> ``{"admin": "admin", "viewer": "viewer"}``."""
    users: dict[str, str] = {}
    for entry in text.split(","):
        name, _, role = entry.strip().partition(":")
        if name.strip():
            users[name.strip()] = role.strip()
    return users


class SimpleAuthManagerUsers:
    """The simple auth manager's users with the passwords from its JSON file.

    The file is read again whenever it changes (its modification time, size or inode), so a
    password changed there, or a user removed from it, stops working on the next request;
    between changes a request costs one ``stat``. Passwords are plain text (Airflow's
    format): they are compared in constant time, and an unknown user is compared against a
    random string of the same kind, so both cost the same.
    """

    def __init__(self, users: dict[str, str], passwords_file: Path) -> None:
        self.users = dict(users)
        self.passwords_file = passwords_file
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._passwords: dict[str, str] = {}
        if not passwords_file.is_file():
            log.warning("the simple auth manager's passwords file %s does not exist: every "
                        "Basic login is refused until it does", passwords_file)

    def __call__(self, username: str) -> str | None:
        if username not in self.users:
            return None
        return self._current_passwords().get(username)

    def _current_passwords(self) -> dict[str, str]:
        try:
            stat = self.passwords_file.stat()
        except OSError:
            return {}
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if signature != self._signature:
                loaded = self._read()
                if loaded is None:
                    return {}  # unreadable now (being rewritten?): refuse, retry next time
                self._passwords, self._signature = loaded, signature
            return self._passwords

    def _read(self) -> dict[str, str] | None:
        try:
            document: Any = json.loads(self.passwords_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("cannot read the passwords file %s: %s", self.passwords_file, exc)
            return None
        if not isinstance(document, dict):
            log.warning("the passwords file %s is not a JSON object", self.passwords_file)
            return None
        return {str(k): v for k, v in document.items() if isinstance(v, str) and v}

    @staticmethod
    def verify(stored: str, password: str) -> bool:
        """Constant-time comparison of two plain-text passwords."""
        return hmac.compare_digest(stored.encode("utf-8", "surrogatepass"),
                                   password.encode("utf-8", "surrogatepass"))

    @staticmethod
    def dummy_credential() -> str:
        """What an unknown user's password is compared with."""
        return secrets.token_urlsafe(16)


def simple_users_from_config(config: Config,
                             environ: dict[str, str] | None = None) -> SimpleAuthManagerUsers:
    """The simple auth manager's users as Airflow's ``[core]`` settings describe them.

    ``simple_auth_manager_all_admins = True`` makes Airflow skip authentication and treat
    everyone as admin. The plugin does not follow it into an open API: that setting makes
    building the ``password`` backend fail with this explanation.
    """
    if parse_bool(config.get("core", "simple_auth_manager_all_admins") or "False"):
        raise UserSourceError(
            "[core] simple_auth_manager_all_admins = True turns Airflow's authentication off; "
            "api_plugin does not take that as an open API, so the password backend cannot "
            "check anyone. Turn it off, or use another backend (airflow_jwt, or 'default' "
            "with [api] allow_open_api = True if an open API is really meant)")
    users = parse_simple_users(config.get("core", "simple_auth_manager_users")
                               or DEFAULT_SIMPLE_USERS)
    configured = config.get("core", "simple_auth_manager_passwords_file")
    passwords = (Path(configured).expanduser() if configured
                 else default_passwords_file(environ))
    return SimpleAuthManagerUsers(users, passwords)


def user_source(store: Store, config: Config) -> UserSource:
    """The users the ``password`` backend checks, for this database and configuration.

    airflow1's ``users`` table; FAB's ``ab_user`` when the database has it (Airflow 2, or
    Airflow 3 with the FAB auth manager); otherwise Airflow 3's simple auth manager.
    """
    from api_plugin.store.users import UserTable

    if store.flavor.name == AIRFLOW1 or "ab_user" in store.schema:
        return UserTable(store)
    return simple_users_from_config(config)
