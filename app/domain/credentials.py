"""Browser sessions and API tokens: random secrets handed out once, stored only as hashes."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.clock import Clock, utcnow
from app.domain.errors import NotFound, ValidationError
from app.domain.ids import new_id
from app.persistence.models import ApiToken, User, WebSession

SESSION_LIFETIME = timedelta(hours=12)
TOKEN_PREFIX = "msk_"
TOKEN_SHAPE = re.compile(r"^msk_[A-Za-z0-9_\-]{20,100}$")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


class CredentialService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = utcnow) -> None:
        self.sessions = sessions
        self.clock = clock

    # ----- browser sessions ----------------------------------------------------------------

    async def open_session(self, user_id: str) -> str | None:
        """A new session key for a fresh login (a new key every time: no session fixation);
        None if the user was disabled meanwhile."""
        key = secrets.token_urlsafe(32)
        now = self.clock()
        async with self.sessions.begin() as session:
            # FOR SHARE: a concurrent disable (FOR UPDATE, then deleting the user's sessions)
            # either sees this session or is seen by it.
            active = await session.scalar(
                sa.select(User.is_active).where(User.id == user_id).with_for_update(read=True)
            )
            if not active:
                return None
            await session.execute(sa.delete(WebSession).where(WebSession.expires_at < now))
            session.add(
                WebSession(key_hash=digest(key), user_id=user_id, created_at=now, expires_at=now + SESSION_LIFETIME)
            )
        return key

    async def session_user(self, key: str) -> User | None:
        if not key or len(key) > 200:
            return None
        async with self.sessions() as session:
            row = await session.get(WebSession, digest(key))
            if row is None or row.expires_at < self.clock():
                return None
            user = await session.get(User, row.user_id)
        return user if user is not None and user.is_active else None

    async def close_session(self, key: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(sa.delete(WebSession).where(WebSession.key_hash == digest(key or "")))

    # ----- API tokens ----------------------------------------------------------------------

    async def issue_token(self, user_id: str, name: str) -> IssuedToken:
        name = (name or "").strip()
        if not name or len(name) > 100:
            raise ValidationError({"name": "token name must be 1-100 characters"})
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.sessions.begin() as session:
            if await session.get(User, user_id) is None:
                raise NotFound("no such user")
            token = ApiToken(
                id=new_id(),
                user_id=user_id,
                name=name,
                prefix=secret[:12],
                token_hash=digest(secret),
                created_at=self.clock(),
            )
            session.add(token)
        return IssuedToken(token, secret)

    async def tokens_of(self, user_id: str) -> list[ApiToken]:
        async with self.sessions() as session:
            rows = await session.scalars(
                sa.select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at)
            )
            return list(rows)

    async def revoke_token(self, token_id: str, user_id: str | None = None) -> ApiToken:
        async with self.sessions.begin() as session:
            token = await session.get(ApiToken, token_id) if isinstance(token_id, str) else None
            if token is None or (user_id is not None and token.user_id != user_id):
                raise NotFound(f"no token with id '{token_id}'")
            if token.revoked_at is None:
                token.revoked_at = self.clock()
        return token

    async def token_user(self, secret: str) -> User | None:
        if not secret or not TOKEN_SHAPE.match(secret):
            return None
        async with self.sessions.begin() as session:
            token = await session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == digest(secret)))
            if token is None or token.revoked_at is not None:
                return None
            user = await session.get(User, token.user_id)
            if user is None or not user.is_active:
                return None
            now = self.clock()
            # Written at most once a minute: a busy script must not turn every read into a write.
            if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
                token.last_used_at = now
        return user

    async def user_by_email(self, email: str) -> User:
        async with self.sessions() as session:
            user = await session.scalar(sa.select(User).where(User.email == (email or "").strip().lower()))
        if user is None:
            raise NotFound(f"no user with email '{email}'")
        return user
