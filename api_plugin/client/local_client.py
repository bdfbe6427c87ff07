"""local_client: the same client, its requests handed to the API's WSGI app in-process.

No socket and no auth middleware (this is the direct client, with the database's own
credentials): the request goes through the URL map, the views and the services exactly
as a server's would, so the answers and errors are the server's by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import DBAPIError
from werkzeug.test import EnvironBuilder, run_wsgi_app

from api_plugin.auth.base import WSGIApp
from api_plugin.client.base import ApiClient, ClientConnectionError
from api_plugin.client.transport import Answer
from api_plugin.settings.config import DEFAULT_PREFIX, Config
from api_plugin.store import Store
from api_plugin.web.app import ApiApp

_HOST = "http://localhost"


class LocalTransport:
    """Requests made into WSGI environs and passed to ``app`` mounted at ``prefix``;
    ``remote_user`` is set as ``REMOTE_USER`` when given (who a trigger is made by)."""

    def __init__(self, app: WSGIApp, *, prefix: str = DEFAULT_PREFIX,
                 remote_user: str | None = None) -> None:
        self.app = app
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.remote_user = remote_user

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, Any] | None = None) -> Answer:
        builder = EnvironBuilder(path=path, base_url=_HOST + self.prefix, method=method,
                                 json=json, query_string=dict(params or {}))
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        if self.remote_user is not None:
            environ["REMOTE_USER"] = self.remote_user
        chunks, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        code, _, reason = status.partition(" ")
        return Answer(int(code), reason, list(headers.items()), body,
                      _HOST + self.prefix + path)

    def close(self) -> None:
        """Nothing to release: the app's owner closes it."""


class LocalClient(ApiClient):
    """The client straight to the database: the API app over ``store``, in-process."""

    transport: LocalTransport

    def __init__(self, store: Store, allowed_run_id_pattern: str | None = None, *,
                 app: ApiApp | None = None) -> None:
        self.store = store
        app = app or ApiApp(store, allowed_run_id_pattern=allowed_run_id_pattern)
        super().__init__(LocalTransport(app, prefix=app.prefix))

    @classmethod
    def from_config(cls, config: Config) -> LocalClient:
        try:
            store = Store.open(config.sql_alchemy_conn)
        except DBAPIError as exc:
            raise ClientConnectionError(f"database unreachable: {exc.orig}") from None
        return cls(store, app=ApiApp.from_config(config, store))

    def close(self) -> None:
        super().close()
        self.store.dispose()
