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

A file is hostile input: the permission is checked before it is read, its size is capped
(``SCHEDULER_MAX_IMPORT_BYTES``), and it is parsed in a worker thread with libyaml, counting
its values first, so a file of a million list items neither freezes the server nor fills its
memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
import yaml

from app.domain.actors import MANAGE, VIEW, Actor
from app.domain.errors import Forbidden, ValidationError
from app.domain.fieldnames import camel, camel_keys
from app.domain.listing import JobQuery, job_conditions
from app.domain.service import SchedulerService
from app.domain.validation import FIELDS
from app.persistence.models import ScheduledJob

FORMAT_VERSION = 1
MAX_SCHEDULES = 5_000
#: Values (scalars, lists, mappings) a file may hold: about 60 per schedule at the most
#: schedules. Counted before the document is built, which costs far more per value.
MAX_NODES = 300_000
#: Lists and mappings inside each other (a payload may nest 20 levels, inside 3).
MAX_DEPTH = 30
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
    service: SchedulerService, actor: Actor, *, scope_type: str | None = None, tenant_id: str | None = None
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


async def import_schedules(
    service: SchedulerService, text: str | bytes, actor: Actor, *, dry_run: bool = False
) -> ImportPlan:
    """Apply a YAML document (see the module docs). Errors name ``schedules[i].field``."""
    if not actor.can(MANAGE):  # before the file costs anything
        raise Forbidden(f"you need the '{MANAGE}' permission")
    max_bytes = service.settings.scheduler_max_import_bytes
    check_size(len(text), max_bytes)
    # Off the event loop: a large file takes a second to parse, and the server keeps answering.
    items = await asyncio.to_thread(parse_schedules, text, max_bytes)
    try:
        plan = await service.import_many(items, actor, dry_run=dry_run)
    except ValidationError as exc:
        raise ValidationError(_capped(camel_keys({f"schedules{key}": m for key, m in exc.errors.items()}))) from None
    return ImportPlan(plan, dry_run)


class FileTooLarge(ValidationError):
    """The file is over the import limit (the API answers 413, the CLI says so)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        super().__init__({"file": f"the file is larger than the import limit of {size_label(max_bytes)}"})


def size_label(size: int) -> str:
    """2 MiB, 512 KiB or 1,500 bytes: the limit as people set it."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size:,} bytes"


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise FileTooLarge(max_bytes)


def parse_schedules(text: str | bytes, max_bytes: int = 2 * 1024 * 1024) -> list[dict[str, Any]]:
    """The items of a document, with domain (snake_case) field names; ValidationError if malformed.

    CPU-bound (up to a second for a file at the limit): call it in a thread from async code."""
    check_size(len(text), max_bytes)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError({"file": "the file is not UTF-8 text"}) from None
    try:
        _check_shape(text)
        document = yaml.load(text, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ValidationError({"file": f"not valid YAML: {_yaml_problem(exc)}"}) from None
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
        raise ValidationError({"schedules": f"at most {MAX_SCHEDULES:,} schedules per file (got {len(raw_items):,})"})
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


class _SafeLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml: 7x faster
    """A safe loader whose impossible dates (2026-02-30) are YAML errors with a line, not crashes."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> date:
        try:
            # The base class is picked at import time, so its result is typed here.
            stamp: date = super().construct_yaml_timestamp(node)
            return stamp
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a real date and time ({exc})", node.start_mark
            ) from None


_SafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _SafeLoader.construct_yaml_timestamp)
_SAFE_LOADER = _SafeLoader
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)


def _check_shape(text: str) -> None:
    """Refuse, from the parser's events alone (cheap), what would be costly to build: too many
    values, nesting deeper than ``MAX_DEPTH`` (the document builder recurses), and aliases
    (nested aliases can make a tiny file huge in memory)."""
    nodes = depth = 0
    for event in yaml.parse(text, Loader=_SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise ValidationError({"file": f"aliases (*name) are not allowed{_where(event)}"})
        if isinstance(event, _NODE_EVENTS):
            nodes += 1
            if nodes > MAX_NODES:
                raise ValidationError({"file": f"the file holds more than {MAX_NODES:,} values (the limit)"})
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ValidationError({"file": f"the file is nested too deeply (at most {MAX_DEPTH} levels)"})
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _where(event: yaml.Event) -> str:
    mark = event.start_mark
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""


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
