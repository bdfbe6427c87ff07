"""The WSGI application: route, call the view, render JSON; one place renders every error."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterable, Iterator

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed as RouteMethodNotAllowed

from api_plugin.auth.base import Environ, StartResponse
from api_plugin.errors import ApiError
from api_plugin.services import ApiService
from api_plugin.web.rendering import Streamed, render_json
from api_plugin.web.routes import build_url_map
from api_plugin.web.views import VIEWS, Context, PlainText
from api_plugin.web.web_input import check_query, check_route_arguments

log = logging.getLogger(__name__)

_STATUS_LINES = {
    200: "200 OK", 400: "400 BAD REQUEST", 401: "401 UNAUTHORIZED", 403: "403 FORBIDDEN",
    404: "404 NOT FOUND", 405: "405 METHOD NOT ALLOWED", 409: "409 CONFLICT",
    413: "413 REQUEST ENTITY TOO LARGE", 500: "500 INTERNAL SERVER ERROR",
    503: "503 SERVICE UNAVAILABLE",
}
JSON_TYPE = "application/json"
DB_UNAVAILABLE = "The metadata database is unavailable; try again shortly"


_UNAVAILABLE_HINTS = ("database is locked", "unable to open database", "could not connect",
                      "connection refused", "server closed the connection",
                      "terminating connection", "the database system is",
                      "connection to server", "no connection to the server")


def wsgi_text(value: object) -> str:
    """A PEP 3333 native string (bytes carried as latin-1) read as the UTF-8 it is,
    undecodable bytes replaced, as werkzeug reads paths."""
    text = str(value)
    if text.isascii():
        return text
    return text.encode("latin-1", "replace").decode("utf-8", "replace")


def database_unavailable(exc: Exception) -> bool:
    """True when the database cannot be reached now (a 503), not when a query is wrong."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    pgcode = str(getattr(getattr(exc, "orig", None), "pgcode", "") or "")
    if pgcode.startswith(("08", "57P")):
        return True
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError) and any(h in text for h in _UNAVAILABLE_HINTS)


class ApiApp:
    """The experimental API as a WSGI callable, paths relative to its mount point."""

    def __init__(self, service: ApiService, *, prefix: str = "/api/experimental",
                 max_body_bytes: int = 1024 * 1024) -> None:
        self.service = service
        self.prefix = prefix.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.url_map = build_url_map()
        # One adapter for every request: matching needs only the path and the method
        # (``bind_to_environ`` would parse the Host header each time, for redirects
        # this API never makes).
        self._routes = self.url_map.bind("localhost")

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        headers: list[tuple[str, str]] = []
        stream: Generator[bytes, None, None] | None = None
        ctx = Context(self.service, environ, self.max_body_bytes, self._url_base(environ))
        try:
            endpoint, args = self._routes.match(
                wsgi_text(environ.get("PATH_INFO", "")) or "/",
                str(environ.get("REQUEST_METHOD", "GET")))
            check_route_arguments(args)
            if environ.get("QUERY_STRING"):
                check_query(ctx.request.args.items(multi=True))
            result = VIEWS[endpoint](ctx, **args)
            status = 200
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
        except ApiError as exc:
            status, body, content_type = exc.status, render_json({"error": exc.message}), JSON_TYPE
        except RouteMethodNotAllowed as exc:
            allowed = sorted(set(exc.valid_methods or ()))
            headers.append(("Allow", ", ".join(allowed)))
            status, content_type = 405, JSON_TYPE
            body = render_json({"error": f"Method {ctx.request.method} not allowed; use "
                                         f"{', '.join(allowed)}"})
        except HTTPException as exc:
            status, content_type = exc.code or 400, JSON_TYPE
            text = "Not found" if status == 404 else (exc.description or exc.name)
            body = render_json({"error": f"{text}: {ctx.request.path}" if status == 404 else text})
        except (DBAPIError, PoolTimeout) as exc:
            if database_unavailable(exc):
                log.warning("database unavailable: %s", str(exc).splitlines()[0])
                status, body = 503, render_json({"error": DB_UNAVAILABLE})
            else:
                log.exception("database error on %s %s", ctx.request.method, ctx.request.path)
                status, body = 500, render_json({"error": "Internal database error"})
            content_type = JSON_TYPE
        except Exception:
            log.exception("unhandled error on %s %s", ctx.request.method, ctx.request.path)
            status, body = 500, render_json({"error": "Internal server error"})
            content_type = JSON_TYPE
        if stream is not None and status != 200:
            stream.close()
            stream = None
        headers.append(("Content-Type", content_type))
        if stream is None:
            headers.append(("Content-Length", str(len(body))))
        if status in (503,):
            headers.append(("Retry-After", "1"))
        start_response(_STATUS_LINES.get(status, f"{status} ERROR"), headers)
        if environ.get("REQUEST_METHOD") == "HEAD":
            if stream is not None:
                stream.close()
            return [b""]
        if stream is not None:
            return _streamed(body, stream, ctx.request.method, ctx.request.path)
        return [body]

    def _url_base(self, environ: Environ) -> str:
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
