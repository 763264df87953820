"""The running application's parts, wired once: settings, database, registry, services, events."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.domain.clock import Clock, utcnow
from app.domain.credentials import CredentialService
from app.domain.events import EventBus
from app.domain.hooks import HookList
from app.domain.login_throttle import LoginThrottle
from app.domain.registry import TargetRegistry, registry as default_registry
from app.domain.service import SchedulerService
from app.domain.users import UserService
from app.persistence.database import create_engine, create_session_factory
from app.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    registry: TargetRegistry
    scheduler: SchedulerService
    users: UserService
    credentials: CredentialService
    login_throttle: LoginThrottle
    clock: Clock
    hooks: HookList = field(default_factory=HookList)
    events: EventBus = field(default_factory=EventBus)

    @classmethod
    def create(
        cls, settings: Settings | None = None, *, clock: Clock = utcnow, registry: TargetRegistry | None = None
    ) -> "Runtime":
        import app.targets  # noqa: F401  (registers the built-in targets)

        settings = settings or get_settings()
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        sessions = create_session_factory(engine)
        registry = registry or default_registry
        hooks = HookList()
        scheduler = SchedulerService(sessions, registry, settings, clock=clock, hooks=hooks)
        users = UserService(sessions, clock=clock)
        if not settings.is_sqlite:
            from app.strategies.notify import PgNotifier

            hooks.add(PgNotifier(engine))
        if settings.queue_strategy == "async":
            from app.strategies.taskiq_sync import RedisSync

            hooks.add(RedisSync(settings, sessions, clock))
        credentials = CredentialService(sessions, clock=clock)
        login_throttle = LoginThrottle(sessions, clock=clock)
        return cls(settings, engine, sessions, registry, scheduler, users, credentials, login_throttle, clock, hooks)

    async def close(self) -> None:
        await self.engine.dispose()
