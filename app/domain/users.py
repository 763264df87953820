"""Users, roles, tenants and organizations; turning a user into an ``Actor``."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.actors import Actor
from app.domain.clock import Clock, utcnow
from app.domain.errors import NotFound, ValidationError
from app.domain.ids import new_id
from app.domain.passwords import hash_password_off_loop, verify_password_off_loop
from app.persistence.models import Organization, Role, Tenant, User, WebSession

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,60}$")
SCOPE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
MIN_PASSWORD = 10


@dataclass(frozen=True)
class NewUser:
    user: User
    password: str


class UserService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = utcnow) -> None:
        self.sessions = sessions
        self.clock = clock

    async def create(
        self,
        email: str,
        password: str,
        role: str,
        *,
        tenant_id: str | None = None,
        organization_id: str | None = None,
        is_superadmin: bool = False,
        password_hash: str | None = None,
    ) -> User:
        """Create a user; ``password_hash`` (an Argon2 hash) may replace ``password`` when
        moving accounts from elsewhere."""
        errors: dict[str, str] = {}
        email = (email or "").strip().lower()
        if not EMAIL.match(email):
            errors["email"] = "enter an email address like ops@example.com"
        if password_hash is not None:
            if not password_hash.startswith("$argon2"):
                errors["password"] = "password hash must be an Argon2 hash"
        elif not isinstance(password, str) or len(password) < MIN_PASSWORD:
            errors["password"] = f"password must be at least {MIN_PASSWORD} characters"
        elif len(password) > 1024:
            errors["password"] = "password must be at most 1024 characters"
        for field, value in (("tenant", tenant_id), ("org", organization_id)):
            if value is not None and not SCOPE_ID.match(value):
                errors[field] = f"{field} must be 1-64 letters, digits, '.', '_' or '-'"
        if organization_id and not tenant_id:
            errors["tenant"] = "an organization user needs a tenant"
        if not errors and password_hash is None:
            password_hash = await hash_password_off_loop(password)
        async with self.sessions.begin() as session:
            if await session.get(Role, role) is None:
                names = ", ".join(await session.scalars(sa.select(Role.name).order_by(Role.name)))
                errors["role"] = f"unknown role '{role}'; one of: {names}"
            if not errors and await session.scalar(sa.select(User.id).where(User.email == email)):
                errors["email"] = f"a user with email {email} already exists"
            if errors:
                raise ValidationError(errors)
            await self._ensure_scope(session, tenant_id, organization_id)
            user = User(
                id=new_id(),
                email=email,
                password_hash=password_hash,
                role=role,
                tenant_id=tenant_id,
                organization_id=organization_id,
                is_superadmin=is_superadmin,
                is_active=True,
                created_at=self.clock(),
            )
            session.add(user)
        return user

    async def ensure_scope(self, tenant_id: str, organization_id: str | None = None) -> None:
        """Make the tenant (and its organization) when they do not exist yet; an organization
        of another tenant is refused."""
        async with self.sessions.begin() as session:
            await self._ensure_scope(session, tenant_id, organization_id)

    async def _ensure_scope(self, session: AsyncSession, tenant_id: str | None, organization_id: str | None) -> None:
        now = self.clock()
        if tenant_id:
            if await session.get(Tenant, tenant_id) is None:
                session.add(Tenant(id=tenant_id, name=tenant_id, features=[], created_at=now))
                await session.flush()
        if organization_id:
            org = await session.get(Organization, organization_id)
            if org is None:
                session.add(Organization(id=organization_id, tenant_id=tenant_id, name=organization_id, created_at=now))
                await session.flush()
            elif org.tenant_id != tenant_id:
                raise ValidationError({"org": f"organization '{organization_id}' belongs to another tenant"})

    async def authenticate(self, email: str, password: str) -> User | None:
        async with self.sessions() as session:
            user = await session.scalar(sa.select(User).where(User.email == (email or "").strip().lower()))
        # Outside any transaction: no connection is held while Argon2 works.
        ok = await verify_password_off_loop(user.password_hash if user else None, password or "")
        if not ok or user is None or not user.is_active:
            return None
        async with self.sessions.begin() as session:
            user = await session.get(User, user.id)
            if user is None or not user.is_active:  # disabled (or deleted) in the meantime
                return None
            user.last_login_at = self.clock()
        return user

    async def set_active(self, email: str, active: bool) -> User:
        """Enable or disable the user with ``email``. Disabling ends every session of theirs (a
        re-enabled user signs in anew); their API tokens are refused while they are disabled and
        work again once they are enabled (revoking a token ends it for good)."""
        async with self.sessions.begin() as session:
            # Locked: a session being opened for them waits, then sees the new state.
            user = await session.scalar(
                sa.select(User).where(User.email == (email or "").strip().lower()).with_for_update()
            )
            if user is None:
                raise NotFound(f"no user with email '{email}'")
            user.is_active = active
            if not active:
                await session.execute(sa.delete(WebSession).where(WebSession.user_id == user.id))
        return user

    async def get(self, user_id: str) -> User:
        async with self.sessions() as session:
            user = await session.get(User, user_id)
            if user is None or not user.is_active:
                raise NotFound("no such user")
            return user

    async def actor_for(self, user: User) -> Actor:
        async with self.sessions() as session:
            role = await session.get(Role, user.role)
        return Actor(
            id=user.id,
            label=user.email,
            tenant_id=user.tenant_id,
            organization_id=user.organization_id,
            features=frozenset(role.features if role else ()),
            is_superadmin=user.is_superadmin,
        )

    async def count(self) -> int:
        async with self.sessions() as session:
            return await session.scalar(sa.select(sa.func.count()).select_from(User)) or 0

    async def ensure_first_admin(self, email: str = "admin@example.com") -> NewUser | None:
        """On an empty database, create a superadmin with a random password (shown once)."""
        if await self.count():
            return None
        password = secrets.token_urlsafe(12)
        user = await self.create(email, password, "admin", is_superadmin=True)
        return NewUser(user, password)
