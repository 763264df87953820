"""Who is acting, what they may do, and which schedules they can see."""

from __future__ import annotations

from dataclasses import dataclass, field

VIEW = "scheduler.jobs.view"
MANAGE = "scheduler.jobs.manage"
TRIGGER = "scheduler.jobs.trigger"
ALL_FEATURES = frozenset({VIEW, MANAGE, TRIGGER})

SCOPES = ("system", "organization", "tenant")


@dataclass(frozen=True)
class Actor:
    """A user (or the system) acting on schedules.

    Visibility: a superadmin sees everything. Everyone else sees the schedules of their own
    organization, the tenant-scoped schedules of their tenant, and, when they belong to a tenant
    but to no particular organization, every organization schedule of that tenant. System
    schedules are for superadmins only.
    """

    id: str | None
    label: str
    tenant_id: str | None = None
    organization_id: str | None = None
    features: frozenset[str] = field(default_factory=frozenset)
    is_superadmin: bool = False

    def can(self, feature: str) -> bool:
        return self.is_superadmin or feature in self.features

    def can_see(self, scope_type: str, tenant_id: str | None, organization_id: str | None) -> bool:
        if self.is_superadmin:
            return True
        if scope_type == "system" or self.tenant_id is None or tenant_id != self.tenant_id:
            return False
        if scope_type == "tenant":
            return True
        return self.organization_id is None or organization_id == self.organization_id

    def can_see_owned(self, tenant_id: str | None, organization_id: str | None) -> bool:
        """``can_see`` for a row that carries its scope's ids but no scope type (a run, an
        audit entry): no tenant is system's, a tenant without an organization is the tenant's."""
        return self.can_see(scope_of(tenant_id, organization_id), tenant_id, organization_id)


def scope_of(tenant_id: str | None, organization_id: str | None) -> str:
    """The scope type that a pair of scope ids implies."""
    if tenant_id is None:
        return "system"
    return "tenant" if organization_id is None else "organization"


#: Module code and background work act as the system: full access, no scope limits.
SYSTEM = Actor(id=None, label="system", features=ALL_FEATURES, is_superadmin=True)
