"""A WSGI app built on first use in each process, for hosts that import it before forking.

Airflow's api-server imports plugins in every process: uvicorn's spawned workers import
them anew, but gunicorn (``[api] server_type = gunicorn``) preloads the app in its master
and forks. An engine made before a fork would hand the same pooled sockets to every
worker, so the API (engine, flavor detection, table metadata) is built per process, on
its first request, and built again in a forked child. Importing the plugin (which the
scheduler and the dag-processor also do) therefore never touches the database.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable

from api_plugin.auth.base import Environ, StartResponse, WSGIApp
from api_plugin.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class PerProcessApp:
    """Calls ``factory()`` once per process id (thread-safe) and serves with its result."""

    def __init__(self, factory: Callable[[], WSGIApp],
                 getpid: Callable[[], int] = os.getpid) -> None:
        self.factory = factory
        self.getpid = getpid
        self._app: WSGIApp | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        # A child forked while another thread held the lock must not inherit it held.
        os.register_at_fork(after_in_child=self._new_lock)

    def _new_lock(self) -> None:
        self._lock = threading.Lock()

    def app(self) -> WSGIApp:
        """This process's app, built now if this process has none yet."""
        pid = self.getpid()
        app = self._app
        if app is not None and self._pid == pid:
            return app
        with self._lock:
            if self._app is None or self._pid != pid:
                self._app = self.factory()
                self._pid = pid
            return self._app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            app = self.app()
        except Exception:  # no database yet, wrong settings: tried again next time
            # The cause goes to the log only: it may name the database URL.
            log.exception("api_plugin could not start")
            unavailable = ServiceUnavailable("The API is not available: see the server's log")
            return unavailable(environ, start_response)
        return app(environ, start_response)


def built_now_or_later(factory: Callable[[], WSGIApp]) -> PerProcessApp:
    """``PerProcessApp(factory)`` with the app built now when the database answers.

    What a gunicorn worker loads: start-up work (engine, flavor detection, tables) is
    done as the worker boots, but a database that cannot be reached then (a worker
    replaced during a failover) does not fail the boot, which would make gunicorn stop
    the whole server: the worker starts, answers 503, and builds the app on a later
    request. Any other failure (no Airflow tables, bad settings) still stops the start.
    """
    from sqlalchemy.exc import DBAPIError

    app = PerProcessApp(factory)
    try:
        app.app()
    except DBAPIError:
        log.exception("api_plugin could not reach its database; trying again on the next "
                      "request")
    return app
