"""The URL map: one readable table of path, methods and the view that answers.

Each rule's endpoint is the view function itself, so a matched request goes straight to
its view, with no name to look up. Paths are relative to the mount prefix. Dates stay
plain path segments and are parsed in the services, so a bad date is a 400 and never a
routing 404.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Map, Rule

from api_plugin.web import views

View = Callable[..., Any]

ROUTES: tuple[tuple[str, tuple[str, ...], View], ...] = (
    ("/test", ("GET",), views.test),
    ("/info", ("GET",), views.info),
    ("/openapi.json", ("GET",), views.openapi),
    ("/dags/<dag_id>", ("DELETE",), views.delete_dag),
    ("/dags/<dag_id>/delete_dag", ("DELETE",), views.delete_dag_by_json_client),
    ("/dags/<dag_id>/code", ("GET",), views.dag_code),
    ("/dags/<dag_id>/dag_runs", ("POST",), views.trigger_dag),
    ("/dags/<dag_id>/dag_runs", ("GET",), views.dag_runs),
    ("/dags/<dag_id>/dag_runs/<execution_date>", ("GET",), views.dag_run_state),
    ("/dags/<dag_id>/dag_runs/<execution_date>/tasks/<task_id>", ("GET",), views.task_instance),
    ("/dags/<dag_id>/tasks/<task_id>", ("GET",), views.task),
    ("/dags/<dag_id>/paused/<value>", ("GET",), views.set_paused),
    ("/dags/<dag_id>/paused", ("GET",), views.get_paused),
    ("/latest_runs", ("GET",), views.latest_runs),
    ("/lineage/<dag_id>/<execution_date>", ("GET",), views.lineage),
    ("/pools", ("GET",), views.pools),
    ("/pools", ("POST",), views.create_pool),
    ("/pools/<name>", ("GET",), views.pool),
    ("/pools/<name>", ("DELETE",), views.delete_pool),
)


def build_url_map() -> Map:
    """The werkzeug Map of ``ROUTES``; no redirects, so every answer stays JSON."""
    return Map(
        [Rule(path, methods=list(methods), endpoint=view) for path, methods, view in ROUTES],
        strict_slashes=False,
        merge_slashes=False,
    )
