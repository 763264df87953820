"""Sign-in throttling, shared by every web process through the database.

Each failed sign-in is a row (client address, email hash, time). An attempt is refused while
any of three limits is reached, each over a sliding window:

- one address and one email: a guesser at one account, or a person mistyping;
- one email from anywhere: guessing spread over many addresses. Much higher, so that an
  attacker elsewhere cannot lock the owner out with a handful of wrong passwords;
- one address, any email: one place trying many accounts.

Refused attempts are not recorded (they cost no password check), and rows older than the
longest window are deleted as failures are written, so the table holds at most about an hour
of failures that got as far as a password check: bounded by what Argon2 lets the web
processes verify. Two concurrent attempts may both pass a check one failure short of a limit;
a limit can be overshot by the number of attempts in flight, no more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.clock import Clock, utcnow
from app.domain.credentials import digest
from app.domain.ids import new_id
from app.persistence.models import LoginAttempt

ADDRESS_LENGTH = 64


@dataclass(frozen=True)
class Limit:
    failures: int
    window: timedelta


@dataclass(frozen=True)
class Limits:
    pair: Limit = Limit(5, timedelta(minutes=15))
    email: Limit = Limit(50, timedelta(hours=1))
    address: Limit = Limit(30, timedelta(hours=1))

    @property
    def longest(self) -> timedelta:
        return max(self.pair.window, self.email.window, self.address.window)


class LoginThrottle:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock = utcnow, limits: Limits = Limits()
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.limits = limits

    async def retry_after(self, address: str, email: str) -> int:
        """Seconds until ``address`` may try ``email`` again (0: now)."""
        now = self.clock()
        address, email_hash = _keys(address, email)
        by_address, by_email = LoginAttempt.address == address, LoginAttempt.email_hash == email_hash
        checks = [
            (self.limits.pair, sa.and_(by_address, by_email)),
            (self.limits.email, by_email),
            (self.limits.address, by_address),
        ]
        columns = []
        for limit, matches in checks:
            counted = sa.and_(matches, LoginAttempt.failed_at > now - limit.window)
            columns += [sa.func.count(sa.case((counted, 1))), sa.func.min(sa.case((counted, LoginAttempt.failed_at)))]
        query = sa.select(*columns).where(
            sa.or_(by_address, by_email), LoginAttempt.failed_at > now - self.limits.longest
        )
        async with self.sessions() as session:
            row = (await session.execute(query)).one()
        waits = [
            # The oldest failure leaving the window brings the count under the limit (refused
            # attempts are not recorded, so the count hardly ever passes the limit).
            (oldest + limit.window - now).total_seconds()
            for (limit, _), count, oldest in zip(checks, row[0::2], row[1::2])
            if count >= limit.failures
        ]
        return max(1, math.ceil(max(waits))) if waits else 0

    async def failed(self, address: str, email: str) -> None:
        now = self.clock()
        address, email_hash = _keys(address, email)
        async with self.sessions.begin() as session:
            await session.execute(sa.delete(LoginAttempt).where(LoginAttempt.failed_at <= now - self.limits.longest))
            session.add(LoginAttempt(id=new_id(), address=address, email_hash=email_hash, failed_at=now))

    async def succeeded(self, address: str, email: str) -> None:
        """The person at ``address`` knows the password: their own failures no longer count.
        Failures at the email from elsewhere still do."""
        address, email_hash = _keys(address, email)
        async with self.sessions.begin() as session:
            await session.execute(
                sa.delete(LoginAttempt).where(LoginAttempt.address == address, LoginAttempt.email_hash == email_hash)
            )


def _keys(address: str, email: str) -> tuple[str, str]:
    return (address or "-")[:ADDRESS_LENGTH], digest((email or "").strip().lower())
