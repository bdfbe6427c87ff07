"""Running the API under gunicorn from ``api-plugin serve``.

gunicorn is driven in-process through its ``BaseApplication`` so the command needs no
config file of gunicorn's own; each worker builds the application once, after the fork.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from api_plugin.auth.loader import canonical_name
from api_plugin.auth.simple import is_loopback
from api_plugin.settings.config import Config


class UnsafeBind(ValueError):
    """An open API would be served beyond loopback."""


def bind_host(bind: str) -> str:
    """The host part of a gunicorn bind (``host:port``, ``[::1]:port``, ``unix:path``)."""
    if bind.startswith("unix:"):
        return bind
    host, _, _port = bind.rpartition(":")
    return host or bind


def check_bind_is_safe(config: Config, bind: str) -> None:
    """Refuse an open (``default``) backend on a non-loopback bind unless allowed."""
    open_api = any(canonical_name(n) == "default" for n in config.auth_backends)
    if open_api and not is_loopback(bind_host(bind)) and not config.allow_open_api:
        raise UnsafeBind(
            f"refusing to serve the API without authentication on {bind}: the 'default' "
            "auth backend lets anyone in. Bind to 127.0.0.1, configure [api] auth_backend "
            "(password or kerberos), or set [api] allow_open_api = True "
            "(API_PLUGIN__API__ALLOW_OPEN_API=True) if that is really intended."
        )


class _GunicornApp(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config, options: dict[str, Any]) -> None:
        self.api_config = config
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api_plugin.serving.mount import build_application
        from api_plugin.serving.per_process import built_now_or_later

        return built_now_or_later(lambda: build_application(self.api_config))


def gunicorn_options(config: Config, bind: str, workers: int) -> dict[str, Any]:
    """gunicorn's settings for ``api-plugin serve``: the buffering, keep-alive worker with
    JSON error pages, worker timeouts logged as such, access log on stdout."""
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": "api_plugin.serving.buffered_worker.BufferedWorker",
        "logger_class": "api_plugin.serving.gunicorn_logging.TimeoutAwareLogger",
        "accesslog": config.access_logfile,
        "access_log_format": '%(h)s %({REMOTE_USER}e)s "%(r)s" %(s)s %(b)s %(M)sms',
        "timeout": config.worker_timeout,
        "keepalive": config.keep_alive,
        "proc_name": "api-plugin",
    }


def run_gunicorn(config: Config, bind: str, workers: int) -> None:
    """Serve until stopped, with ``gunicorn_options``."""
    _GunicornApp(config, gunicorn_options(config, bind, workers)).run()
