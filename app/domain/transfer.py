"""Import and export of schedules as YAML, for the CLI and the JSON API alike.

The file is a list of whole schedule definitions with the API's camelCase field names::

    version: 1
    schedules:
      - id: reports:daily:acme-eu
        name: Daily sales report
        scopeType: organization
        tenantId: acme
        organizationId: acme-eu
        scheduleType: cron
        scheduleValue: 0 9 * * *
        timezone: Europe/Warsaw
        targetType: command
        targetCommand: reports.sales-summary
        targetPayload: {period: day}

Import upserts by id (a field left out takes its default), validates every item before
writing anything, and writes all of them in one transaction or none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import yaml

from app.domain.actors import VIEW, Actor
from app.domain.errors import Forbidden, ValidationError
from app.domain.fieldnames import camel, camel_keys
from app.domain.listing import JobQuery, job_conditions
from app.domain.validation import FIELDS
from app.persistence.models import ScheduledJob

FORMAT_VERSION = 1
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_SCHEDULES = 5_000
#: Error lists longer than this are cut: the first ones are enough to fix a file.
MAX_ERRORS = 200
FILE_KEYS = {camel(field): field for field in ("id", *FIELDS)}


@dataclass(frozen=True)
class ImportPlan:
    #: (id, "create" | "update" | "unchanged") in file order.
    items: list[tuple[str, str]]
    dry_run: bool

    def count(self, action: str) -> int:
        return sum(1 for _, a in self.items if a == action)

    def summary(self) -> str:
        created, updated, unchanged = self.count("create"), self.count("update"), self.count("unchanged")
        if self.dry_run:
            return f"dry run, nothing written: would create {created}, update {updated}; {unchanged} unchanged"
        return f"created {created}, updated {updated}; {unchanged} unchanged"


# ----- export ------------------------------------------------------------------------------


async def export_schedules(
    service, actor: Actor, *, scope_type: str | None = None, tenant_id: str | None = None
) -> str:
    """The live schedules the actor can see, as a YAML document ordered by id."""
    if not actor.can(VIEW):
        raise Forbidden(f"you need the '{VIEW}' permission")
    conditions = job_conditions(JobQuery(scope_type=scope_type, tenant_id=tenant_id), actor)
    async with service.sessions() as session:
        jobs = list(await session.scalars(sa.select(ScheduledJob).where(*conditions).order_by(ScheduledJob.id)))
    return dump_schedules(jobs)


def dump_schedules(jobs: list[ScheduledJob]) -> str:
    items = []
    for job in jobs:
        item: dict[str, Any] = {"id": job.id}
        for field in FIELDS:
            value = getattr(job, field)
            if value is None or (field == "description" and value == ""):
                continue  # absent means the default, which is what these are
            item[camel(field)] = value.isoformat() if isinstance(value, datetime) else value
        items.append(item)
    return yaml.safe_dump(
        {"version": FORMAT_VERSION, "schedules": items}, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


# ----- import ------------------------------------------------------------------------------


async def import_schedules(service, text: str | bytes, actor: Actor, *, dry_run: bool = False) -> ImportPlan:
    """Apply a YAML document (see the module docs). Errors name ``schedules[i].field``."""
    items = parse_schedules(text)
    try:
        plan = await service.import_many(items, actor, dry_run=dry_run)
    except ValidationError as exc:
        raise ValidationError(_capped(camel_keys({f"schedules{key}": m for key, m in exc.errors.items()}))) from None
    return ImportPlan(plan, dry_run)


def parse_schedules(text: str | bytes) -> list[dict[str, Any]]:
    """The items of a document, with domain (snake_case) field names; ValidationError if malformed."""
    if len(text) > MAX_FILE_BYTES:
        raise ValidationError({"file": f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"})
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError({"file": "the file is not UTF-8 text"}) from None
    try:
        document = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ValidationError({"file": f"not valid YAML: {_yaml_problem(exc)}"}) from None
    except RecursionError:
        raise ValidationError({"file": "the file is nested too deeply"}) from None
    if not isinstance(document, dict) or not isinstance(document.get("schedules"), list):
        raise ValidationError({"file": "expected a mapping with a 'schedules' list (see `mercato scheduler export`)"})
    if document.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise ValidationError(
            {"version": f"unsupported version {document['version']!r}; this server reads {FORMAT_VERSION}"}
        )
    if unknown := sorted(str(k) for k in document if k not in ("version", "schedules")):
        raise ValidationError({"file": f"unknown top-level keys: {', '.join(unknown)}"})
    raw_items = document["schedules"]
    if len(raw_items) > MAX_SCHEDULES:
        raise ValidationError({"schedules": f"at most {MAX_SCHEDULES} schedules per file (got {len(raw_items)})"})
    items, errors = [], {}
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            errors[f"schedules[{index}]"] = "each schedule must be a mapping of fields"
            continue
        unknown = sorted(str(k) for k in raw if k not in FILE_KEYS)
        if unknown:
            errors[f"schedules[{index}]"] = f"unknown fields: {', '.join(unknown)}"
            continue
        items.append({FILE_KEYS[key]: value for key, value in raw.items()})
    if errors:
        raise ValidationError(_capped(errors))
    return items


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader without anchors and aliases: nested aliases can make a tiny file huge in memory."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def _capped(errors: dict[str, str]) -> dict[str, str]:
    if len(errors) <= MAX_ERRORS:
        return errors
    kept = dict(list(errors.items())[:MAX_ERRORS])
    kept["schedules"] = f"... and {len(errors) - MAX_ERRORS} more errors"
    return kept
