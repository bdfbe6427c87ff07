"""The data interval Airflow gives a manually triggered run, from the DAG's schedule.

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


#: Airflow 3 timetables whose manual run covers ``[run_after - interval, run_after]``.
_TRIGGER_TIMETABLES = frozenset({
    "airflow.timetables.trigger.CronTriggerTimetable",
    "airflow.timetables.trigger.MultipleCronTriggerTimetable",
    "airflow.timetables.trigger.DeltaTriggerTimetable",
})
_CRON_DATA_INTERVAL = "airflow.timetables.interval.CronDataIntervalTimetable"
_DELTA_DATA_INTERVAL = "airflow.timetables.interval.DeltaDataIntervalTimetable"


def timetable_data_interval(
    timetable: dict[str, Any] | None, run_after: datetime
) -> tuple[datetime, datetime]:
    """``infer_manual_data_interval(run_after)`` of a serialized Airflow 3 timetable.

    Trigger timetables (3.x's default for cron and delta schedules) cover the
    ``interval`` before the run, zero unless the DAG set one; the data-interval
    timetables cover the last complete period as in 2.x; every other timetable
    (none, once, assets, continuous...) the instant itself.
    """
    run_after = to_utc(run_after)
    kind = str((timetable or {}).get("__type") or "")
    var = (timetable or {}).get("__var")
    var = var if isinstance(var, dict) else {}
    if kind in _TRIGGER_TIMETABLES:
        return run_after - _seconds(var.get("interval")), run_after
    if kind == _CRON_DATA_INTERVAL and isinstance(var.get("expression"), str):
        return manual_data_interval(var["expression"], run_after,
                                    str(var.get("timezone") or "UTC"))
    if kind == _DELTA_DATA_INTERVAL:
        return run_after - _seconds(var.get("delta")), run_after
    return run_after, run_after


def _seconds(value: Any) -> timedelta:
    """A serialized interval: seconds as a number (or a relativedelta dict, taken as 0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    return timedelta(0)
