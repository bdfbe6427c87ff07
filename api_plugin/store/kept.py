"""Answers kept per process with the row each was made from.

Some answers are a function of one query's row alone (a task instance's: some thirty
columns decoded, each written as ``str()`` writes it, then encoded as JSON). A client
polling an instance that has not changed gets a row equal to the last one: the answer
made then is handed back, and only the query is paid for. A changed row makes a new
answer; nothing can be served stale, since the row is always read first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

#: How many answers a store keeps; the oldest made goes first.
MAX_KEPT_ANSWERS = 512
#: An answer longer than this (in encoded bytes) is not kept: the bound on memory is
#: then ``MAX_KEPT_ANSWERS`` times this, with its row.
MAX_KEPT_ANSWER_BYTES = 16 * 1024


class KeptAnswers:
    """A bounded map ``key -> (row, answer)``: ``get`` gives the answer only for an
    equal row. Reads take no lock (a dict lookup is atomic); a hit does not move its
    entry, so the order is that of making, and a hot entry is made again once it has
    aged out: cheap, and the bound holds."""

    def __init__(self, size: int = MAX_KEPT_ANSWERS) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, row: Any) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != row:
            return None
        return entry[1]

    def put(self, key: Hashable, row: Any, answer: Any) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = (row, answer)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
