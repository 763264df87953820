"""What code below the composition root may use of the stored data: a Protocol, so that both the
application's ``Services`` and the execution path's ``RunExecution`` can be handed in."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.clock import Clock
from app.settings import Settings


class DataAccess(Protocol):
    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...
