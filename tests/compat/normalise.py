"""How two answers are made comparable: the documented normalisation of the compat suite.

Only three things are rewritten, on both sides alike:

- *Timestamps of the moment*: any date-time inside a value that lies within an hour of
  the test run (a run's ``start_date`` or ``queued_at``, a defaulted execution date, and
  the ``manual__<date>`` run_id made from it, the same date form-encoded inside a
  ``dag_run_url``) becomes ``<now>``; the two servers answer a few milliseconds apart.
- *Memory addresses* (``<... object at 0x7f...>``): Airflow prints them, the plugin never
  does (docs/differences.rst, item 5), so `` at 0x...`` is removed.
- *Set order*: ``str()`` of a set of task ids (``{'left', 'right'}``) is ordered by the
  process's string hash seed, different in every Airflow process; the plugin sorts
  (differences item 5: no process-local repr), and the Airflow side's elements are sorted too.

Row ids are not rewritten: both databases are copies of one, and both servers receive
the same requests in the same order, so ids must agree.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2})?")
_ENCODED_STAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}\+\d{2}%3A\d{2}%3A\d{2}(?:\.\d+)?(?:%2B\d{2}%3A\d{2})?")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")
_SET_OF_STRINGS = re.compile(r"\{'[^{}]*'\}")


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: Any

    @property
    def is_json(self) -> bool:
        return self.content_type.split(";")[0].strip() == "application/json"

    @classmethod
    def parse(cls, status: int, content_type: str, payload: bytes, started: datetime) -> Answer:
        text = payload.decode("utf-8", "replace")
        body: Any = text
        if content_type.startswith("application/json"):
            with contextlib.suppress(ValueError):
                body = json.loads(text)
        return cls(status, content_type, normalise(body, started))


def _stamp(match: re.Match[str], started: datetime) -> str:
    text = match.group(0).replace(" ", "T")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return match.group(0)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return "<now>" if abs(when - started) < timedelta(hours=1) else match.group(0)


def _encoded_stamp(match: re.Match[str], started: datetime) -> str:
    decoded = re.match(_STAMP, unquote_plus(match.group(0)))
    return _stamp(decoded, started) if decoded else match.group(0)


def _sorted_set(match: re.Match[str]) -> str:
    items = ast.literal_eval(match.group(0))
    return "{" + ", ".join(sorted(map(repr, items))) + "}"


def normalise(value: Any, started: datetime) -> Any:
    if isinstance(value, dict):
        return {key: normalise(item, started) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise(item, started) for item in value]
    if isinstance(value, str):
        value = _ADDRESS.sub("", value)
        if _SET_OF_STRINGS.fullmatch(value):
            value = _sorted_set(_SET_OF_STRINGS.fullmatch(value))  # type: ignore[arg-type]
        value = _ENCODED_STAMP.sub(lambda m: _encoded_stamp(m, started), value)
        return _STAMP.sub(lambda m: _stamp(m, started), value)
    return value
