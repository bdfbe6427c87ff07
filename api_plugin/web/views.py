"""Thin views: read the request, call the service, hand back what to render.

A view returns a JSON-ready value (rendered with status 200) or a ``PlainText``; every
failure is an ``ApiError`` raised by the view or the service and rendered by the app.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from api_plugin.errors import BadRequest, PayloadTooLarge
from api_plugin.services import ApiService
from api_plugin.web.web_input import check_json, parse_json

#: How much of an oversized body is read and dropped so that its client gets the 413.
DRAIN_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True)
class PlainText:
    """A text answer (the DAG source endpoint)."""

    text: str


class Context:
    """What a view may use: the service, the request, and where the API is mounted.

    The werkzeug ``Request`` is built only when a view reads it (query string, body):
    most endpoints need nothing but their path arguments.
    """

    __slots__ = ("_request", "environ", "max_body_bytes", "service", "url_base")

    def __init__(self, service: ApiService, environ: dict[str, Any], max_body_bytes: int,
                 url_base: str) -> None:
        self.service = service
        self.environ = environ
        self.max_body_bytes = max_body_bytes
        self.url_base = url_base
        self._request: Request | None = None

    @property
    def request(self) -> Request:
        if self._request is None:
            self._request = Request(self.environ)
        return self._request

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object, whatever its Content-Type (as Airflow reads it),
        checked by ``web_input`` before any service sees it."""
        length = self.request.content_length
        stream = self.request.stream
        if length is not None and length > self.max_body_bytes:
            raise self._too_large(stream)
        raw = _read(stream, self.max_body_bytes + 1)
        if len(raw) > self.max_body_bytes:
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
        return PayloadTooLarge(f"Request body larger than {self.max_body_bytes} bytes")


def _read(stream: Any, size: int) -> bytes:
    """Up to ``size`` bytes of the body; a body the server cannot decode (a malformed
    chunked encoding, a connection cut mid-body) is a 400, never a 500."""
    try:
        return bytes(stream.read(size))
    except Exception as exc:  # the WSGI server's own parse errors have no common base
        reason = str(exc) or type(exc).__name__
        raise BadRequest(f"Request body could not be read: {reason}") from None


View = Callable[..., Any]


def test(ctx: Context) -> Any:
    return ctx.service.test()


def info(ctx: Context) -> Any:
    return ctx.service.info()


def openapi(ctx: Context) -> Any:
    from api_plugin.web.openapi import openapi_document

    return openapi_document(ctx.request.script_root or "")


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
    return ctx.service.trigger_dag(
        dag_id,
        run_id=body.get("run_id"),
        conf=conf,
        execution_date=body.get("execution_date"),
        replace_microseconds=body.get("replace_microseconds"),
        user=ctx.environ.get("REMOTE_USER") or None,
    )


def dag_runs(ctx: Context, dag_id: str) -> Any:
    args = ctx.request.args
    return ctx.service.stream_dag_runs(
        dag_id, state=args.get("state"), limit=args.get("limit"), offset=args.get("offset"),
        url_base=ctx.url_base,
    )


def dag_run_state(ctx: Context, dag_id: str, execution_date: str) -> Any:
    return ctx.service.get_dag_run_state(dag_id, execution_date)


def lineage(ctx: Context, dag_id: str, execution_date: str) -> Any:
    answer = ctx.service.get_lineage(dag_id, execution_date)
    # Airflow 2's own json_client returns the answer's "message" (which Airflow's server
    # never sends): it gets what its local_client returns, the lineage itself.
    return {**answer, "message": answer}


def task(ctx: Context, dag_id: str, task_id: str) -> Any:
    return ctx.service.get_task(dag_id, task_id)


def task_instance(ctx: Context, dag_id: str, execution_date: str, task_id: str) -> Any:
    return ctx.service.get_task_instance(dag_id, execution_date, task_id)


def set_paused(ctx: Context, dag_id: str, value: str) -> Any:
    return ctx.service.set_paused(dag_id, value)


def get_paused(ctx: Context, dag_id: str) -> Any:
    return ctx.service.get_paused(dag_id)


def latest_runs(ctx: Context) -> Any:
    return ctx.service.latest_runs(url_base=ctx.url_base)


def pools(ctx: Context) -> Any:
    return ctx.service.get_pools()


def pool(ctx: Context, name: str) -> Any:
    return ctx.service.get_pool(name)


def create_pool(ctx: Context) -> Any:
    body = ctx.json_body()
    missing = [field for field in ("name", "slots", "description") if field not in body]
    if missing:
        raise BadRequest(f"Missing required field(s): {', '.join(missing)}")
    return ctx.service.create_pool(body["name"], body["slots"], body["description"])


def delete_pool(ctx: Context, name: str) -> Any:
    return ctx.service.delete_pool(name)


def delete_dag(ctx: Context, dag_id: str) -> Any:
    return ctx.service.delete_dag(dag_id)


def dag_code(ctx: Context, dag_id: str) -> Any:
    return PlainText(ctx.service.get_dag_code(dag_id))


VIEWS: dict[str, View] = {
    "test": test,
    "info": info,
    "openapi": openapi,
    "trigger_dag": trigger_dag,
    "dag_runs": dag_runs,
    "dag_run_state": dag_run_state,
    "task": task,
    "lineage": lineage,
    "task_instance": task_instance,
    "set_paused": set_paused,
    "get_paused": get_paused,
    "latest_runs": latest_runs,
    "pools": pools,
    "pool": pool,
    "create_pool": create_pool,
    "delete_pool": delete_pool,
    "delete_dag": delete_dag,
    "delete_dag_by_json_client": delete_dag,
    "dag_code": dag_code,
}
