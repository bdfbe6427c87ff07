"""JSON as every answer is written: compact UTF-8, dates in ISO 8601.

``Rendered`` lets a service hand back a result it keeps and serves many times (the
latest_runs copy) with its JSON encoded once, instead of once per request.
``Streamed`` lets one hand back a list too long to hold (a run list with no ``limit``) as
chunks of items, encoded and sent as they are fetched.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
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


class Streamed:
    """A JSON list produced in chunks (lists of items) by ``chunks``: its encoding,
    ``encode()``, is byte for byte ``render_json`` of the whole list, made a chunk at a
    time so that neither the rows nor the text are ever all in memory."""

    def __init__(self, chunks: Iterator[list[Any]]) -> None:
        self.chunks = chunks

    def encode(self) -> Generator[bytes, None, None]:
        """``[`` with the first chunk's items, then each next chunk's, then ``]``.

        Nothing is fetched before the first ``next()``; closing the generator closes
        ``chunks`` (and so gives back its database connection).
        """
        dumps = json.JSONEncoder(default=_json_default, separators=(",", ":")).encode
        opening = b"["
        try:
            for chunk in self.chunks:
                if chunk:
                    yield opening + ",".join(map(dumps, chunk)).encode()
                    opening = b","
            yield b"[]" if opening == b"[" else b"]"
        finally:
            close = getattr(self.chunks, "close", None)
            if close is not None:
                close()
