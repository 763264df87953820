"""The one schedule factory: a definition as the service takes it, built from a default and presets.

    job_definition()                                   # system, demo.echo every five minutes
    job_definition(NIGHTLY_EXPORT, is_enabled=False)   # acme-eu's nightly export, disabled
    job_definition(DAILY_SALES_REPORT)                 # acme-eu's daily sales report, with its id

Presets are applied in order, then the keyword overrides: a test names only what it is about.
"""

from __future__ import annotations

import copy
from typing import Any

from app.domain.actors import SYSTEM

SYSTEM_ECHO: dict[str, Any] = {
    "name": "Echo",
    "scope_type": "system",
    "schedule_type": "cron",
    "schedule_value": "*/5 * * * *",
    "target_type": "command",
    "target_command": "demo.echo",
    "target_payload": {"message": "hi"},
}
#: An organization schedule of acme/acme-eu, at 09:00 Warsaw time.
ACME_EU: dict[str, Any] = {
    "scope_type": "organization",
    "tenant_id": "acme",
    "organization_id": "acme-eu",
    "schedule_value": "0 9 * * *",
    "timezone": "Europe/Warsaw",
}
#: What the admin pages' tests show and edit.
NIGHTLY_EXPORT: dict[str, Any] = {
    **ACME_EU,
    "name": "Nightly export",
    "description": "Exports yesterday's orders",
    "target_payload": {"message": "hello"},
}
#: What the API's tests create, export and import (an id of its own, a real built-in target).
DAILY_SALES_REPORT: dict[str, Any] = {
    **ACME_EU,
    "id": "reports:daily:acme-eu",
    "name": "Daily sales report",
    "target_command": "reports.sales-summary",
    "target_payload": {"period": "day"},
}


def job_definition(*presets: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """``SYSTEM_ECHO``, then each preset, then ``overrides`` (a fresh copy every call)."""
    data = copy.deepcopy(SYSTEM_ECHO)
    for preset in presets:
        data.update(copy.deepcopy(preset))
    data.update(overrides)
    return data


async def make_job(runtime, **overrides: Any):
    """acme-eu's nightly export (plus ``overrides``), made by the system through the service."""
    return await runtime.scheduler.create(job_definition(NIGHTLY_EXPORT, **overrides), SYSTEM)
