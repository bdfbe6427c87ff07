"""``dag_run.conf`` as Airflow stores it: a pickle, read without ever executing it.

Airflow's PickleType column would run whatever a crafted pickle asks for. Reading goes
through an unpickler that resolves no global at all, and the result is then checked to
hold only plain JSON-like values, within the size, node and depth budget of
``decode_budget``; anything else makes the value unreadable. Writing uses protocol 4,
which every Python that ever ran Airflow can read.
"""

from __future__ import annotations

import io
import logging
import pickle
from typing import Any

from api_plugin.store.decode_budget import VALUE_BUDGET, Budget, check_size, check_value

log = logging.getLogger(__name__)

WRITE_PROTOCOL = 4


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Refuses every class and function reference a pickle may name."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in conf")


class UnreadableConf(ValueError):
    """The stored conf is not a pickle of plain values."""


def dumps_conf(conf: Any) -> bytes:
    """Pickle a conf (a dict of JSON values) the way Airflow can read it back."""
    return pickle.dumps(conf, protocol=WRITE_PROTOCOL)


def loads_conf(data: bytes | None, budget: Budget = VALUE_BUDGET) -> Any:
    """The conf a stored pickle holds; raises UnreadableConf for anything but plain data
    within ``budget``."""
    if data is None:
        return None
    try:
        check_size(data, budget)
        value = _NoGlobalsUnpickler(io.BytesIO(bytes(data))).load()
        check_value(value, budget, plain_only=True)
    except Exception as exc:  # over budget, or a malformed pickle (never executed)
        raise UnreadableConf(str(exc)) from None
    return value
