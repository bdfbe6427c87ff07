"""Client input the API refuses before any query: the one gate of the web layer.

Every path argument, query parameter and JSON body passes through here. A NUL or a lone
surrogate is text no database stores faithfully (PostgreSQL refuses it with an error,
SQLite keeps a NUL that Airflow's own code then truncates), JSON nested deeper than
``MAX_JSON_DEPTH`` is more than any conf or pool needs and more than the stored value's
reader accepts back (``store.decode_budget``), and a body that cannot be read (a
malformed chunked encoding) is the client's fault. Each is a 400 naming the problem.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from api_plugin.errors import BadRequest

#: Containers nested inside one another, the body's own object included.
MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")


def bad_character(text: str) -> str | None:
    """What makes ``text`` unstorable (a NUL, a lone surrogate), or None when it is fine."""
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    if not text.isascii() and (found := _SURROGATE.search(text)):
        return f"a lone surrogate (\\u{ord(found.group()):04x})"
    return None


def check_text(text: str, where: str) -> None:
    """A 400 when ``text`` (named ``where`` in the error) cannot be stored."""
    problem = bad_character(text)
    if problem is not None:
        raise BadRequest(f"{where} contains {problem}, which is not allowed")


def check_json(value: Any, where: str = "Request body") -> None:
    """A 400 for JSON nested deeper than ``MAX_JSON_DEPTH`` or holding unstorable text
    (in keys or values). Iterative, so any depth is refused without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, f"A string in {where}")
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"{where} is nested too deeply (more than "
                                 f"{MAX_JSON_DEPTH} levels)")
            if isinstance(item, dict):
                for key, child in item.items():
                    check_text(str(key), f"A key in {where}")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def parse_json(raw: bytes | str, where: str = "Request body") -> Any:
    """JSON text as the API accepts it, or a 400 saying what is wrong with it."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"{where} is nested too deeply (more than "
                         f"{MAX_JSON_DEPTH} levels)") from None
    except ValueError as exc:  # includes invalid UTF-8
        if "integer string conversion" in str(exc):
            raise BadRequest(f"{where} holds a number with more than "
                             f"{sys.get_int_max_str_digits()} digits") from None
        raise BadRequest(f"{where} is not valid JSON: {exc}") from None
    check_json(value, where)
    return value


def check_route_arguments(arguments: Mapping[str, Any]) -> None:
    """Every path argument of a matched route is storable text."""
    for name, value in arguments.items():
        if isinstance(value, str):
            check_text(value, f"Path argument {name}")


def check_query(pairs: Iterable[tuple[str, str]]) -> None:
    """Every query parameter (name and value) is storable text."""
    for key, value in pairs:
        check_text(key, "A query parameter name")
        check_text(value, f"Query parameter {key}")
