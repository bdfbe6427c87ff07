"""A map that keeps at most a given number of entries, for what a process keeps
between requests (route matches, answers): whatever keys clients send, its memory
stays bounded.

Reads take no lock (a dict lookup is atomic); writes do. A read does not move its
entry: the oldest written goes first, and a hot entry is written again once it has
aged out, which is cheap, while the bound always holds.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedMap(Generic[V]):
    """At most ``size`` entries, the oldest written dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[Hashable, V] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        return self._entries.get(key)

    def put(self, key: Hashable, value: V) -> None:
        """Keep ``value`` under ``key`` as the newest entry, dropping the oldest past
        ``size``."""
        with self._lock:
            self._entries.pop(key, None)
            while len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = value

    def pop(self, key: Hashable) -> None:
        """Forget ``key``'s entry, if there is one."""
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Hashable]:
        """The keys, oldest first."""
        return iter(list(self._entries))

    def __contains__(self, key: object) -> bool:
        return key in self._entries
