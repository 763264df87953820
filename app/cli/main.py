"""Entry point of the ``mercato`` command."""

from __future__ import annotations

import click

from app.cli.runner import fail
from app.logging import FORMATS, configure_logging
from app.settings import SettingsError, get_settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log-format",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    envvar="LOG_FORMAT",
    help="Logs on stderr: json (one object per line), text, or auto (text on a terminal, else json).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    envvar="LOG_LEVEL",
)
def cli(log_format: str, log_level: str) -> None:
    """Mercato Scheduler: database-managed scheduled jobs with an admin web UI."""
    configure_logging(log_format, log_level)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to DATABASE_URL."""
    from app.persistence.migrate import upgrade

    try:
        settings = get_settings()
    except SettingsError as exc:
        fail(str(exc))
    try:
        upgrade(settings.database_url)
    except Exception as exc:  # alembic and drivers raise many kinds; the message is what matters
        fail(f"migration failed: {exc}")
    click.echo("database is up to date")


def _register_subcommands() -> None:
    # Imported here, not at the top: `mercato --help` and a bad argument answer without loading
    # the web app, the strategies and their libraries (no import cycle is dodged: see
    # tests/test_architecture.py). `app.taskiq_app` is imported only by the commands that need
    # it, as importing it builds the broker from the settings.
    from app.cli.scheduler import scheduler
    from app.cli.serve import serve
    from app.cli.users import users
    from app.cli.worker import worker

    cli.add_command(scheduler)
    cli.add_command(serve)
    cli.add_command(users)
    cli.add_command(worker)


_register_subcommands()


def main() -> None:
    cli(prog_name="mercato")
