"""IANA timezone names, validated against the zone database."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, tzinfo
from functools import lru_cache

from .errors import ScheduleError, shown

# available_timezones() also lists files that are not zones a person picks:
# "localtime" is whatever the machine is set to, the others are tzdata internals.
_NOT_ZONES = {"localtime", "posixrules", "Factory"}


@lru_cache(maxsize=1)
def _names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones() - _NOT_ZONES))


@lru_cache(maxsize=1)
def _by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in _names()}


def all_timezones() -> list[str]:
    return list(_names())


def validate_timezone(name: str) -> zoneinfo.ZoneInfo:
    """Return the zone for an IANA name (case-insensitive), or raise ScheduleError."""
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError("timezone", "timezone is required")
    # Looking the name up in the known list first keeps odd input (paths,
    # NUL bytes, huge strings) away from ZoneInfo's file lookup.
    key = _by_lower_name().get(name.strip().lower()) if name.isascii() else None
    if key is None:
        raise ScheduleError("timezone", f"unknown timezone {shown(name.strip(), 60)}")
    return zoneinfo.ZoneInfo(key)


@lru_cache(maxsize=1024)
def zone_for_evaluation(name: str) -> tzinfo:
    """The tzinfo used to evaluate a schedule in `name` (assumed valid).

    cronsim skips its DST bookkeeping only for `datetime.timezone.utc`, so the
    common UTC case uses that object instead of ZoneInfo("UTC").
    """
    zone = validate_timezone(name)
    return UTC if zone.key == "UTC" else zone
