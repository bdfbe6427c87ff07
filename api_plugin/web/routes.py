"""The URL map: one readable table of path, methods and view name.

Paths are relative to the mount prefix. Dates stay plain path segments and are parsed in
the views, so a bad date is a 400 and never a routing 404.
"""

from __future__ import annotations

from werkzeug.routing import Map, Rule

ROUTES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("/test", ("GET",), "test"),
    ("/info", ("GET",), "info"),
    ("/openapi.json", ("GET",), "openapi"),
    ("/dags/<dag_id>", ("DELETE",), "delete_dag"),
    # Where Airflow 2's own json_client sends its delete_dag (no Airflow server answers it).
    ("/dags/<dag_id>/delete_dag", ("DELETE",), "delete_dag_by_json_client"),
    ("/dags/<dag_id>/code", ("GET",), "dag_code"),
    ("/dags/<dag_id>/dag_runs", ("POST",), "trigger_dag"),
    ("/dags/<dag_id>/dag_runs", ("GET",), "dag_runs"),
    ("/dags/<dag_id>/dag_runs/<execution_date>", ("GET",), "dag_run_state"),
    ("/dags/<dag_id>/dag_runs/<execution_date>/tasks/<task_id>", ("GET",), "task_instance"),
    ("/dags/<dag_id>/tasks/<task_id>", ("GET",), "task"),
    ("/dags/<dag_id>/paused/<value>", ("GET",), "set_paused"),
    ("/dags/<dag_id>/paused", ("GET",), "get_paused"),
    ("/latest_runs", ("GET",), "latest_runs"),
    ("/lineage/<dag_id>/<execution_date>", ("GET",), "lineage"),
    ("/pools", ("GET",), "pools"),
    ("/pools", ("POST",), "create_pool"),
    ("/pools/<name>", ("GET",), "pool"),
    ("/pools/<name>", ("DELETE",), "delete_pool"),
)


def build_url_map() -> Map:
    """The werkzeug Map of ``ROUTES``; no redirects, so every answer stays JSON."""
    return Map(
        [Rule(path, methods=list(methods), endpoint=view) for path, methods, view in ROUTES],
        strict_slashes=False,
        merge_slashes=False,
    )
