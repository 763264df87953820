"""Run logs: what a target writes through ``ctx.log``, kept with its run.

Each run's target gets a ``logging.Logger`` of its own; the process's one capturing handler
hands its records to the run's ``RunLog``, which keeps the lines in memory: nothing is written
per line. While runs are running, ``RunLogs`` writes the new
lines of all of them every half second, in one statement, so that someone following a run sees
them appear; when a target ends, the rest of its lines are written with its outcome, in the
outcome's transaction, one statement for all the runs that ended together
(``app.domain.outcomes``). A run that logs nothing writes nothing.

A run keeps at most ``SCHEDULER_RUN_LOG_MAX_LINES`` lines (0: none, nothing is captured) of at
most ``SCHEDULER_RUN_LOG_MAX_LINE_LENGTH`` characters; the first line past the limit becomes a
marker saying so, and later ones are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.domain.clock import Clock
from app.persistence.bulk import Unnest
from app.persistence.types import UTCDateTime
from app.settings import Settings

log = logging.getLogger("mercato.run_logs")

#: How often the lines of running runs are written (a follower's delay at most, plus its poll).
FLUSH_EVERY = 0.5
#: The level a run's logger starts at; a target may lower it (``ctx.log.setLevel(logging.DEBUG)``).
LEVEL = logging.INFO
#: A line as it is kept: sequence number, time, level name, message.
Line = tuple[int, datetime, str, str]


def logger_name(run_id: str) -> str:
    return f"mercato.run.{run_id}"


class RunLogger(logging.Logger):
    """A run's logger. Made directly, not through ``logging.getLogger``: the logging module
    would keep every run's logger for the life of the process. It does not propagate, so the
    lines go to the run's log only (not to the process's log).

    Its records (``RunRecord``) name no source file, line or function: the run's log shows none
    of them, and finding them (a walk up the stack, path splitting) was two thirds of a line's
    cost, which a burst of ten thousand runs that log three lines each felt (docs/performance.md).
    """

    def __init__(self, run_id: str, handler: logging.Handler, run_log: RunLog | None = None) -> None:
        super().__init__(logger_name(run_id), LEVEL)
        self.propagate = False
        self.handlers = [handler]  # addHandler would take the logging module's lock
        self.run_log = run_log

    # The plain calls (a message and its arguments, no keywords) go straight to the run's log,
    # without a LogRecord, while nothing else listens (no handler or filter of the target's):
    # making the record was half of a line's cost. Anything else takes the general path.
    def _kept(self, level: int, msg: object, args: tuple[object, ...], keywords: Mapping[str, Any]) -> bool:
        run_log = self.run_log
        if run_log is None or keywords or self.filters or len(self.handlers) != 1 or not self.isEnabledFor(level):
            return False
        run_log.add_message(_LEVEL_NAMES[level], msg, args)
        return True

    def debug(self, msg: object, *args: object, **keywords: Any) -> None:
        if not self._kept(logging.DEBUG, msg, args, keywords):
            super().debug(msg, *args, **keywords)

    def info(self, msg: object, *args: object, **keywords: Any) -> None:
        if not self._kept(logging.INFO, msg, args, keywords):
            super().info(msg, *args, **keywords)

    def warning(self, msg: object, *args: object, **keywords: Any) -> None:
        if not self._kept(logging.WARNING, msg, args, keywords):
            super().warning(msg, *args, **keywords)

    def error(self, msg: object, *args: object, **keywords: Any) -> None:
        if not self._kept(logging.ERROR, msg, args, keywords):
            super().error(msg, *args, **keywords)

    def critical(self, msg: object, *args: object, **keywords: Any) -> None:
        if not self._kept(logging.CRITICAL, msg, args, keywords):
            super().critical(msg, *args, **keywords)

    def findCaller(self, stack_info: bool = False, stacklevel: int = 1) -> tuple[str, int, str, str | None]:
        return _UNKNOWN_FILE, 0, _UNKNOWN_FUNCTION, None

    def makeRecord(
        self,
        name: str,
        level: int,
        fn: str,
        lno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        extra: Mapping[str, object] | None = None,
        sinfo: str | None = None,
    ) -> logging.LogRecord:
        record = RunRecord(name, level, msg, args, exc_info, sinfo)
        if extra:
            for key, value in extra.items():
                if key in ("message", "asctime") or key in record.__dict__:
                    raise KeyError(f"Attempt to overwrite {key!r} in LogRecord")
                record.__dict__[key] = value
        return record


_LEVEL_NAMES = {level: logging.getLevelName(level) for level in (10, 20, 30, 40, 50)}
_UNKNOWN_FILE = "(unknown file)"
_UNKNOWN_FUNCTION = "(unknown function)"
#: What ``LogRecord.relativeCreated`` counts from.
_LOGGING_STARTED: float = getattr(logging, "_startTime", time.time())


class RunRecord(logging.LogRecord):
    """A ``LogRecord`` with every standard attribute, made without looking up where it was
    logged from (the source file, line and function are unknown, as ``findCaller`` says)."""

    def __init__(self, name: str, level: int, msg: object, args: Any, exc_info: Any, sinfo: str | None) -> None:
        now = time.time()
        self.name = name
        self.msg = msg
        # As LogRecord: one mapping argument is the mapping for %(key)s formats.
        if args and len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
            args = args[0]
        self.args = args
        self.levelname = logging.getLevelName(level)
        self.levelno = level
        self.pathname = self.filename = _UNKNOWN_FILE
        self.module = "Unknown module"
        self.exc_info = exc_info
        self.exc_text = None
        self.stack_info = sinfo
        self.lineno = 0
        self.funcName = _UNKNOWN_FUNCTION
        self.created = now
        self.msecs = float(int((now - int(now)) * 1000))
        self.relativeCreated = (now - _LOGGING_STARTED) * 1000
        self.thread = threading.get_ident()
        self.threadName = threading.current_thread().name
        self.processName = "MainProcess"
        process = sys.modules.get("multiprocessing")
        if process is not None:
            try:
                self.processName = process.current_process().name
            except Exception:  # as LogRecord: never fail a log call over its process's name
                pass
        self.process = os.getpid()
        self.taskName = None


class RunLog:
    """The lines of one run, kept until they are written (``take``)."""

    __slots__ = ("owner", "run_id", "tenant_id", "organization_id", "count", "pending", "closed", "lock")

    def __init__(self, owner: RunLogs, run_id: str, tenant_id: str | None, organization_id: str | None) -> None:
        self.owner = owner
        self.run_id = run_id
        self.tenant_id = tenant_id
        self.organization_id = organization_id
        #: Lines accepted so far, the marker included: the last sequence number given.
        self.count = 0
        self.pending: list[Line] = []
        #: The target has ended: the rest is written with its outcome, not by the flusher.
        self.closed = False
        #: A target may log from threads of its own.
        self.lock = threading.Lock()

    def add(self, record: logging.LogRecord, handler: logging.Handler) -> None:
        """A record of the general path (``RunLogger``): with its traceback, if any."""
        if self._full() or self.closed:  # closed: logged after the target ended
            return
        try:
            message = handler.format(record) if record.exc_info or record.stack_info else record.getMessage()
        except Exception:  # a bad format string in the target's call: keep what it meant
            message = f"{record.msg!r} % {record.args!r}"
        level = record.levelname
        self._add(level if len(level) <= 16 else level[:16], message)

    def add_message(self, level: str, msg: object, args: tuple[object, ...]) -> None:
        """A plain call's line, formatted as ``LogRecord.getMessage`` does."""
        if self._full() or self.closed:
            return
        try:
            message = str(msg)
            if args:
                # As LogRecord: one mapping argument is the mapping for %(key)s formats.
                if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
                    message = message % args[0]
                else:
                    message = message % args
        except Exception:  # a bad format string in the target's call: keep what it meant
            message = f"{msg!r} % {args!r}"
        self._add(level, message)

    def _full(self) -> bool:
        """The limit is reached: the first line past it becomes the marker."""
        limit = self.owner.max_lines
        if self.count < limit:
            return False
        if self.count == limit:
            self._add("WARNING", f"the log reached its limit of {limit:,} lines; later lines are not kept")
        return True

    def _add(self, level: str, message: str) -> None:
        longest = self.owner.max_length
        if len(message) > longest:
            message = f"{message[:longest]}… (cut: {len(message):,} characters)"
        if "\x00" in message:  # PostgreSQL text holds no NUL
            message = message.replace("\x00", "\ufffd")
        with self.lock:
            self.count += 1
            first = not self.pending
            self.pending.append((self.count, self.owner.clock(), level, message))
        if first and not self.closed:
            self.owner.mark_dirty(self)

    def take(self) -> list[Line]:
        """The lines not written yet; they are the caller's to write (or ``give_back``)."""
        with self.lock:
            lines, self.pending = self.pending, []
        return lines

    def give_back(self, lines: list[Line]) -> None:
        """Lines whose write failed, to be written with the next ones."""
        with self.lock:
            self.pending[:0] = lines

    def rows(self, lines: Iterable[Line]) -> list[tuple[Any, ...]]:
        """``lines`` as rows of ``write_lines`` (in the order of its columns)."""
        run, tenant, organization = self.run_id, self.tenant_id, self.organization_id
        return [(run, seq, tenant, organization, at, level, message) for seq, at, level, message in lines]


class _Capture(logging.Handler):
    """The one handler of every run's logger in a process: it hands each record to its run's
    ``RunLog`` (by the logger's name). One handler, not one per run: the logging module keeps
    every handler in a process-wide list, and removing one from it costs a search of the list."""

    def __init__(self, open_logs: dict[str, RunLog]) -> None:
        super().__init__()
        self.open_logs = open_logs

    def emit(self, record: logging.LogRecord) -> None:
        run_log = self.open_logs.get(record.name)
        if run_log is not None:  # None: logged after the target ended, kept nowhere
            run_log.add(record, self)

    def handle(self, record: logging.LogRecord) -> bool:
        # No filters, and no handler-wide lock around every line: each RunLog has its own.
        self.emit(record)
        return True


class RunLogs:
    """The run logs of one process: each run's logger, and the flusher that writes the lines of
    running runs. ``lock`` is held while lines are written, so that lines taken by the flusher
    are committed before a run's outcome says it has finished."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        clock: Clock,
        *,
        every: float = FLUSH_EVERY,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.max_lines = settings.scheduler_run_log_max_lines
        self.max_length = settings.scheduler_run_log_max_line_length
        self.every = every
        self.lock = asyncio.Lock()
        self._dirty: dict[RunLog, None] = {}
        #: The logs of the runs whose targets are running, by their logger's name.
        self._open: dict[str, RunLog] = {}
        self._capture = _Capture(self._open)
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, run_id: str, tenant_id: str | None, organization_id: str | None) -> tuple[RunLogger, RunLog | None]:
        """A run's logger and the log that keeps its lines (None when nothing is kept)."""
        if self.max_lines == 0:
            logger = RunLogger(run_id, self._capture)
            logger.disabled = True
            return logger, None
        self._loop = asyncio.get_running_loop()
        run_log = RunLog(self, run_id, tenant_id, organization_id)
        logger = RunLogger(run_id, self._capture, run_log)
        self._open[logger.name] = run_log
        return logger, run_log

    def close(self, run_log: RunLog) -> None:
        """The target has ended: its lines are left for its outcome's transaction; any it
        logs later (from a thread it left running) are not kept."""
        run_log.closed = True
        self._open.pop(logger_name(run_log.run_id), None)
        self._dirty.pop(run_log, None)

    def mark_dirty(self, run_log: RunLog) -> None:
        self._dirty[run_log] = None
        loop = self._loop
        if loop is None or self._flusher is not None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # logged from a thread of the target's
            running = None
        if running is loop:
            self._start_flusher()
        else:
            loop.call_soon_threadsafe(self._start_flusher)

    def _start_flusher(self) -> None:
        if self._flusher is None and self._dirty:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_while_running())

    async def _flush_while_running(self) -> None:
        try:
            while self._dirty:
                await asyncio.sleep(self.every)
                await self.flush()
        finally:
            self._flusher = None

    async def flush(self) -> None:
        """Write the new lines of every running run, in one statement."""
        async with self.lock:
            dirty, self._dirty = list(self._dirty), {}
            taken = [(run_log, run_log.take()) for run_log in dirty]
            rows = [row for run_log, lines in taken for row in run_log.rows(lines)]
            if not rows:
                return
            try:
                async with self.sessions.begin() as session:
                    await write_lines(session, rows)
            except Exception:
                # The database is away: the lines wait for the next flush, or the outcome.
                log.warning("writing run log lines failed; they are written with the next ones", exc_info=True)
                for run_log, lines in taken:
                    run_log.give_back(lines)
                    if lines and not run_log.closed:
                        self._dirty[run_log] = None

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)


def final_rows(run_logs: Iterable[RunLog | None]) -> list[tuple[Any, ...]]:
    """The unwritten lines of runs whose targets have ended, as rows for ``write_lines``."""
    return [row for run_log in run_logs if run_log is not None for row in run_log.rows(run_log.take())]


async def write_lines(session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await _INSERT_LINES.execute(session, rows)


#: Lines of any number of runs in one statement. A line already there (a write that committed
#: but whose answer was lost, tried again) is left alone. (``WHERE true``: SQLite would read
#: ``ON CONFLICT`` after a bare ``FROM`` as a join's.)
_INSERT_LINES = Unnest(
    "INSERT INTO scheduled_job_run_logs (run_id, seq, tenant_id, organization_id, logged_at, level, message) "
    "SELECT * FROM {rows} WHERE true ON CONFLICT (run_id, seq) DO NOTHING",
    {
        "run_id": sa.String,
        "seq": sa.Integer,
        "tenant_id": sa.String,
        "organization_id": sa.String,
        "logged_at": UTCDateTime,
        "level": sa.String,
        "message": sa.Text,
    },
    json_rows=True,
)
