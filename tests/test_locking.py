"""``store/locking.py``: the SQLite writer lock is one ``flock`` beside the database file,
exclusive between processes (a forked child opens its own, never sharing the parent's)
and between threads, and absent where there is no file to put it beside."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from api_plugin.store.locking import WriterLock, hold, writer_lock_for


def _try_flock(path: str) -> bool:
    """Whether a new open file description of ``path`` gets the lock without waiting."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the lock, if taken
    return True


@pytest.mark.parametrize("database", [None, "", ":memory:", "file:x?mode=memory&cache=shared"])
def test_no_lock_without_a_file(database: str | None) -> None:
    assert writer_lock_for(database) is None
    with hold(None):  # a no-op stands in
        pass


def test_the_lock_file_sits_beside_the_database(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lock = writer_lock_for("airflow.db")
    assert lock is not None
    assert lock.database == str(tmp_path / "airflow.db")
    assert lock.path == str(tmp_path / "airflow.db") + ".writer-lock"
    home = writer_lock_for("~/x.db")
    assert home is not None and home.database == os.path.expanduser("~/x.db")


def test_held_means_no_one_else_gets_it(tmp_path: Path) -> None:
    lock = WriterLock(str(tmp_path / "a.db"))
    with lock.hold():
        assert not _try_flock(lock.path)
    assert _try_flock(lock.path)
    with lock.hold():  # taken again after release, on the same descriptor
        assert not _try_flock(lock.path)


def test_a_forked_child_does_not_share_the_parents_lock(tmp_path: Path) -> None:
    """flock belongs to the open file description, which a fork shares: a child using
    the inherited descriptor would be let in while the parent holds the lock."""
    lock = WriterLock(str(tmp_path / "a.db"))
    with lock.hold():
        parent_fd = lock._descriptor()
        pid = os.fork()
        if pid == 0:  # the child: its own descriptor, refused while the parent holds
            code = 1
            try:
                mine = lock._descriptor()
                try:
                    fcntl.flock(mine, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    code = 0 if mine != parent_fd else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_threads_take_turns(tmp_path: Path) -> None:
    """Threads of one process share the descriptor, so the lock's own thread lock keeps
    them apart: every section runs whole before the next begins."""
    lock = WriterLock(str(tmp_path / "a.db"))
    trace: list[tuple[int, str]] = []
    start = threading.Barrier(8)

    def section(n: int) -> None:
        start.wait()
        for _ in range(20):
            with lock.hold():
                trace.append((n, "in"))
                assert not _try_flock(lock.path)
                trace.append((n, "out"))

    threads = [threading.Thread(target=section, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(trace) == 8 * 20 * 2
    pairs = list(zip(trace[::2], trace[1::2], strict=True))
    assert all(a[0] == b[0] and (a[1], b[1]) == ("in", "out") for a, b in pairs)
