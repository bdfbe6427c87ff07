"""``dag_run.conf`` as Airflow stores it: a pickle, read without ever executing it.

Airflow's PickleType column would run whatever a crafted pickle asks for. Reading goes
through an unpickler that resolves no global at all, and the result is then checked to
hold only plain JSON-like values; anything else makes the conf unreadable (``None``).
Writing uses protocol 4, which every Python that ever ran Airflow can read.
"""

from __future__ import annotations

import io
import logging
import pickle
from typing import Any

log = logging.getLogger(__name__)

WRITE_PROTOCOL = 4
MAX_DEPTH = 64
_SCALARS = (str, int, float, bool, type(None))


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Refuses every class and function reference a pickle may name."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in conf")


class UnreadableConf(ValueError):
    """The stored conf is not a pickle of plain values."""


def dumps_conf(conf: Any) -> bytes:
    """Pickle a conf (a dict of JSON values) the way Airflow can read it back."""
    return pickle.dumps(conf, protocol=WRITE_PROTOCOL)


def loads_conf(data: bytes | None) -> Any:
    """The conf a stored pickle holds; raises UnreadableConf for anything but plain data."""
    if data is None:
        return None
    try:
        value = _NoGlobalsUnpickler(io.BytesIO(bytes(data))).load()
    except Exception as exc:  # any malformed pickle, by construction never executed
        raise UnreadableConf(str(exc)) from None
    _check_plain(value, 0)
    return value


def _check_plain(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise UnreadableConf("conf is nested too deeply")
    if isinstance(value, _SCALARS):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, depth + 1)
            _check_plain(item, depth + 1)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_plain(item, depth + 1)
        return
    raise UnreadableConf(f"{type(value).__name__} is not allowed in conf")
