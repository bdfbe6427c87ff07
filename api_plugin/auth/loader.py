"""Backend names (ours and Airflow's dotted ones) to configured backend objects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from api_plugin.auth.base import AuthBackend, AuthMiddleware, WSGIApp
from api_plugin.auth.simple import DefaultBackend, DenyAllBackend
from api_plugin.settings.config import Config

if TYPE_CHECKING:
    from api_plugin.store import Store

ALIASES = {
    "default": "default",
    "airflow.api.auth.backend.default": "default",
    "deny_all": "deny_all",
    "airflow.api.auth.backend.deny_all": "deny_all",
    "password": "password",
    "basic_auth": "password",
    "airflow.contrib.auth.backends.password_auth": "password",
    "airflow.api.auth.backend.basic_auth": "password",
    "kerberos": "kerberos",
    "airflow.api.auth.backend.kerberos_auth": "kerberos",
    "airflow_jwt": "airflow_jwt",
}

UserLookup = Callable[[str], str | None]


class UnknownBackend(ValueError):
    """A configured auth backend name that is neither ours nor Airflow's."""


def canonical_name(name: str) -> str:
    try:
        return ALIASES[name.strip()]
    except KeyError:
        raise UnknownBackend(
            f"unknown auth backend {name!r}; use one of: default, deny_all, password, kerberos, "
            "airflow_jwt "
            "(or Airflow's dotted names)"
        ) from None


def throttle_path(config: Config) -> Path | None:
    """Where the login budgets are shared by the host's workers: ``[api]
    auth_throttle_path``, default a file in a private temporary folder; ``:memory:``
    keeps them per process."""
    from api_plugin.auth.throttle import default_path

    configured = config.setting("api", "auth_throttle_path").strip()
    if configured == ":memory:":
        return None
    return Path(configured).expanduser() if configured else default_path()


def build_backends(config: Config, user_lookup: UserLookup | None = None, *,
                   store: Store | None = None) -> list[AuthBackend]:
    """The configured backends in order.

    ``store`` is the metadata database: the ``password`` backend's users come from it (or,
    on Airflow 3 without FAB's ``ab_user``, from the simple auth manager's settings; see
    ``users.user_source``) unless ``user_lookup`` is given, and ``airflow_jwt`` reads its
    ``revoked_token`` table when there is one.
    """
    backends: list[AuthBackend] = []
    for name in (canonical_name(n) for n in config.auth_backends):
        if name == "default":
            backends.append(DefaultBackend(config.allow_open_api))
        elif name == "deny_all":
            backends.append(DenyAllBackend())
        elif name == "password":
            from api_plugin.auth.password import PasswordBackend

            if user_lookup is None and store is not None:
                from api_plugin.auth.users import user_source

                user_lookup = user_source(store, config)
            if user_lookup is None:
                raise ValueError("the password backend needs a user store")
            backends.append(PasswordBackend(
                user_lookup,
                realm=config.basic_realm,
                cache_seconds=config.password_cache_seconds,
                failures_per_minute=config.auth_failures_per_minute,
                account_failures_per_minute=config.auth_account_failures_per_minute,
                host_failures_per_minute=config.auth_host_failures_per_minute,
                throttle_path=throttle_path(config),
                throttle_scope=config.sql_alchemy_conn,
            ))
        elif name == "airflow_jwt":
            from api_plugin.auth.airflow_jwt import AirflowJwtBackend

            is_revoked = None
            if store is not None:
                from api_plugin.store.tokens import revoked_token_check

                is_revoked = revoked_token_check(store)
            backends.append(AirflowJwtBackend.from_config(config, is_revoked))
        else:
            from api_plugin.auth.kerberos import KerberosBackend

            backends.append(KerberosBackend(
                keytab=config.get("kerberos", "keytab"),
                service=config.get("kerberos", "service"),
                hostname=config.get("kerberos", "hostname"),
            ))
    return backends


def wrap_with_auth(app: WSGIApp, config: Config, user_lookup: UserLookup | None = None, *,
                   store: Store | None = None, app_settles_checks: bool = False
                   ) -> AuthMiddleware:
    """``app`` behind the configured backend stack (``app_settles_checks``: see
    ``AuthMiddleware``)."""
    return AuthMiddleware(app, build_backends(config, user_lookup, store=store),
                          app_settles_checks=app_settles_checks)
