"""How a CLI command runs: with a runtime, domain errors as one line, JSON or table output."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Concatenate, NoReturn, ParamSpec, TypeVar

import click

from app.domain.errors import Conflict, DomainError, Forbidden, NotFound, ValidationError
from app.runtime import Runtime
from app.settings import SettingsError, get_settings

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def error_line(exc: DomainError) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{field}: {msg}" for field, msg in exc.errors.items())
    if isinstance(exc, (NotFound, Forbidden, Conflict)):
        return str(exc)
    return str(exc) or exc.__class__.__name__


def with_runtime(fn: Callable[Concatenate[Runtime, P], Awaitable[R]]) -> Callable[P, R]:
    """Run an async command body with a Runtime; domain errors become one-line messages."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            settings = get_settings()
        except SettingsError as exc:
            fail(str(exc))

        async def main() -> R:
            runtime = Runtime.create(settings)
            try:
                return await fn(runtime, *args, **kwargs)
            finally:
                await runtime.close()

        try:
            return asyncio.run(main())
        except DomainError as exc:
            fail(error_line(exc))
        except OSError as exc:
            fail(f"cannot reach the database: {exc}")

    return wrapper


def iso(value: datetime | None) -> str:
    return value.isoformat() if value else "-"


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def echo_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
