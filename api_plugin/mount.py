"""Building and mounting the API: what hosts, gunicorn and PasteDeploy call.

``build_application`` gives the complete stack for a configuration: the app behind its
auth middlewares, mounted under the prefix. ``mount_into`` adds the API to an existing
host WSGI app, leaving every other path to the host.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from api_plugin.app import ApiApp
from api_plugin.auth.base import Environ, StartResponse, WSGIApp
from api_plugin.auth.loader import wrap_with_auth
from api_plugin.config import Config
from api_plugin.services import ApiService
from api_plugin.store import Store
from api_plugin.store.users import user_lookup


def json_not_found(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The answer for paths outside the API when it runs on its own."""
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    body = json.dumps({"error": f"Not found: {path}"}).encode()
    start_response("404 NOT FOUND", [("Content-Type", "application/json"),
                                     ("Content-Length", str(len(body)))])
    return [body] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]


def load_config(config: Config | None = None, **overrides: Any) -> Config:
    if config is None:
        return Config.load(**overrides)
    return config.with_overrides(**overrides) if overrides else config


def build_api(config: Config, store: Store | None = None) -> WSGIApp:
    """The API app behind its auth stack, paths relative to the prefix (not mounted)."""
    store = store or Store.open(config.sql_alchemy_conn, create=_embedded(config))
    app = ApiApp(ApiService(store), prefix=config.prefix, max_body_bytes=config.max_body_bytes)
    return wrap_with_auth(app, config, user_lookup(store))


def build_application(config: Config | None = None, **overrides: Any) -> WSGIApp:
    """The standalone application: the API under its prefix, JSON 404 elsewhere."""
    cfg = load_config(config, **overrides)
    return mount_into(json_not_found, build_api(cfg), cfg.prefix)


def mount_into(host: WSGIApp, api: WSGIApp, prefix: str = "/api/experimental") -> WSGIApp:
    """``host`` with ``api`` answering under ``prefix``; SCRIPT_NAME/PATH_INFO kept right."""
    return DispatcherMiddleware(host, {prefix.rstrip("/"): api})


def _embedded(config: Config) -> bool:
    """Only the embedded default database is created on first use."""
    return config.sql_alchemy_conn == config.embedded_url
