"""The data interval Airflow 2 gives a manually triggered run, from the DAG's schedule.

Airflow's timetables infer it: for a cron schedule, the last complete period before the
run (``[prev(end), end]`` where ``end`` is the run's time aligned down to the schedule);
for a timedelta schedule, ``[run - delta, run]``; for no schedule, the instant itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from api_plugin.dates import to_utc

CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def manual_data_interval(
    schedule: Any, run_after: datetime, timezone: str = "UTC"
) -> tuple[datetime, datetime]:
    """``(start, end)`` in UTC for a manual run at ``run_after``."""
    run_after = to_utc(run_after)
    if isinstance(schedule, timedelta):
        return run_after - schedule, run_after
    if isinstance(schedule, str):
        if timezone == "UTC" and schedule in _FAST_PRESETS:
            return _FAST_PRESETS[schedule](run_after)
        expression = CRON_PRESETS.get(schedule, schedule)
        if croniter.is_valid(expression):
            return _cron_interval(expression, run_after, timezone)
    return run_after, run_after


def _daily(at: datetime) -> tuple[datetime, datetime]:
    end = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=1), end


def _hourly(at: datetime) -> tuple[datetime, datetime]:
    end = at.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=1), end


def _weekly(at: datetime) -> tuple[datetime, datetime]:
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    end = midnight - timedelta(days=(midnight.weekday() + 1) % 7)  # back to Sunday
    return end - timedelta(days=7), end


#: Presets computed directly in UTC: the same answers as croniter, without its cost on
#: the trigger path (they are what most DAGs use).
_FAST_PRESETS = {"@daily": _daily, "@hourly": _hourly, "@weekly": _weekly}


def _cron_interval(
    expression: str, run_after: datetime, timezone: str
) -> tuple[datetime, datetime]:
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = run_after.astimezone(zone)
    prev = croniter(expression, local).get_prev(datetime)
    end = local if croniter(expression, prev).get_next(datetime) == local else prev
    start = croniter(expression, end).get_prev(datetime)
    return to_utc(start), to_utc(end)
