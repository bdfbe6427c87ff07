"""The WSGI application: route, call the view, render JSON; one place renders every error."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Iterator
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as RouteMethodNotAllowed

from api_plugin.auth.base import Environ, StartResponse
from api_plugin.bounded import BoundedMap
from api_plugin.errors import (
    JSON_TYPE,
    ApiError,
    InternalServerError,
    MethodNotAllowed,
    NotFound,
    status_line,
)
from api_plugin.settings.config import DEFAULT_CONFIG, DEFAULT_PREFIX, Config
from api_plugin.store import Store
from api_plugin.web.rendering import Rendered, Streamed, accepts_gzip, render_json
from api_plugin.web.routes import View, build_url_map
from api_plugin.web.views import Context, PlainText
from api_plugin.web.web_input import check_query, check_route_arguments

log = logging.getLogger(__name__)

_OK = status_line(200)
#: How many route matches an app keeps (``ApiApp._route``), and the longest path kept.
ROUTES_KEPT = 1024
ROUTE_KEPT_MAX_CHARS = 512


def wsgi_text(value: object) -> str:
    """A PEP 3333 native string (bytes carried as latin-1) read as the UTF-8 it is,
    undecodable bytes replaced, as werkzeug reads paths."""
    text = str(value)
    if text.isascii():
        return text
    return text.encode("latin-1", "replace").decode("utf-8", "replace")


class ApiApp:
    """The experimental API over one metadata database, as a WSGI callable; paths are
    relative to its mount point."""

    def __init__(self, store: Store, *, allowed_run_id_pattern: str | None = None,
                 prefix: str = DEFAULT_PREFIX,
                 max_body_bytes: int = DEFAULT_CONFIG.max_body_bytes) -> None:
        self.store = store
        #: ``[scheduler] allowed_run_id_pattern`` (None: Airflow's default), for triggers.
        self.allowed_run_id_pattern = allowed_run_id_pattern
        self.prefix = prefix.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.url_map = build_url_map()
        # One adapter for every request: matching needs only the path and the method
        # (``bind_to_environ`` would parse the Host header each time, for redirects
        # this API never makes).
        self._routes = self.url_map.bind("localhost")
        #: Matches made, by (path, method): see ``_route``.
        self._matched: BoundedMap[tuple[View, dict[str, Any]]] = BoundedMap(ROUTES_KEPT)

    @classmethod
    def from_config(cls, config: Config, store: Store) -> ApiApp:
        """The app as ``config`` sets it up, over ``store``."""
        return cls(store, allowed_run_id_pattern=config.allowed_run_id_pattern,
                   prefix=config.prefix, max_body_bytes=config.max_body_bytes)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        ctx = Context(self, environ)
        stream: Generator[bytes, None, None] | None = None
        extra_headers: list[tuple[str, str]] = []
        try:
            view, args = self._route(wsgi_text(environ.get("PATH_INFO", "")) or "/",
                                     str(environ.get("REQUEST_METHOD", "GET")))
            if environ.get("QUERY_STRING"):
                check_query(ctx.request.args.items(multi=True))
            result = view(ctx, **args)
            if isinstance(result, Streamed):
                # The first chunk is fetched before the status goes out, so a database
                # that fails at the start still answers a proper 503/500 (see _streamed).
                stream = result.encode()
                body, content_type = next(stream), JSON_TYPE
            elif isinstance(result, PlainText):
                body = result.text.encode()
                content_type = "text/plain; charset=utf-8"
            else:
                body, content_type = render_json(result), JSON_TYPE
                if isinstance(result, Rendered) and (zipped := result.gzipped()) is not None:
                    # The answer differs by Accept-Encoding: caches must key on it.
                    extra_headers = [("Vary", "Accept-Encoding")]
                    if accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING")):
                        body = zipped
                        extra_headers.append(("Content-Encoding", "gzip"))
        except Exception as exc:  # every failure is answered as an ApiError
            if stream is not None:
                stream.close()
            return self._as_error(exc, ctx)(environ, start_response)
        headers = [("Content-Type", content_type), *extra_headers]
        if stream is None:
            headers.append(("Content-Length", str(len(body))))
        start_response(_OK, headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            if stream is not None:
                stream.close()
            return [b""]
        if stream is not None:
            return _streamed(body, stream, ctx.request.method, ctx.request.path)
        return [body]

    def _route(self, path: str, method: str) -> tuple[View, dict[str, Any]]:
        """The view and path arguments for ``path`` and ``method`` (werkzeug's
        ``NotFound`` or ``MethodNotAllowed`` when there are none), arguments checked.

        A match is kept, by path and method: clients ask for the same few paths again
        and again (a poll of one run's state or one task instance), and werkzeug's
        matcher takes 8-16 µs for this API's paths against a dict lookup's fraction of
        one. Only matches are kept, paths up to ``ROUTE_KEPT_MAX_CHARS``, at most
        ``ROUTES_KEPT`` of them (the oldest kept goes first): the memory stays small
        whatever paths clients send."""
        key = (path, method)
        kept = self._matched.get(key)
        if kept is not None:
            return kept
        view, args = self._routes.match(path, method)
        check_route_arguments(args)
        route = (view, dict(args))
        if len(path) <= ROUTE_KEPT_MAX_CHARS:
            self._matched.put(key, route)
        return route

    @staticmethod
    def _as_error(exc: Exception, ctx: Context) -> ApiError:
        """The ``ApiError`` a failure is answered with (logged when it is a bug)."""
        if isinstance(exc, ApiError):
            return exc
        if isinstance(exc, RouteMethodNotAllowed):
            allowed = sorted(set(exc.valid_methods or ()))
            return MethodNotAllowed(f"Method {ctx.request.method} not allowed; use "
                                    f"{', '.join(allowed)}", allowed=allowed)
        if isinstance(exc, HTTPException):
            if exc.code == 404:
                return NotFound(f"Not found: {ctx.request.path}")
            return ApiError(exc.description or exc.name, exc.code or 400)
        log.exception("unhandled error on %s %s", ctx.request.method, ctx.request.path)
        return InternalServerError("Internal server error")

    def url_base(self, environ: Environ) -> str:
        """The host's own mount point: SCRIPT_NAME less the API prefix."""
        script = str(environ.get("SCRIPT_NAME", "")).rstrip("/")
        if self.prefix and script.endswith(self.prefix):
            return script[: -len(self.prefix)]
        return script if not self.prefix else ""


def _streamed(first: bytes, rest: Generator[bytes, None, None], method: str,
              path: str) -> Iterator[bytes]:
    """A streamed body: its first piece (already fetched), then the rest as fetched.

    The status and headers are out by then, so an error past the first chunk cannot
    become an error answer. It is logged and raised on to the server, which then drops
    the connection without ending the body: the client sees a cut-off transfer (no final
    chunk, or fewer bytes than a complete JSON document), never a short list that
    parses as a whole one.
    """
    try:
        yield first
        try:
            yield from rest
        except Exception:
            log.exception("error while streaming %s %s: answer cut off", method, path)
            raise
    finally:
        rest.close()
