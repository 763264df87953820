"""``mercato users``: accounts."""

from __future__ import annotations

import click

from app.cli.common import with_runtime


@click.group()
def users() -> None:
    """User accounts."""


@users.command("create")
@click.option("--email", required=True, help="Login email.")
@click.option("--password", required=True, help="At least 10 characters.")
@click.option("--role", required=True, type=click.Choice(["admin", "operator", "employee"]), help="admin: all; operator: view + run; employee: view.")
@click.option("--tenant", default=None, help="Tenant id (created when new).")
@click.option("--org", default=None, help="Organization id inside the tenant (created when new).")
@click.option("--superadmin", is_flag=True, help="Sees and manages every tenant and system schedules.")
@with_runtime
async def create_user(runtime, email, password, role, tenant, org, superadmin) -> None:
    """Create a user."""
    user = await runtime.users.create(
        email, password, role, tenant_id=tenant, organization_id=org, is_superadmin=superadmin
    )
    click.echo(f"created user {user.email} ({user.role}{', superadmin' if superadmin else ''})")
