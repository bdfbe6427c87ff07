"""Answers kept per process with the row each was made from.

Some answers are a function of one query's row alone (a task instance's: some thirty
columns decoded, each written as ``str()`` writes it, then encoded as JSON). A client
polling an instance that has not changed gets a row equal to the last one: the answer
made then is handed back, and only the query is paid for. A changed row makes a new
answer; nothing can be served stale, since the row is always read first.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from api_plugin.bounded import BoundedMap

#: How many answers a store keeps; the oldest made goes first.
MAX_KEPT_ANSWERS = 512
#: An answer longer than this (in encoded bytes) is not kept: the bound on memory is
#: then ``MAX_KEPT_ANSWERS`` times this, with its row.
MAX_KEPT_ANSWER_BYTES = 16 * 1024


class KeptAnswers:
    """``key -> (row, answer)``, bounded (``BoundedMap``): ``get`` gives the answer
    only for an equal row."""

    def __init__(self, size: int = MAX_KEPT_ANSWERS) -> None:
        self._entries: BoundedMap[tuple[Any, Any]] = BoundedMap(size)

    def get(self, key: Hashable, row: Any) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != row:
            return None
        return entry[1]

    def put(self, key: Hashable, row: Any, answer: Any, length: int) -> None:
        """Keep ``answer``, made from ``row``, unless its encoding (``length`` bytes)
        is over ``MAX_KEPT_ANSWER_BYTES``."""
        if length <= MAX_KEPT_ANSWER_BYTES:
            self._entries.put(key, (row, answer))

    def __len__(self) -> int:
        return len(self._entries)
