"""Which run ids a client may choose: Airflow's own rule, the same for every flavor that
has one (Airflow 2.6.3 and later, Airflow 3).

Airflow checks a run id against ``[scheduler] allowed_run_id_pattern`` (default
``^[A-Za-z0-9_.~:+-]+$``) or the pattern of the ids it generates itself, and refuses
anything else; its experimental API let that ``ValueError`` escape as a 500, so here it
is a 400 with Airflow's own text. Airflow 2 matches with RE2, where ``$`` ends the text
(Python's would also match before a final newline): patterns are translated accordingly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from api_plugin.errors import BadRequest

DEFAULT_ALLOWED_PATTERN = r"^[A-Za-z0-9_.~:+-]+$"
#: The ids Airflow 2.10 generates (``models/dagrun.py``'s RUN_ID_REGEX).
AIRFLOW2_GENERATED_PATTERN = (
    r"^(?:manual|scheduled|dataset_triggered)__(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00)$")
#: The ids Airflow 3.3 generates (datasets became assets).
AIRFLOW3_GENERATED_PATTERN = (
    r"^(?:manual|scheduled|asset_triggered)__(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00)$")


@dataclass(frozen=True)
class RunIdRule:
    """A configured ``allowed`` pattern and the pattern of the flavor's generated ids."""

    allowed: str = DEFAULT_ALLOWED_PATTERN
    generated: str = AIRFLOW2_GENERATED_PATTERN


def check_run_id(run_id: str, rule: RunIdRule) -> None:
    """A 400 with Airflow's text when ``run_id`` matches neither pattern of ``rule``."""
    if _compiled(rule.generated).match(run_id) or _compiled(rule.allowed).match(run_id):
        return
    raise BadRequest(f"The run_id provided '{run_id}' does not match the pattern "
                     f"'{rule.allowed}' or '{rule.generated}'")


def validate_pattern(pattern: str) -> str:
    """``pattern`` when it compiles; a ValueError naming the setting otherwise (at start-up)."""
    try:
        _compiled(pattern)
    except re.error as exc:
        raise ValueError(f"[scheduler] allowed_run_id_pattern {pattern!r} is not a valid "
                         f"regular expression: {exc}") from None
    return pattern


@lru_cache(maxsize=16)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(_re2_anchors(pattern))


def _re2_anchors(pattern: str) -> str:
    """``pattern`` with each bare ``$`` (outside classes, unescaped) as ``\\Z``: the end of
    the text, as RE2 reads ``$``."""
    out, in_class, escaped = [], False, False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)
