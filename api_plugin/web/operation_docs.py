"""What a view tells the OpenAPI document about its operation.

The view is the one place that knows what its operation reads (the JSON body, the query
parameters) and which error statuses it can answer, so it says so where it is written,
with ``@describe(...)``; the document (``openapi.py``) reads it from the view the URL map
points at. A view that says nothing takes path parameters only and answers 400 or 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

V = TypeVar("V", bound=Callable[..., Any])

_ATTRIBUTE = "__operation_doc__"


@dataclass(frozen=True)
class OperationDoc:
    """The parts of an OpenAPI operation the URL map cannot tell."""

    errors: tuple[str, ...] = ("400", "404")
    body: dict[str, Any] | None = None
    query: tuple[dict[str, Any], ...] = ()


def describe(*, errors: tuple[str, ...] = ("400", "404"), body: dict[str, Any] | None = None,
             query: tuple[dict[str, Any], ...] = ()) -> Callable[[V], V]:
    """Mark a view with its operation's error statuses, JSON body schema and query
    parameters (OpenAPI parameter objects)."""
    def mark(view: V) -> V:
        setattr(view, _ATTRIBUTE, OperationDoc(errors, body, query))
        return view

    return mark


def operation_doc(view: Callable[..., Any]) -> OperationDoc:
    """What ``view`` said of itself, or the defaults."""
    found = getattr(view, _ATTRIBUTE, None)
    return found if isinstance(found, OperationDoc) else OperationDoc()
