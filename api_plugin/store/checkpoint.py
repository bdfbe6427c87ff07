"""SQLite WAL checkpoints moved off the request path.

In WAL mode SQLite copies the log back into the database file (a checkpoint, ending in an
fsync) inside whichever commit pushes the log past 1,000 pages. On the trigger path that
was one request in about forty-five taking ~15 ms instead of ~0.8 ms: the whole p99 of
a trigger benchmark. A daemon thread per process therefore checkpoints shortly after
this process's commits, with the GIL released while SQLite copies and syncs, so the log
stays far below the automatic threshold at any ordinary write rate. The automatic
checkpoint is left on as the backstop (short-lived CLI commands, a burst faster than the
thread, a host whose threads never run).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from urllib.parse import quote

log = logging.getLogger(__name__)

#: How long the thread lets commits gather before one checkpoint covers them all.
GATHER_SECONDS = 0.01


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` soon after each commit."""

    def __init__(self, path: str, gather_seconds: float = GATHER_SECONDS) -> None:
        self.path = path
        self.gather_seconds = gather_seconds
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._pid = 0
        #: Checkpoints done by this process's thread (read by tests to wait for one).
        self.completed = 0

    def committed(self) -> None:
        """Note a commit; the first in a process starts that process's thread (a
        thread does not survive a fork, so a gunicorn worker gets its own)."""
        if self._pid != os.getpid():
            self._start()
        self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._wake = threading.Event()
            thread = threading.Thread(target=self._run, args=(self._wake,),
                                      name="api_plugin-wal-checkpoint", daemon=True)
            thread.start()
            self._pid = os.getpid()

    def _run(self, wake: threading.Event) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            wake.wait()
            time.sleep(self.gather_seconds)  # let a burst of commits gather
            wake.clear()
            try:
                if conn is None:  # mode=rw: never create a file that has gone away
                    conn = sqlite3.connect(f"file:{quote(self.path)}?mode=rw", uri=True,
                                           isolation_level=None, check_same_thread=False)
                # PASSIVE: copies what no reader still needs, never waits on anyone.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.completed += 1
            except sqlite3.Error as exc:  # the next commit tries again
                log.debug("WAL checkpoint of %s failed: %s", self.path, exc)
                if conn is not None:
                    conn.close()
                conn = None
