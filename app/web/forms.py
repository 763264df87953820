"""The schedule form: what a person typed, to and from the service's field names.

Values stay strings exactly as typed, so a form re-rendered with errors keeps everything; the
service (``clean_job``) does all validation. The target is one select whose values look like
``command:demo.echo`` or ``queue:currency-rates``: one control covers type and name, and it
needs no script to show the right list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from app.domain.actors import Actor
from app.domain.validation import DEFAULTS
from app.web.formatting import utc_fallback, zone

#: Form fields, all text. (Scope fields are only sent when creating.)
TEXT_FIELDS = (
    "name",
    "description",
    "schedule_type",
    "schedule_value",
    "timezone",
    "target",
    "target_payload",
    "require_feature",
    "catch_up_policy",
    "catch_up_window_seconds",
    "overlap_policy",
    "jitter_seconds",
    "timeout_seconds",
    "max_retries",
    "retry_backoff_seconds",
    "start_at",
    "end_at",
    "max_runs",
    "scope_type",
    "tenant_id",
    "organization_id",
)
#: Service fields whose errors belong to another form control.
ERROR_FIELD = {"target_type": "target", "target_queue": "target", "target_command": "target"}
#: Service fields sent as typed (the service parses numbers, dates and JSON).
PASSED_THROUGH = (
    "name",
    "description",
    "schedule_type",
    "schedule_value",
    "timezone",
    "target_payload",
    "require_feature",
    "catch_up_policy",
    "catch_up_window_seconds",
    "overlap_policy",
    "jitter_seconds",
    "timeout_seconds",
    "max_retries",
    "retry_backoff_seconds",
    "start_at",
    "end_at",
    "max_runs",
)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def local_input(dt: datetime | None, tz: str) -> str:
    """A ``datetime-local`` value in the schedule's zone (the service reads it in that zone too)."""
    if dt is None:
        return ""
    try:
        local = dt.astimezone(zone(tz))
    except (OverflowError, ValueError):  # a stored instant at the edge of datetime's range
        local = utc_fallback(dt).replace(tzinfo=None)
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class JobForm:
    values: dict[str, str]
    enabled: bool = True
    #: The version the person started editing (optimistic locking); None when creating.
    version: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    #: Errors for fields the form has no control for (shown at the top).
    general: list[str] = field(default_factory=list)

    @classmethod
    def blank(cls, actor: Actor) -> JobForm:
        values = {name: _text(DEFAULTS.get(name)) for name in TEXT_FIELDS}
        values.update(target="", target_payload="{}")
        if actor.is_superadmin:
            values["scope_type"] = "system"
        else:
            values["scope_type"] = "organization" if actor.organization_id else "tenant"
            values["tenant_id"] = actor.tenant_id or ""
            values["organization_id"] = actor.organization_id or ""
        return cls(values, enabled=True)

    @classmethod
    def from_job(cls, job: Any) -> JobForm:
        values = {name: _text(getattr(job, name, None)) for name in TEXT_FIELDS if hasattr(job, name)}
        values["target"] = f"{job.target_type}:{job.target_queue if job.target_type == 'queue' else job.target_command}"
        values["target_payload"] = json.dumps(job.target_payload or {}, indent=2, ensure_ascii=False)
        values["start_at"] = local_input(job.start_at, job.timezone)
        values["end_at"] = local_input(job.end_at, job.timezone)
        return cls(values, enabled=bool(job.is_enabled), version=job.version)

    @classmethod
    def from_submission(cls, form: Mapping[str, Any]) -> JobForm:
        values = {
            name: _text(form.get(name)).strip() if name != "target_payload" else _text(form.get(name))
            for name in TEXT_FIELDS
        }
        version = _text(form.get("version")).strip()
        return cls(values, enabled=bool(form.get("is_enabled")), version=int(version) if version.isdigit() else None)

    def changes(self, actor: Actor, *, creating: bool) -> dict[str, Any]:
        """The service's input. Scope comes from the actor unless a superadmin chose it."""
        data: dict[str, Any] = {name: self.values.get(name, "") for name in PASSED_THROUGH}
        kind, _, name = self.values.get("target", "").partition(":")
        data["target_type"] = kind or "command"
        data["target_queue" if kind == "queue" else "target_command"] = name
        data["is_enabled"] = self.enabled
        if creating:
            scope = self.values.get("scope_type", "")
            data["scope_type"] = scope
            if actor.is_superadmin:
                data["tenant_id"] = self.values.get("tenant_id") or None
                data["organization_id"] = self.values.get("organization_id") or None
            else:
                data["tenant_id"] = actor.tenant_id
                data["organization_id"] = (
                    actor.organization_id or self.values.get("organization_id") or None
                    if scope == "organization"
                    else None
                )
        return data

    def with_errors(self, errors: Mapping[str, str]) -> JobForm:
        mapped: dict[str, str] = {}
        general: list[str] = []
        for key, message in errors.items():
            target = ERROR_FIELD.get(key, key)
            if target in TEXT_FIELDS:
                mapped.setdefault(target, message)
            else:
                general.append(message)
        return replace(self, errors=mapped, general=general)
