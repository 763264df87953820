"""The schedule engine: pure time math, no database, no app imports.

Parses and validates cron and interval schedules, computes their slots
(DST-correct, Debian cron semantics via cronsim) and describes them.
"""

from .describe import describe
from .errors import SCHEDULE_TYPES, ScheduleError
from .interval import parse_interval
from .schedule import Preview, Schedule, parse_schedule, preview
from .timezones import all_timezones, validate_timezone

__all__ = [
    "SCHEDULE_TYPES",
    "Preview",
    "Schedule",
    "ScheduleError",
    "all_timezones",
    "describe",
    "parse_interval",
    "parse_schedule",
    "preview",
    "validate_timezone",
]
