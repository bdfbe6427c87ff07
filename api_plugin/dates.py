"""ISO 8601 dates in and out, as the experimental API speaks them.

In: ``2016-11-16T11:34:15``, an optional fraction, an optional offset (``Z``, ``+02:00``,
``+0200``), where a form-encoding client may have turned the offset's ``+`` into a space.
No offset means UTC. Out: ``datetime.isoformat()`` of an aware value, which writes the
fraction only when it is non-zero.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from api_plugin.errors import BadRequest

_SPACED_OFFSET = re.compile(
    r"^(?P<stamp>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r" (?P<offset>\d{2}(?::?\d{2})?)$"
)


def bad_date_error(value: object) -> BadRequest:
    """The reference's text for a date it could not read."""
    return BadRequest(
        f"Given execution date, {value}, could not be identified as a date. "
        "Example date format: 2015-11-16T14:34:15+00:00"
    )


def parse_datetime(value: object) -> datetime:
    """An aware datetime from an ISO 8601 string, or the reference's 400 error.

    The returned value keeps the client's offset (responses echo it); store it with
    ``to_utc``.
    """
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise bad_date_error(value)
    text = value.strip()
    spaced = _SPACED_OFFSET.match(text)
    if spaced:
        text = f"{spaced['stamp']}+{spaced['offset']}"
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed.astimezone(UTC)  # an offset that moves it out of range must fail here
    except (ValueError, OverflowError):
        raise bad_date_error(value) from None
    return parsed


def to_utc(value: datetime) -> datetime:
    """The same instant in UTC (naive input is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def isoformat(value: datetime | None) -> str:
    """``2021-01-02T00:00:00+00:00`` for a value, ``""`` for None."""
    if value is None:
        return ""
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)
