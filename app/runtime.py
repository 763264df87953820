"""The composition root: the running application's parts, wired once per process.

``Runtime.create`` opens the database, builds the services and installs the hooks of the
configured strategy (PostgreSQL notifications, the async strategy's Redis sync). It sits above
the strategies and the built-in targets; below it, code receives the result typed as
``app.domain.services.Services``.
"""

from __future__ import annotations

import app.targets  # noqa: F401  (registers the built-in targets)
from app.domain.clock import Clock, utcnow
from app.domain.credentials import CredentialService
from app.domain.events import EventBus
from app.domain.execution import RunExecution
from app.domain.hooks import HookList
from app.domain.login_throttle import LoginThrottle
from app.domain.registry import TargetRegistry
from app.domain.registry import registry as default_registry
from app.domain.run_logs import RunLogs
from app.domain.service import SchedulerService
from app.domain.services import Services
from app.domain.users import UserService
from app.persistence.database import create_engine, create_session_factory
from app.settings import Settings, get_settings
from app.strategies.notify import PgNotifier
from app.strategies.taskiq_sync import RedisSync


class Runtime(Services):
    @classmethod
    def create(
        cls, settings: Settings | None = None, *, clock: Clock = utcnow, registry: TargetRegistry | None = None
    ) -> Runtime:
        settings = settings or get_settings()
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        sessions = create_session_factory(engine)
        registry = registry or default_registry
        hooks = HookList()
        events = EventBus()
        scheduler = SchedulerService(sessions, registry, settings, clock=clock, hooks=hooks, events=events)
        users = UserService(sessions, clock=clock)
        if not settings.is_sqlite:
            hooks.add(PgNotifier(engine))
        if settings.queue_strategy == "async":
            hooks.add(RedisSync(settings, sessions, clock))
        credentials = CredentialService(sessions, clock=clock)
        login_throttle = LoginThrottle(sessions, clock=clock)
        logs = RunLogs(sessions, settings, clock)
        execution = RunExecution(sessions, registry, settings, clock, events, hooks, logs)
        return cls(
            settings,
            engine,
            sessions,
            registry,
            scheduler,
            users,
            credentials,
            login_throttle,
            clock,
            hooks,
            events,
            execution,
        )
