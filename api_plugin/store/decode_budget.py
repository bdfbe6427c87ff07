"""A budget for every value decoded from the database: size, nodes, depth.

Stored values come from whoever could write a row: a DAG author plants an
``executor_config`` or an XCom through Airflow itself. A 200-byte pickle of shared
references (x_k = [x_{k-1}, x_{k-1}], 30 levels) unpickles at once but is a billion
nodes to walk or print; a 400 kB pickled int cannot even be printed. So each decoder
checks its input's size before decoding, and the decoded value is measured against a
node, depth and text budget, a shared object counted wherever it occurs (as printing it
would visit it) but walked only once; past any limit the value is unreadable, rendered
as other refused values are.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

#: Python prints ints of up to 4300 digits by default; 14 000 bits stay under that.
MAX_INT_BITS = 14_000


class OverBudget(ValueError):
    """A stored value larger, deeper or more repetitive than its reader accepts."""


@dataclass(frozen=True)
class Budget:
    """Limits for one decoded value; the defaults fit a conf, an executor_config or an
    XCom, and are far above what Airflow itself writes there."""

    max_bytes: int = 4 * 1024 * 1024  #: encoded size (before decoding)
    max_nodes: int = 200_000  #: containers and scalars visited, shared ones each time
    max_depth: int = 64  #: containers nested inside one another
    max_text: int = 8 * 1024 * 1024  #: characters of every string visited, in total


#: Values: dag_run.conf, task_instance.executor_config, lineage XComs, next_kwargs.
VALUE_BUDGET = Budget()
#: A serialized DAG document: larger and a little deeper than a value.
DOCUMENT_BUDGET = Budget(max_bytes=64 * 1024 * 1024, max_nodes=5_000_000, max_depth=128,
                         max_text=64 * 1024 * 1024)


def check_size(data: bytes | bytearray | str, budget: Budget = VALUE_BUDGET) -> None:
    """OverBudget when the encoded value is over the budget's size."""
    if len(data) > budget.max_bytes:
        raise OverBudget(f"{len(data)} bytes stored, more than {budget.max_bytes}")


def check_value(value: Any, budget: Budget = VALUE_BUDGET, *, plain_only: bool = False) -> None:
    """Measure ``value`` within ``budget`` (OverBudget past it). With ``plain_only``, only
    dict, list, tuple and the JSON scalars are allowed (OverBudget naming the type).

    Shared containers are counted at every place they occur, as printing would visit
    them, but measured once (by identity): the work stays proportional to the distinct
    objects, so the 30-level shared-reference pickle is refused after 30 steps, not 2**30.
    """
    _nodes, text, _height = _Measure(budget, plain_only).size(value, 0)
    if text > budget.max_text:  # a container checks as it goes; a lone string here
        raise OverBudget(f"more than {budget.max_text} characters of text")


class _Measure:
    """One measurement: sizes of the containers seen so far, by identity."""

    def __init__(self, budget: Budget, plain_only: bool) -> None:
        self.budget = budget
        self.plain_only = plain_only
        self.seen: dict[int, tuple[int, int, int]] = {}

    def size(self, item: Any, depth: int) -> tuple[int, int, int]:
        """(values, characters of text, containers nested) in ``item`` at ``depth``,
        shared parts counted each time they occur."""
        if isinstance(item, str):
            return 1, len(item), 0
        if isinstance(item, bool) or item is None or isinstance(item, float):
            return 1, 0, 0
        if isinstance(item, int):
            if item.bit_length() > MAX_INT_BITS:
                raise OverBudget("a number too long to show")
            return 1, 0, 0
        if not isinstance(item, dict | list | tuple | set | frozenset):
            if self.plain_only:
                raise OverBudget(f"{type(item).__name__} is not allowed")
            return 1, 0, 0
        if self.plain_only and isinstance(item, set | frozenset):
            raise OverBudget(f"{type(item).__name__} is not allowed")
        known = self.seen.get(id(item))
        if known is None:
            if depth >= self.budget.max_depth:
                raise OverBudget(f"nested more than {self.budget.max_depth} levels")
            known = self.seen[id(item)] = self._walk(item, depth)
        if depth + known[2] > self.budget.max_depth:  # a shared part met deeper down
            raise OverBudget(f"nested more than {self.budget.max_depth} levels")
        return known

    def _walk(self, item: Any, depth: int) -> tuple[int, int, int]:
        nodes, text, height = 1, 0, 1
        children = (x for pair in item.items() for x in pair) if isinstance(item, dict) else item
        for child in children:
            child_nodes, child_text, child_height = self.size(child, depth + 1)
            nodes += child_nodes
            text += child_text
            height = max(height, child_height + 1)
            if nodes > self.budget.max_nodes:
                raise OverBudget(f"more than {self.budget.max_nodes} values")
            if text > self.budget.max_text:
                raise OverBudget(f"more than {self.budget.max_text} characters of text")
        return nodes, text, height


def loads_json(data: bytes | bytearray | str, budget: Budget = VALUE_BUDGET, **kwargs: Any) -> Any:
    """``json.loads`` within ``budget``: OverBudget (a ValueError) for what exceeds it."""
    check_size(data, budget)
    try:
        value = json.loads(data, **kwargs)
    except RecursionError:
        raise OverBudget(f"nested more than {budget.max_depth} levels") from None
    check_value(value, budget)
    return value


def decompress(data: bytes, budget: Budget = DOCUMENT_BUDGET) -> bytes:
    """zlib data inflated to at most the budget's size (OverBudget beyond: a bomb)."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, budget.max_bytes)
    if inflater.unconsumed_tail:
        raise OverBudget(f"more than {budget.max_bytes} bytes once decompressed")
    return out
