"""One validation for every path: API, UI, CLI, import and module registration.

``clean_job`` takes loosely typed input (JSON values from the API, strings from a form,
Python values from module code) and returns clean values or raises ``ValidationError``
with one message per field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app import engine
from app.domain.actors import SCOPES
from app.domain.errors import ValidationError
from app.domain.instants import accepted_instant
from app.domain.registry import TargetRegistry
from app.settings import Settings

# No "/": an id is one path segment in the UI and API URLs.
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@\-]{0,199}$")

#: Every field a caller may set, with its default for a new schedule.
DEFAULTS: dict[str, Any] = {
    "name": None,
    "description": "",
    "scope_type": "system",
    "tenant_id": None,
    "organization_id": None,
    "schedule_type": "cron",
    "schedule_value": None,
    "timezone": "UTC",
    "target_type": "command",
    "target_queue": None,
    "target_command": None,
    "target_payload": {},
    "require_feature": None,
    "is_enabled": True,
    "catch_up_policy": "latest",
    "catch_up_window_seconds": 86_400,
    "overlap_policy": "allow",
    "jitter_seconds": 0,
    "timeout_seconds": None,
    "max_retries": 0,
    "retry_backoff_seconds": 30,
    "start_at": None,
    "end_at": None,
    "max_runs": None,
    "source_type": "user",
    "source_module": None,
}
FIELDS = tuple(DEFAULTS)
CATCH_UP_POLICIES = ("latest", "skip", "all")
OVERLAP_POLICIES = ("allow", "skip")
TARGET_TYPES = ("queue", "command")
SOURCE_TYPES = ("user", "module")
MAX_JSON_DEPTH = 20


def validate_job_id(value: Any) -> str:
    if not isinstance(value, str) or not JOB_ID.fullmatch(value):
        raise ValidationError(
            {"id": "id must be 1-200 characters: letters, digits and . _ : @ - (starting with a letter or digit)"}
        )
    return value


def clean_job(
    raw: dict[str, Any], *, base: dict[str, Any], registry: TargetRegistry, settings: Settings
) -> dict[str, Any]:
    """Merge ``raw`` over ``base`` (defaults, or the current values on update) and validate the result."""
    unknown = sorted(set(raw) - set(FIELDS))
    errors: dict[str, str] = {key: "unknown field" for key in unknown}
    values = dict(base)
    for key in FIELDS:
        if key in raw:
            values[key] = raw[key]
    clean: dict[str, Any] = {}

    def check(field: str, fn: Callable[[Any], Any]) -> None:
        try:
            clean[field] = fn(values.get(field))
        except _FieldError as exc:
            errors[field] = str(exc)

    check("name", lambda v: _text(v, "name", 200, required=True))
    check("description", lambda v: _text(v, "description", 2000) or "")
    check("scope_type", lambda v: _choice(v, SCOPES, "scope"))
    check("tenant_id", lambda v: _text(v, "tenant", 64))
    check("organization_id", lambda v: _text(v, "organization", 64))
    check("schedule_type", lambda v: _choice(v, engine.SCHEDULE_TYPES, "schedule type"))
    check("schedule_value", lambda v: _text(v, "schedule", 200, required=True))
    check("timezone", lambda v: _text(v, "timezone", 64) or "UTC")
    check("target_type", lambda v: _choice(v, TARGET_TYPES, "target type"))
    check("target_queue", lambda v: _text(v, "queue", 200))
    check("target_command", lambda v: _text(v, "command", 200))
    check("target_payload", lambda v: _payload(v, settings.scheduler_max_payload_bytes))
    check("require_feature", lambda v: _text(v, "feature", 200))
    check("is_enabled", lambda v: _bool(v, "enabled"))
    check("catch_up_policy", lambda v: _choice(v, CATCH_UP_POLICIES, "catch-up policy"))
    check("catch_up_window_seconds", lambda v: _int(v, 1, 30 * 86_400, required=True))
    check("overlap_policy", lambda v: _choice(v, OVERLAP_POLICIES, "overlap policy"))
    check("jitter_seconds", lambda v: _int(v, 0, 3600, required=True))
    check("timeout_seconds", lambda v: _int(v, 1, 86_400))
    check("max_retries", lambda v: _int(v, 0, 10, required=True))
    check("retry_backoff_seconds", lambda v: _int(v, 1, 86_400, required=True))
    check("max_runs", lambda v: _int(v, 1, 1_000_000_000))
    check("source_type", lambda v: _choice(v, SOURCE_TYPES, "source type"))
    check("source_module", lambda v: _text(v, "module", 100))
    zone = _zone_or_utc(clean.get("timezone"))
    check("start_at", lambda v: _datetime(v, zone))
    check("end_at", lambda v: _datetime(v, zone))

    _check_scope(clean, errors)
    _check_target(clean, errors, registry)
    _check_schedule(clean, errors, settings)
    if errors:
        raise ValidationError(errors)
    return clean


def clean_payload(value: Any, settings: Settings, *, field: str = "payload") -> dict[str, Any]:
    """A run's input, checked exactly as a schedule's payload is (object, depth, size, text);
    errors are keyed ``field``."""
    try:
        return _payload(value, settings.scheduler_max_payload_bytes)
    except _FieldError as exc:
        raise ValidationError({field: str(exc)}) from None


class _FieldError(ValueError):
    pass


def _text(value: Any, label: str, max_length: int, *, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if required:
            raise _FieldError(f"{label} is required")
        return None
    if not isinstance(value, str):
        raise _FieldError(f"{label} must be text")
    text = value.strip()
    if len(text) > max_length:
        raise _FieldError(f"{label} must be at most {max_length} characters (got {len(text)})")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text) or "\x7f" in text:
        raise _FieldError(f"{label} must not contain control characters")
    return text


def _choice(value: Any, choices: tuple[str, ...], label: str) -> str:
    if not isinstance(value, str) or value.strip() not in choices:
        raise _FieldError(f"{label} must be one of: {', '.join(choices)}")
    return value.strip()


def _bool(value: Any, label: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "on", "1", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "off", "0", "no", ""):
        return False
    raise _FieldError(f"{label} must be true or false")


def _int(value: Any, minimum: int, maximum: int, *, required: bool = False) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if required:
            raise _FieldError("a number is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise _FieldError("must be a whole number")
    number: int
    if isinstance(value, float):
        if not value.is_integer():
            raise _FieldError("must be a whole number")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d{1,12}", text):
            raise _FieldError("must be a whole number")
        number = int(text)
    else:
        number = value
    if not minimum <= number <= maximum:
        raise _FieldError(f"must be between {minimum} and {maximum}")
    return number


def _payload(value: Any, max_bytes: int) -> dict[str, Any]:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise _FieldError(f"payload is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _FieldError('payload must be a JSON object, like {"key": "value"}')
    if _depth(value) > MAX_JSON_DEPTH:
        raise _FieldError(f"payload is nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    if _has_nul(value):  # JSON allows it; PostgreSQL's jsonb does not
        raise _FieldError("payload text must not contain NUL characters (\\u0000)")
    try:
        encoded = json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):
        raise _FieldError(
            "payload must contain only JSON values (text, numbers, true/false, null, lists, objects)"
        ) from None
    if len(encoded) > max_bytes:
        raise _FieldError(f"payload is {len(encoded):,} bytes; the limit is {max_bytes:,}")
    try:
        encoded.decode("utf-8")
    except UnicodeDecodeError:
        raise _FieldError("payload contains invalid text (lone surrogate characters)") from None
    return value


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _zone_or_utc(name: str | None) -> ZoneInfo:
    try:
        return engine.validate_timezone(name or "UTC")
    except engine.ScheduleError:
        return ZoneInfo("UTC")


def _datetime(value: Any, zone: ZoneInfo) -> datetime | None:
    """An aware datetime; a value without an offset is read in the schedule's timezone."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _FieldError("must be a date and time like 2026-12-01T09:00 (ISO 8601)") from None
    if not isinstance(value, datetime):
        raise _FieldError("must be a date and time")
    try:
        return accepted_instant(value, zone).replace(microsecond=0)
    except ValueError as exc:
        raise _FieldError(str(exc)) from None


def _check_scope(clean: dict[str, Any], errors: dict[str, str]) -> None:
    scope = clean.get("scope_type")
    tenant, org = clean.get("tenant_id"), clean.get("organization_id")
    if scope == "system":
        if tenant:
            errors.setdefault("tenant_id", "a system schedule has no tenant")
        if org:
            errors.setdefault("organization_id", "a system schedule has no organization")
    elif scope == "tenant":
        if not tenant:
            errors.setdefault("tenant_id", "a tenant schedule needs a tenant")
        if org:
            errors.setdefault("organization_id", "a tenant schedule has no organization")
    elif scope == "organization":
        if not tenant:
            errors.setdefault("tenant_id", "an organization schedule needs a tenant")
        if not org:
            errors.setdefault("organization_id", "an organization schedule needs an organization")


def _check_target(clean: dict[str, Any], errors: dict[str, str], registry: TargetRegistry) -> None:
    kind = clean.get("target_type")
    if kind == "queue":
        clean["target_command"] = None
        field, label, name = "target_queue", "queue", clean.get("target_queue")
    elif kind == "command":
        clean["target_queue"] = None
        field, label, name = "target_command", "command", clean.get("target_command")
    else:
        return
    if field in errors:
        return
    if not name:
        errors[field] = f"choose a {label} for a {label} target"
        return
    target = registry.get(kind, name)
    if target is None:
        errors[field] = f"unknown {label} '{name}'"
    elif not target.schedulable:
        errors[field] = f"{label} '{name}' is not schedulable"
    elif not target.allows(clean.get("scope_type")):
        allowed = " or ".join(sorted(target.scopes))
        errors[field] = f"{label} '{name}' can only be scheduled in {allowed} scope"


def _check_schedule(clean: dict[str, Any], errors: dict[str, str], settings: Settings) -> None:
    """The schedule's fields together: each is checked even when another one is wrong, so a
    bad timezone does not hide a bad cron (every field's error at once)."""
    if "timezone" not in errors:
        try:
            engine.validate_timezone(clean["timezone"])
        except engine.ScheduleError as exc:
            errors["timezone"] = exc.message
    if "schedule_type" in errors or "schedule_value" in errors:
        return
    dates_ok = "start_at" not in errors and "end_at" not in errors
    try:
        engine.parse_schedule(
            clean["schedule_type"],
            clean["schedule_value"],
            clean["timezone"] if "timezone" not in errors else "UTC",
            start_at=clean.get("start_at") if dates_ok else None,
            end_at=clean.get("end_at") if dates_ok else None,
            min_interval_seconds=settings.scheduler_min_interval_seconds,
        )
    except engine.ScheduleError as exc:
        errors.setdefault(exc.field, exc.message)
