"""The OpenAPI 3.1 document of the API, built from the URL map so the two cannot drift."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from api_plugin import __version__
from api_plugin.web.routes import ROUTES

_ERROR = {"description": "Error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_PARAM = re.compile(r"<(\w+)>")

_BODIES: dict[str, dict[str, Any]] = {
    "trigger_dag": {
        "type": "object",
        "properties": {
            "run_id": {"type": "string"},
            "conf": {"oneOf": [{"type": "object"}, {"type": "string"}]},
            "execution_date": {"type": "string", "format": "date-time"},
            "replace_microseconds": {"oneOf": [{"type": "boolean"},
                                               {"type": "string", "enum": ["true", "false"]}]},
        },
    },
    "create_pool": {
        "type": "object",
        "required": ["name", "slots", "description"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "slots": {"type": "integer"},
            "description": {"type": "string"},
        },
    },
}
_QUERY: dict[str, list[dict[str, Any]]] = {
    "dag_runs": [
        {"name": "state", "in": "query", "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    ],
}
_STATUSES: dict[str, tuple[str, ...]] = {
    "trigger_dag": ("400", "404", "409", "413"),
    "dag_runs": ("400",),
    "create_pool": ("400", "413"),
    "delete_pool": ("400", "404"),
    "delete_dag": ("404", "409"),
    "delete_dag_by_json_client": ("404", "409"),
}


@cache
def _document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule, methods, view in ROUTES:
        path = _PARAM.sub(r"{\1}", rule)
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _PARAM.findall(rule)]
        for method in methods:
            operation: dict[str, Any] = {
                "operationId": view,
                "parameters": params + _QUERY.get(view, []),
                "responses": {"200": {"description": "Success"},
                              **{code: _ERROR for code in _STATUSES.get(view, ("400", "404"))}},
            }
            if view in _BODIES:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": _BODIES[view]}}}
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "api_plugin: Airflow experimental REST API", "version": __version__},
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "string"}}}}},
    }


def openapi_document(server_url: str = "") -> dict[str, Any]:
    """The document, with ``servers`` pointing at where the API is mounted."""
    return {**_document(), "servers": [{"url": server_url or "/"}]}
