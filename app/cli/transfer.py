"""``mercato scheduler export|import``: schedules as a YAML file (the format of ``app.domain.transfer``)."""

from __future__ import annotations

import sys
from typing import BinaryIO

import click

from app.cli.runner import with_runtime
from app.domain import transfer
from app.domain.errors import ValidationError
from app.runtime import Runtime


@click.command("export")
@click.option(
    "--scope", type=click.Choice(["system", "organization", "tenant"]), default=None, help="Only this scope type."
)
@click.option("--tenant", default=None, help="Only this tenant's schedules.")
@with_runtime
async def export_schedules(runtime: Runtime, scope: str | None, tenant: str | None) -> None:
    """Print every live schedule as YAML (redirect it to a file: > schedules.yaml)."""
    from app.strategies.manual import cli_actor

    text = await transfer.export_schedules(runtime.scheduler, cli_actor(), scope_type=scope, tenant_id=tenant)
    click.echo(text, nl=False)


@click.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Only print what would change.")
@with_runtime
async def import_schedules(runtime: Runtime, file: BinaryIO, dry_run: bool) -> None:
    """Create or update schedules from FILE ('-' for stdin), by id, all or nothing.

    Every schedule is validated first: one error and nothing is written. Prints one line per
    schedule: create, update or unchanged.
    """
    from app.strategies.manual import cli_actor

    max_bytes = runtime.settings.scheduler_max_import_bytes
    data = file.read(max_bytes + 1)  # one byte more tells a file over the limit
    try:
        plan = await transfer.import_schedules(runtime.scheduler, data, cli_actor(), dry_run=dry_run)
    except transfer.FileTooLarge as exc:
        click.echo(f"nothing imported: {exc.errors['file']} (SCHEDULER_MAX_IMPORT_BYTES={max_bytes})", err=True)
        sys.exit(1)
    except ValidationError as exc:
        for field, message in exc.errors.items():
            click.echo(f"{field}: {message}", err=True)
        click.echo(f"nothing imported: {len(exc.errors)} error{'s' if len(exc.errors) != 1 else ''}", err=True)
        sys.exit(1)
    width = max((len(action) for _, action in plan.items), default=0)
    for job_id, action in plan.items:
        click.echo(f"{action.ljust(width)}  {job_id}")
    click.echo(plan.summary())
