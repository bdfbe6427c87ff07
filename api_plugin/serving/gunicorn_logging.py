"""gunicorn's error log, with the real cause of a worker killed after a timeout.

When a request runs longer than the worker timeout, gunicorn's arbiter logs ``WORKER
TIMEOUT``, sends the worker SIGABRT and, if the worker is still there on its next round
(stuck in C code, which defers Python's signal handlers), SIGKILL; the reaping then logs
"was sent SIGKILL! Perhaps out of memory?", which sends operators hunting for a memory
problem that is not there. This logger remembers which workers timed out and says so
instead; a SIGKILL that gunicorn did not send keeps a neutral wording.

    gunicorn --logger-class api_plugin.serving.gunicorn_logging.TimeoutAwareLogger ...
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

_OOM_HINT = " Perhaps out of memory?"
_TIMEOUT = "WORKER TIMEOUT"


class TimeoutAwareLogger(Logger):  # type: ignore[misc]
    """gunicorn's Logger, with worker timeouts and their SIGKILL told as what they are."""

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self._timed_out: set[Any] = set()

    def critical(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if msg.startswith(_TIMEOUT) and args:
            self._timed_out.add(args[0])
            msg = ("WORKER TIMEOUT (pid:%s): a request ran longer than the worker timeout "
                   "(%s s, [webserver] worker_timeout); stopping the worker with SIGABRT")
            args = (args[0], self.cfg.timeout)
        super().critical(msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.endswith(_OOM_HINT) and args:
            pid = args[0]
            if pid in self._timed_out:
                self._timed_out.discard(pid)
                msg = ("Worker (pid:%s) was killed with SIGKILL: its request ran longer than "
                       "the worker timeout (%s s) and it did not stop on SIGABRT (stuck "
                       "outside Python code, e.g. in a database call)")
                args = (pid, self.cfg.timeout)
            else:
                msg = (msg[: -len(_OOM_HINT)] + " It was not sent by gunicorn (the "
                       "kernel's out-of-memory killer, or an operator).")
        super().error(msg, *args, **kwargs)
