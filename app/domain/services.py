"""The application's services as one typed object, for the code that works with several of them.

The composition root (``app.runtime.Runtime``) builds it once per process: it opens the database,
makes the services and installs the running strategy's hooks. Everything below the root (the
execution path, the strategies, the built-in targets) receives it typed as ``Services``, so no
lower layer ever imports the root.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.domain.clock import Clock
from app.domain.credentials import CredentialService
from app.domain.events import EventBus
from app.domain.execution import RunExecution
from app.domain.hooks import HookList
from app.domain.login_throttle import LoginThrottle
from app.domain.registry import TargetRegistry
from app.domain.service import SchedulerService
from app.domain.users import UserService
from app.settings import Settings


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: TargetRegistry
    scheduler: SchedulerService
    users: UserService
    credentials: CredentialService
    login_throttle: LoginThrottle
    clock: Clock
    hooks: HookList
    events: EventBus
    #: The execution path's dependencies (sessions, targets, settings, clock, events, hooks).
    execution: RunExecution

    async def close(self) -> None:
        await self.execution.logs.stop()
        await self.engine.dispose()
