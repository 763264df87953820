"""The people of the tests' world: a superadmin, acme-eu's admin, employee and operator, globex's admin.

Every access test signs in as these (by email); ``seed_personas`` makes them all, with one password.
"""

from __future__ import annotations

from app.domain.passwords import hash_password

PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)  # hashed once: Argon2 is slow on purpose

ROOT = "root@example.com"
ACME_OWNER = "owner@acme.test"
ACME_VIEWER = "viewer@acme.test"
ACME_OPERATOR = "operator@acme.test"
GLOBEX_OWNER = "owner@globex.test"
#: Same tenant as acme-eu's users, another organization (seeded only where a folder asks for it).
OTHER_ORG = "owner@acme-us.test"

PERSONAS = (ROOT, ACME_OWNER, ACME_VIEWER, ACME_OPERATOR, GLOBEX_OWNER)


async def seed_personas(runtime) -> None:
    users = runtime.users
    await users.create(ROOT, PASSWORD, "admin", is_superadmin=True, password_hash=PASSWORD_HASH)
    await users.create(
        ACME_OWNER, PASSWORD, "admin", tenant_id="acme", organization_id="acme-eu", password_hash=PASSWORD_HASH
    )
    await users.create(
        ACME_VIEWER, PASSWORD, "employee", tenant_id="acme", organization_id="acme-eu", password_hash=PASSWORD_HASH
    )
    await users.create(
        ACME_OPERATOR, PASSWORD, "operator", tenant_id="acme", organization_id="acme-eu", password_hash=PASSWORD_HASH
    )
    await users.create(
        GLOBEX_OWNER, PASSWORD, "admin", tenant_id="globex", organization_id="globex-us", password_hash=PASSWORD_HASH
    )


async def seed_other_org(runtime) -> None:
    """An admin of acme's other organization, acme-us."""
    await runtime.users.create(
        OTHER_ORG, PASSWORD, "admin", tenant_id="acme", organization_id="acme-us", password_hash=PASSWORD_HASH
    )
