"""Thin views: read the request, call the service, hand back what to render.

The URL map (``routes.py``) points at these functions themselves. A view returns a
JSON-ready value (rendered with status 200) or a ``PlainText``; every failure is an
``ApiError`` raised by the view or the service and rendered by the app. A view that
reads a body or a query string says so with ``@describe`` for the OpenAPI document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request
from werkzeug.wsgi import get_content_length, get_input_stream

from api_plugin import services
from api_plugin.errors import BadRequest, PayloadTooLarge
from api_plugin.store import Store
from api_plugin.web.operation_docs import describe
from api_plugin.web.web_input import check_json, parse_json

if TYPE_CHECKING:  # the app imports the URL map, which imports these views
    from api_plugin.web.app import ApiApp

#: How much of an oversized body is read and dropped so that its client gets the 413.
DRAIN_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class PlainText:
    """A text answer (the DAG source endpoint)."""

    text: str


class Context:
    """What a view may use: the app (its store and settings), the request, and where
    the API is mounted.

    The werkzeug ``Request`` is built only when a view reads it (query string, body):
    most endpoints need nothing but their path arguments.
    """

    __slots__ = ("_request", "app", "environ")

    def __init__(self, app: ApiApp, environ: dict[str, Any]) -> None:
        self.app = app
        self.environ = environ
        self._request: Request | None = None

    @property
    def store(self) -> Store:
        return self.app.store

    @property
    def url_base(self) -> str:
        """The host's own mount point, for the run URLs an answer holds."""
        return self.app.url_base(self.environ)

    @property
    def user(self) -> str | None:
        """Who the auth middleware let through (``REMOTE_USER``), if anyone."""
        return self.environ.get("REMOTE_USER") or None

    @property
    def request(self) -> Request:
        if self._request is None:
            self._request = Request(self.environ)
        return self._request

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object, whatever its Content-Type (as Airflow reads it),
        checked by ``web_input`` before any service sees it.

        The length and the stream are werkzeug's, as its ``Request`` gives them (a
        ``Content-Length`` bounds the stream; a chunked body is read as the server ends
        it), without building a ``Request`` for them: a trigger needs nothing else of one.
        """
        length = get_content_length(self.environ)
        stream = get_input_stream(self.environ)
        limit = self.app.max_body_bytes
        if length is not None and length > limit:
            raise self._too_large(stream)
        raw = _read(stream, limit + 1)
        if len(raw) > limit:
            raise self._too_large(stream)
        if not raw.strip():
            raise BadRequest("Request body must be a JSON object, got an empty body")
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise BadRequest(f"Request body must be a JSON object, not {type(body).__name__}")
        return body

    def _too_large(self, stream: Any) -> PayloadTooLarge:
        """The 413, after reading and dropping what the client is still sending (up to
        ``DRAIN_LIMIT``): a server that closes with unread bytes makes the kernel reset
        the connection, and the client then sees a broken pipe instead of the answer."""
        left = DRAIN_LIMIT
        try:
            while left > 0 and (chunk := stream.read(min(65536, left))):
                left -= len(chunk)
        except Exception:  # a broken body: the 413 stands, the server closes
            pass
        return PayloadTooLarge(f"Request body larger than {self.app.max_body_bytes} bytes")


def _read(stream: Any, size: int) -> bytes:
    """Up to ``size`` bytes of the body; a body the server cannot decode (a malformed
    chunked encoding, a connection cut mid-body) is a 400, never a 500."""
    try:
        return bytes(stream.read(size))
    except Exception as exc:  # the WSGI server's own parse errors have no common base
        reason = str(exc) or type(exc).__name__
        raise BadRequest(f"Request body could not be read: {reason}") from None


_TRIGGER_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "run_id": {"type": "string"},
        "conf": {"oneOf": [{"type": "object"}, {"type": "string"}]},
        "execution_date": {"type": "string", "format": "date-time"},
        "replace_microseconds": {"oneOf": [{"type": "boolean"},
                                           {"type": "string", "enum": ["true", "false"]}]},
    },
}
_POOL_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["name", "slots", "description"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "slots": {"type": "integer"},
        "description": {"type": "string"},
    },
}
_PAGING: tuple[dict[str, Any], ...] = (
    {"name": "state", "in": "query", "schema": {"type": "string"}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
)


def test(ctx: Context) -> Any:
    return services.health()


def info(ctx: Context) -> Any:
    return services.info(ctx.store)


def openapi(ctx: Context) -> Any:
    from api_plugin.web.openapi import openapi_document

    return openapi_document(ctx.request.script_root or "")


@describe(errors=("400", "404", "409", "413"), body=_TRIGGER_BODY)
def trigger_dag(ctx: Context, dag_id: str) -> Any:
    body = ctx.json_body()
    conf = body.get("conf")
    if isinstance(conf, str) and conf.strip():
        # A conf sent as a string of JSON is checked like the body it could have been.
        try:
            conf = json.loads(conf)
        except RecursionError:
            raise BadRequest("conf is nested too deeply") from None
        except ValueError:
            pass  # not JSON: the service answers that conf must be an object
        else:
            check_json(conf, "conf")
    return services.trigger_dag(
        ctx.store,
        dag_id,
        run_id=body.get("run_id"),
        conf=conf,
        execution_date=body.get("execution_date"),
        replace_microseconds=body.get("replace_microseconds"),
        user=ctx.user,
        allowed_run_id_pattern=ctx.app.allowed_run_id_pattern,
    )


@describe(errors=("400",), query=_PAGING)
def dag_runs(ctx: Context, dag_id: str) -> Any:
    args = ctx.request.args
    return services.stream_dag_runs(
        ctx.store, dag_id, state=args.get("state"), limit=args.get("limit"),
        offset=args.get("offset"), url_base=ctx.url_base,
    )


def dag_run_state(ctx: Context, dag_id: str, execution_date: str) -> Any:
    return services.get_dag_run_state(ctx.store, dag_id, execution_date)


def lineage(ctx: Context, dag_id: str, execution_date: str) -> Any:
    answer = services.get_lineage(ctx.store, dag_id, execution_date)
    # Airflow 2's own json_client returns the answer's "message" (which Airflow's server
    # never sends): it gets what its local_client returns, the lineage itself.
    return {**answer, "message": answer}


def task(ctx: Context, dag_id: str, task_id: str) -> Any:
    return services.get_task(ctx.store, dag_id, task_id)


def task_instance(ctx: Context, dag_id: str, execution_date: str, task_id: str) -> Any:
    return services.get_task_instance(ctx.store, dag_id, execution_date, task_id)


def set_paused(ctx: Context, dag_id: str, value: str) -> Any:
    return services.set_paused(ctx.store, dag_id, value)


def get_paused(ctx: Context, dag_id: str) -> Any:
    return services.get_paused(ctx.store, dag_id)


def latest_runs(ctx: Context) -> Any:
    return services.latest_runs(ctx.store, url_base=ctx.url_base)


def pools(ctx: Context) -> Any:
    return services.get_pools(ctx.store)


def pool(ctx: Context, name: str) -> Any:
    return services.get_pool(ctx.store, name)


@describe(errors=("400", "413"), body=_POOL_BODY)
def create_pool(ctx: Context) -> Any:
    body = ctx.json_body()
    missing = [field for field in ("name", "slots", "description") if field not in body]
    if missing:
        raise BadRequest(f"Missing required field(s): {', '.join(missing)}")
    return services.create_pool(ctx.store, body["name"], body["slots"], body["description"])


def delete_pool(ctx: Context, name: str) -> Any:
    return services.delete_pool(ctx.store, name)


@describe(errors=("404", "409"))
def delete_dag(ctx: Context, dag_id: str) -> Any:
    return services.delete_dag(ctx.store, dag_id)


@describe(errors=("404", "409"))
def delete_dag_by_json_client(ctx: Context, dag_id: str) -> Any:
    """Where Airflow 2's own json_client sends its delete_dag (no Airflow server answers
    it): the same operation, under its own operation id."""
    return delete_dag(ctx, dag_id)


def dag_code(ctx: Context, dag_id: str) -> Any:
    return PlainText(services.get_dag_code(ctx.store, dag_id))
