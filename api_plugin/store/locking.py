"""One writer at a time on a SQLite file, queued by the kernel instead of by polling.

SQLite's busy handler sleeps and retries (up to 100 ms a nap) while another process holds
the write lock, which puts hundreds of milliseconds on the tail latency of concurrent
triggers. Writers therefore first take an exclusive ``flock`` on a lock file beside the
database: a waiting worker is woken the moment the holder releases it. Readers never
take it (WAL lets them run beside the writer).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext


class WriterLock:
    """An inter-process, inter-thread exclusive lock beside the SQLite file ``database``."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.path = database + ".writer-lock"
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def _descriptor(self) -> int:
        # flock belongs to the open file description, which a fork shares: each process
        # opens its own.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._thread_lock:
            fd = self._descriptor()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


def writer_lock_for(database_path: str | None) -> WriterLock | None:
    """The lock for a SQLite file, or None (memory databases, other servers)."""
    if not database_path or database_path == ":memory:" or database_path.startswith("file:"):
        return None
    return WriterLock(os.path.abspath(os.path.expanduser(database_path)))


def hold(lock: WriterLock | None) -> AbstractContextManager[None]:
    return lock.hold() if lock is not None else nullcontext()
