"""``mercato users``: accounts."""

from __future__ import annotations

import click

from app.cli.runner import echo_table, iso, with_runtime
from app.runtime import Runtime


@click.group()
def users() -> None:
    """User accounts."""


@users.command("create")
@click.option("--email", required=True, help="Login email.")
@click.option("--password", required=True, help="At least 10 characters.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "operator", "employee"]),
    help="admin: all; operator: view + run; employee: view.",
)
@click.option("--tenant", default=None, help="Tenant id (created when new).")
@click.option("--org", default=None, help="Organization id inside the tenant (created when new).")
@click.option("--superadmin", is_flag=True, help="Sees and manages every tenant and system schedules.")
@with_runtime
async def create_user(
    runtime: Runtime,
    email: str,
    password: str,
    role: str,
    tenant: str | None,
    org: str | None,
    superadmin: bool,
) -> None:
    """Create a user."""
    user = await runtime.users.create(
        email, password, role, tenant_id=tenant, organization_id=org, is_superadmin=superadmin
    )
    click.echo(f"created user {user.email} ({user.role}{', superadmin' if superadmin else ''})")


@users.command("disable")
@click.option("--email", required=True, help="The user to disable.")
@with_runtime
async def disable_user(runtime: Runtime, email: str) -> None:
    """Disable a user: their sessions end now; they cannot sign in, nor their API tokens be used,
    until they are enabled again."""
    user = await runtime.users.set_active(email, False)
    live = [t for t in await runtime.credentials.tokens_of(user.id) if t.revoked_at is None]
    click.echo(f"disabled {user.email}; signed out everywhere")
    if live:
        click.echo(
            f"{len(live)} API token{'s' if len(live) != 1 else ''} refused until enabled again; to end "
            f"{'them' if len(live) != 1 else 'it'} for good: mercato users token revoke ID (see 'token list')"
        )


@users.command("enable")
@click.option("--email", required=True, help="The user to enable.")
@with_runtime
async def enable_user(runtime: Runtime, email: str) -> None:
    """Enable a disabled user: they can sign in again (their old sessions stay ended)."""
    user = await runtime.users.set_active(email, True)
    click.echo(f"enabled {user.email}")


@users.group("token")
def token() -> None:
    """API tokens: for scripts calling the JSON API with 'Authorization: Bearer <token>'."""


@token.command("create")
@click.option("--email", required=True, help="The user the token acts as (same permissions and scope).")
@click.option("--name", required=True, help="What the token is for, e.g. 'deploy script' (1-100 characters).")
@with_runtime
async def create_token(runtime: Runtime, email: str, name: str) -> None:
    """Create a token and print its secret: shown this once, stored only as a hash."""
    user = await runtime.credentials.user_by_email(email)
    issued = await runtime.credentials.issue_token(user.id, name)
    click.echo(issued.secret)
    click.echo(
        f"token {issued.token.id} ({issued.token.name}) for {user.email}; the secret above is not shown again",
        err=True,
    )


@token.command("list")
@click.option("--email", required=True, help="Whose tokens.")
@with_runtime
async def list_tokens(runtime: Runtime, email: str) -> None:
    """A user's tokens (never their secrets)."""
    user = await runtime.credentials.user_by_email(email)
    tokens = await runtime.credentials.tokens_of(user.id)
    if not tokens:
        click.echo(f"{user.email} has no API tokens")
        return
    echo_table(
        ["ID", "NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED"],
        [[t.id, t.name, f"{t.prefix}…", iso(t.created_at), iso(t.last_used_at), iso(t.revoked_at)] for t in tokens],
    )


@token.command("revoke")
@click.argument("token_id")
@with_runtime
async def revoke_token(runtime: Runtime, token_id: str) -> None:
    """Revoke TOKEN_ID (see 'token list'): requests with it are refused from now on."""
    revoked = await runtime.credentials.revoke_token(token_id)
    click.echo(f"revoked token {revoked.id} ({revoked.name}) at {iso(revoked.revoked_at)}")
