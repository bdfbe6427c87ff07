"""The OpenAPI 3.1 document of the API, built from the URL map and what each view says
of itself (``operation_docs``), so the document cannot drift from the routes."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from api_plugin import __version__
from api_plugin.web.operation_docs import operation_doc
from api_plugin.web.routes import build_url_map

_ERROR = {"description": "Error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_PARAM = re.compile(r"<(?:[^<>:]+:)?(\w+)>")


@cache
def _document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in build_url_map().iter_rules():
        view = rule.endpoint
        doc = operation_doc(view)
        path = _PARAM.sub(r"{\1}", rule.rule)
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _PARAM.findall(rule.rule)]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation: dict[str, Any] = {
                "operationId": view.__name__,
                "parameters": params + list(doc.query),
                "responses": {"200": {"description": "Success"},
                              **{code: _ERROR for code in doc.errors}},
            }
            if doc.body is not None:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": doc.body}}}
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
