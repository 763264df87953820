"""The one exception the engine raises for bad input, and checks its parsers share."""

from __future__ import annotations

SCHEDULE_TYPES = ("cron", "interval")

# Long enough for any sensible cron list; short enough that a pasted essay
# never reaches the parsers (or an error message).
MAX_VALUE_LENGTH = 200


class ScheduleError(ValueError):
    """A validation error a person can read, tied to one form field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message

    def __repr__(self) -> str:
        return f"ScheduleError({self.field!r}, {self.message!r})"


def shown(text: str, limit: int = 40) -> str:
    """Quote user text for a message: escaped, and cut short if long."""
    if len(text) > limit:
        text = text[:limit] + "…"
    return repr(text)


def require_text(value: object, what: str) -> str:
    """Strip `value`, or raise if it is not text, empty or too long."""
    if not isinstance(value, str):
        raise ScheduleError("schedule_value", f"{what} must be text")
    text = value.strip()
    if not text:
        raise ScheduleError("schedule_value", f"{what} is required")
    if len(text) > MAX_VALUE_LENGTH:
        raise ScheduleError("schedule_value", "schedule is too long")
    return text


def normalize_type(schedule_type: object) -> str:
    kind = schedule_type.strip().lower() if isinstance(schedule_type, str) else ""
    if kind not in SCHEDULE_TYPES:
        raise ScheduleError("schedule_type", "schedule type must be 'cron' or 'interval'")
    return kind
