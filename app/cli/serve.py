"""``mercato serve``: the web app (and, by default, the local poller inside it)."""

from __future__ import annotations

import click

from app.cli.runner import fail
from app.settings import SettingsError, get_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--no-scheduler", is_flag=True, help="Do not run the local poller in this process (also: SCHEDULER_EMBEDDED=false)."
)
def serve(host: str, port: int, no_scheduler: bool) -> None:
    """Run the web app."""
    import uvicorn

    from app.web.app import create_app

    try:
        settings = get_settings()
    except SettingsError as exc:
        fail(str(exc))
    app = create_app(settings, run_scheduler=settings.embedded_scheduler and not no_scheduler)
    # log_config=None: uvicorn's loggers go through the one setup of the mercato command (JSON lines).
    # proxy_headers=False: the app believes X-Forwarded-* from TRUSTED_PROXIES only (create_app);
    # uvicorn's own handling would trust 127.0.0.1 (or FORWARDED_ALLOW_IPS) besides.
    uvicorn.run(app, host=host, port=port, log_level="info", log_config=None, proxy_headers=False)
