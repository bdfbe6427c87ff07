"""JSON as every answer is written: compact UTF-8, dates in ISO 8601.

``Rendered`` lets a service hand back a result it keeps and serves many times (the
latest_runs copy) with its JSON encoded once, instead of once per request.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def render_json(value: Any) -> bytes:
    """Compact UTF-8 JSON (a ``Rendered`` value brings its own, made once)."""
    if isinstance(value, Rendered):
        return value.encoded
    return json.dumps(value, default=_json_default, separators=(",", ":")).encode()


class Rendered(dict[str, Any]):
    """A result that is kept and served many times, with its JSON encoded once."""

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__(value)
        self.encoded = json.dumps(value, default=_json_default, separators=(",", ":")).encode()
