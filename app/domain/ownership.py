"""Who may hold which schedule id, and in which scope: the tenant boundary's rules for writes.

An id held by a row outside the caller's scope, live or deleted, is never taken from it; a
module's registration never takes over a row of another scope or owner; a schedule's tenant
must exist and its organization must be one of that tenant's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.actors import Actor
from app.domain.errors import ValidationError
from app.persistence.models import Organization, ScheduledJob, Tenant


def check_actor_scope(actor: Actor, clean: dict[str, Any]) -> None:
    """Whether ``actor`` may make a schedule of the scope ``clean`` names (system: superadmins;
    otherwise their own tenant, and their own organization if they belong to one)."""
    if actor.is_superadmin:
        return
    scope = clean["scope_type"]
    if scope == "system":
        raise ValidationError({"scope_type": "only superadmins can manage system schedules"})
    if clean.get("tenant_id") != actor.tenant_id:
        raise ValidationError({"tenant_id": "you can only manage schedules of your own tenant"})
    if scope == "organization" and actor.organization_id and clean.get("organization_id") != actor.organization_id:
        raise ValidationError({"organization_id": "you can only manage schedules of your own organization"})


def check_id_free(
    job_id: str, job: ScheduledJob, clean: dict[str, Any], actor: Actor, *, updating: bool = False
) -> None:
    """Whether ``actor`` may write ``clean`` under ``job``'s id: a row outside the actor's
    scope, live or deleted, is never taken, and the refusal says only that the id is not
    available (the same words whether that row is live or deleted)."""
    if not actor.can_see(job.scope_type, job.tenant_id, job.organization_id):
        raise ValidationError({"id": id_not_available(job_id)})
    if _scope_ids(job) != _scope_ids(clean):
        if updating:
            raise ValidationError({"scope_type": "the scope of a schedule cannot change; use a new id"})
        # A deleted schedule is made again only in its own scope: its runs and audit trail stay its own.
        raise ValidationError({"id": id_not_available(job_id)})
    if job.deleted_at is None and not updating:
        raise ValidationError({"id": f"a schedule with id '{job_id}' already exists"})


async def missing_scopes(session: AsyncSession, new: Iterable[tuple[int | None, dict[str, Any]]]) -> dict[str, str]:
    """Errors for new schedules, given as (index in a batch or None, clean definition), whose
    tenant does not exist or whose organization is not one of that tenant's (one query for all
    of them); keyed ``[index].field`` in a batch."""
    new = list(new)
    tenants = {clean["tenant_id"] for _, clean in new if clean.get("tenant_id")}
    organizations = {clean["organization_id"] for _, clean in new if clean.get("organization_id")}
    if not tenants and not organizations:
        return {}
    known_tenants = set(await session.scalars(sa.select(Tenant.id).where(Tenant.id.in_(tenants))))
    parent = (
        dict(
            (
                await session.execute(
                    sa.select(Organization.id, Organization.tenant_id).where(Organization.id.in_(organizations))
                )
            )
            .tuples()
            .all()
        )
        if organizations
        else {}
    )
    errors: dict[str, str] = {}
    for index, clean in new:
        tenant, organization = clean.get("tenant_id"), clean.get("organization_id")
        prefix = f"[{index}]." if index is not None else ""
        if tenant and tenant not in known_tenants:
            errors[f"{prefix}tenant_id"] = f"there is no tenant '{tenant}'"
        elif organization and parent.get(organization) != tenant:
            # The same words whether it does not exist or is another tenant's.
            errors[f"{prefix}organization_id"] = f"tenant '{tenant}' has no organization '{organization}'"
    return errors


def id_not_available(job_id: str) -> str:
    return f"the id '{job_id}' is not available; choose another"


def _scope_ids(row: Any) -> tuple[str | None, str | None, str | None]:
    get = row.get if isinstance(row, dict) else lambda field: getattr(row, field)
    return get("scope_type"), get("tenant_id"), get("organization_id")


def _scope_label(scope: tuple[str | None, str | None, str | None]) -> str:
    kind, tenant, organization = scope
    if kind == "system":
        return "system scope"
    if kind == "tenant":
        return f"tenant '{tenant}'"
    return f"organization '{organization}' of tenant '{tenant}'"


def check_registration_holds(job_id: str, job: ScheduledJob | None, clean: dict[str, Any]) -> None:
    """A module's registration updates (or makes again) only its own schedule, in its scope:
    never a user's row, another module's, or one of another scope, live or deleted. Module
    code is trusted, so the error names the conflict."""
    if job is None:
        return
    if (job.source_type, job.source_module) != (clean["source_type"], clean["source_module"]):
        owner = f"module '{job.source_module}'" if job.source_type == "module" else "a user"
        raise ValidationError(
            {
                "id": (
                    f"schedule '{job_id}' was made by {owner}, not by this registration "
                    f"({clean['source_type']} '{clean['source_module']}'); register under another id"
                )
            }
        )
    if _scope_ids(job) != _scope_ids(clean):
        raise ValidationError(
            {
                "id": (
                    f"schedule '{job_id}' belongs to {_scope_label(_scope_ids(job))}; a registration cannot move it "
                    f"to {_scope_label(_scope_ids(clean))}; register under another id"
                )
            }
        )
