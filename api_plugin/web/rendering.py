"""JSON as every answer is written: compact UTF-8, dates in ISO 8601.

``Rendered`` lets a service hand back a result it keeps and serves many times (the
latest_runs copy) with its JSON encoded once, instead of once per request, and, when it
is long, gzipped once for the clients that accept it (``accepts_gzip``): latest_runs at
10,000 DAGs is about 2 MB of JSON and some 60 kB gzipped, which over a real network is
most of what such a request costs.
``Streamed`` lets one hand back a list too long to hold (a run list with no ``limit``) as
chunks of items, encoded and sent as they are fetched.
"""

from __future__ import annotations

import gzip
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


#: A kept answer at least this long is also offered gzipped; a shorter one gains too little.
GZIP_MIN_BYTES = 16 * 1024


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header admits gzip (RFC 9110: ``gzip``, ``x-gzip``
    or ``*`` with a quality above 0; gzip named with ``q=0`` is refused even when ``*``
    is admitted). No header: no."""
    if not accept_encoding:
        return False
    star = False
    for part in accept_encoding.split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding in ("gzip", "x-gzip"):
            return quality > 0
        if coding == "*":
            star = quality > 0
    return star


class Rendered(dict[str, Any]):
    """A result that is kept and served many times, with its JSON encoded once."""

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__(value)
        self.encoded = json.dumps(value, default=_json_default, separators=(",", ":")).encode()
        self._gzipped: bytes | None = None

    def gzipped(self) -> bytes | None:
        """The encoding gzipped (made by the first request that accepts it, then kept),
        or None when it is shorter than ``GZIP_MIN_BYTES``. Level 1: on JSON this
        repetitive it is some 30x smaller already, at a few ms for 2 MB."""
        if len(self.encoded) < GZIP_MIN_BYTES:
            return None
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.encoded, compresslevel=1, mtime=0)
        return self._gzipped


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
