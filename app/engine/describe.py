"""Human descriptions of schedules, for lists and the preview panel."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from cron_descriptor import ExpressionDescriptor, Options
from cronsim import CronSim

from .cron import compile_cron
from .errors import normalize_type
from .interval import describe_interval, parse_interval


def describe(schedule_type: str, value: str) -> str:
    """Describe a schedule, e.g. "Every 15 minutes"; raises ScheduleError if invalid."""
    kind = normalize_type(schedule_type)
    if kind == "interval":
        return describe_interval(parse_interval(value, min_seconds=1))
    return _describe_cron(compile_cron(value, "UTC")[0].canonical)


@lru_cache(maxsize=4096)
def _describe_cron(canonical: str) -> str:
    # A fixed locale: cron_descriptor otherwise follows the server's locale
    # (and warns when there is none).
    options = Options(use_24hour_time_format=True, verbose=False, locale_code="en_US")
    try:
        # cron_descriptor ships no type information: its description is a str.
        description: str = ExpressionDescriptor(canonical, options).get_description()
        return description
    except Exception:
        pass
    try:
        return CronSim(canonical, datetime(2000, 1, 1, tzinfo=UTC)).explain()
    except Exception:
        return canonical
