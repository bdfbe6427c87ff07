"""PasteDeploy factories: the app, each auth filter, and a composite that mounts.

An ini file can then build any stack by name (see ``examples/paste.ini``)::

    [composite:main]
    use = egg:api_plugin#mount
    api = api

    [pipeline:api]
    pipeline = egg:api_plugin#password egg:api_plugin#app

Settings come from the ini's ``[DEFAULT]``/local options as ``section__key`` names
(e.g. ``database__sql_alchemy_conn``) on top of the normal configuration. The app and the
filters that need the database are built as the worker loads them, or, when the database
cannot be reached then, on a later request (``built_now_or_later``): a worker booting
during an outage answers 503 instead of failing, which would stop gunicorn.
"""

from __future__ import annotations

from typing import Any

from api_plugin.auth.base import AuthMiddleware, WSGIApp
from api_plugin.auth.loader import build_backends
from api_plugin.serving.mount import json_not_found, mount_into
from api_plugin.serving.per_process import built_now_or_later
from api_plugin.settings.config import DEFAULT_PREFIX, Config
from api_plugin.store import Store
from api_plugin.web.app import ApiApp

_stores: dict[str, Store] = {}


def _config(global_conf: dict[str, Any], local_conf: dict[str, Any]) -> Config:
    settings = {k: v for k, v in {**global_conf, **local_conf}.items() if "__" in k}
    return Config.load(global_conf.get("api_plugin_config"), **settings)


def _store(config: Config) -> Store:
    """One store per database URL per process, shared by the app and the filters."""
    url = config.sql_alchemy_conn
    if url not in _stores:
        _stores[url] = Store.open(url, create=url == config.embedded_url)
    return _stores[url]


def app_factory(global_conf: dict[str, Any], **local_conf: Any) -> WSGIApp:
    """``egg:api_plugin#app``: the API without auth, paths relative to its mount point."""
    config = _config(global_conf, local_conf)
    return built_now_or_later(lambda: ApiApp.from_config(config, _store(config)))


def _filter(backend: str) -> Any:
    def factory(app: WSGIApp, global_conf: dict[str, Any], **local_conf: Any) -> WSGIApp:
        config = _config(global_conf, local_conf)
        chosen = config.with_overrides(api__auth_backends=backend) if backend else config
        return built_now_or_later(
            lambda: AuthMiddleware(app, build_backends(chosen, store=_store(config))))

    factory.__doc__ = f"``egg:api_plugin#{backend or 'auth'}``: an auth filter."
    return factory


auth_filter_factory = _filter("")  # the configured stack ([api] auth_backends)
default_filter_factory = _filter("default")
deny_all_filter_factory = _filter("deny_all")
password_filter_factory = _filter("password")
kerberos_filter_factory = _filter("kerberos")
airflow_jwt_filter_factory = _filter("airflow_jwt")


def mount_composite_factory(loader: Any, global_conf: dict[str, Any],
                            **local_conf: Any) -> WSGIApp:
    """``egg:api_plugin#mount``: ``api`` under ``prefix``, ``host`` (or JSON 404) elsewhere."""
    api = loader.get_app(local_conf["api"], global_conf=global_conf)
    host = (loader.get_app(local_conf["host"], global_conf=global_conf)
            if "host" in local_conf else json_not_found)
    return mount_into(host, api, local_conf.get("prefix", DEFAULT_PREFIX))


def proxy_fix_filter_factory(app: WSGIApp, global_conf: dict[str, Any],
                             **local_conf: Any) -> WSGIApp:
    """werkzeug's ProxyFix as a Paste filter (``x_for``, ``x_proto``... counts, default 1)."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    counts = {k: int(v) for k, v in local_conf.items() if k.startswith("x_")}
    return ProxyFix(app, **counts)
