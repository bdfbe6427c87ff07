"""Building and mounting the API: what hosts, gunicorn and PasteDeploy call.

``build_application`` gives the complete stack for a configuration: the app behind its
auth middlewares, mounted under the prefix. ``mount_into`` adds the API to an existing
host WSGI app, leaving every other path to the host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from api_plugin.auth.base import Environ, StartResponse, WSGIApp
from api_plugin.auth.loader import wrap_with_auth
from api_plugin.errors import NotFound
from api_plugin.serving.per_process import built_now_or_later
from api_plugin.settings.config import DEFAULT_PREFIX, Config
from api_plugin.store import Store
from api_plugin.web.app import ApiApp, wsgi_text


def json_not_found(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The answer for paths outside the API when it runs on its own."""
    path = wsgi_text(str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")))
    return NotFound(f"Not found: {path}")(environ, start_response)


def load_config(config: Config | None = None, **overrides: Any) -> Config:
    if config is None:
        return Config.load(**overrides)
    return config.with_overrides(**overrides) if overrides else config


def build_api(config: Config, store: Store | None = None) -> WSGIApp:
    """The API app behind its auth stack, paths relative to the prefix (not mounted)."""
    store = store or Store.open(config.sql_alchemy_conn, create=_embedded(config))
    # The API settles a pending revoked_token read before any write (Store._write_section).
    return wrap_with_auth(ApiApp.from_config(config, store), config, store=store,
                          app_settles_checks=True)


def build_application(config: Config | None = None, **overrides: Any) -> WSGIApp:
    """The standalone application: the API under its prefix, JSON 404 elsewhere."""
    cfg = load_config(config, **overrides)
    return mount_into(json_not_found, build_api(cfg), cfg.prefix)


def mount_into(host: WSGIApp, api: WSGIApp, prefix: str = DEFAULT_PREFIX) -> WSGIApp:
    """``host`` with ``api`` answering under ``prefix``; SCRIPT_NAME/PATH_INFO kept right."""
    return DispatcherMiddleware(host, {prefix.rstrip("/"): api})


def mount(host: WSGIApp, config: Config | None = None, *, prefix: str | None = None,
          **overrides: Any) -> WSGIApp:
    """One call for a host that builds its WSGI stack in code::

        flask_app.wsgi_app = api_plugin.serving.mount.mount(flask_app.wsgi_app)

    The API (behind its configured auth stack) answers under ``prefix`` (default the
    configured ``[api] prefix``); every other path goes to ``host`` untouched. A database
    that cannot be reached now does not stop the host: the API answers 503 and is built
    on a later request (``built_now_or_later``).
    """
    cfg = load_config(config, **overrides)
    return mount_into(host, built_now_or_later(lambda: build_api(cfg)), prefix or cfg.prefix)


@dataclass(frozen=True)
class MountSpec:
    """What the ``wsgi_mounts`` entry-point group hands a host: a prefix and a builder."""

    name: str
    default_prefix: str
    build: Callable[[], WSGIApp]


def _build_from_environment() -> WSGIApp:
    config = Config.load()
    return built_now_or_later(lambda: build_api(config))


#: The object this package registers under the ``wsgi_mounts`` entry-point group.
mount_spec = MountSpec("airflow_experimental_api", DEFAULT_PREFIX, _build_from_environment)

MOUNT_GROUP = "wsgi_mounts"


def mount_entry_points(host: WSGIApp, group: str = MOUNT_GROUP) -> WSGIApp:
    """Mount every plugin registered in ``group`` into ``host``, without importing any by
    name: what a host does to find this API (and any other WSGI plugin of that group)."""
    mounts: dict[str, WSGIApp] = {}
    for entry_point in entry_points(group=group):
        spec = entry_point.load()
        mounts[spec.default_prefix.rstrip("/")] = spec.build()
    return DispatcherMiddleware(host, mounts) if mounts else host


def _embedded(config: Config) -> bool:
    """Only the embedded default database is created on first use."""
    return config.sql_alchemy_conn == config.embedded_url
