"""A per-process budget of failed logins per client address.

Each failed Basic check costs one deliberately slow hash. Without a budget, a client
guessing passwords as fast as it can keeps every worker busy hashing and everyone else
waits for a free worker. Past ``limit`` failures within ``window`` seconds an address is
answered 429 at once, without hashing, until its oldest failure leaves the window.
Successful checks are never throttled (and are usually served from the password cache
before the throttle is consulted).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_ADDRESSES = 4096


class FailureThrottle:
    """Sliding-window failure counts per key (the client address), LRU-bounded."""

    def __init__(self, limit: int, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it is within its budget."""
        if self.limit <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            failures = self._failures.get(key)
            if failures is None:
                return 0.0
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) < self.limit:
                return 0.0
            return failures[0] + self.window - now

    def record(self, key: str) -> None:
        """Count one failed check for ``key``."""
        if self.limit <= 0:
            return
        with self._lock:
            failures = self._failures.get(key)
            if failures is None:
                failures = self._failures[key] = deque(maxlen=self.limit)
            failures.append(self.clock())
            self._failures.move_to_end(key)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)
