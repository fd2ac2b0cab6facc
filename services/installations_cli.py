"""`herald installations`: grant users herald's GitHub App installations, revoke, list, show
what GitHub's App events said of one.

A project reads through an installation only if its owner holds a grant of it: nothing else
ties an installation on GitHub to an account on herald. Like `herald tokens`, it works on
DATABASE_URL directly (PostgreSQL, or the standalone mode's SQLite file).
"""

from __future__ import annotations

import getpass
from typing import Annotated, NoReturn

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import installation_grants
from services.cli_database import in_session
from shared.db.schema import GitHubInstallation, User

installations_app = typer.Typer(
    help="Grant users herald's GitHub App installations: who may read through which.",
    no_args_is_help=True,
    add_completion=False,
)

# As the API takes an installation's id (`githubInstallationId`).
Installation = Annotated[
    int,
    typer.Option(
        "--installation",
        metavar="ID",
        min=1,
        max=2**53,
        help="The installation's id: the number ending its settings page's URL on GitHub.",
    ),
]
Email = Annotated[str, typer.Option("--email", help="The user's email.")]


@installations_app.command("grant")
def grant(
    installation: Installation,
    email: Email,
    granted_by: Annotated[
        str | None,
        typer.Option("--by", help="Who grants it, for the record (default: your login name)."),
    ] = None,
) -> None:
    """Let a user's projects read through an installation of herald's GitHub App.

    Grant it only to the user who owns the GitHub account it is installed on (or whom that
    account's owner named): its token reads every repository the installation holds.
    """
    address = email.strip().lower()
    by = (granted_by or _login()).strip() or "operator"

    async def write(session: AsyncSession) -> bool | None:
        async with session.begin():
            user_id = await _user_id(session, address)
            if user_id is None:
                return None
            return await installation_grants.grant(
                session, installation_id=installation, user_id=user_id, granted_by=by
            )

    granted = in_session(write)
    if granted is None:
        _no_user(address)
    if granted:
        typer.echo(f"granted installation {installation} to {address}")
    else:
        typer.echo(f"installation {installation} was granted to {address} already")


@installations_app.command("revoke")
def revoke(installation: Installation, email: Email) -> None:
    """Revoke a grant; the user's projects on that installation stop reading through it."""
    address = email.strip().lower()

    async def write(session: AsyncSession) -> tuple[bool, list[str] | None]:
        async with session.begin():
            user_id = await _user_id(session, address)
            if user_id is None:
                return False, None
            cleared = await installation_grants.revoke(
                session, installation_id=installation, user_id=user_id
            )
            return True, cleared

    known, cleared = in_session(write)
    if not known:
        _no_user(address)
    if cleared is None:
        typer.echo(f"herald: {address} holds no grant of installation {installation}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked installation {installation} from {address}")
    for project_id in cleared:
        # What the project reads with from now on is its own token, else the server's.
        typer.echo(f"{project_id}: no longer reads through installation {installation}")


@installations_app.command("list")
def list_grants(
    installation: Annotated[
        int | None,
        typer.Option("--installation", metavar="ID", help="Only this installation's grants."),
    ] = None,
    email: Annotated[str | None, typer.Option("--email", help="Only this user's grants.")] = None,
) -> None:
    """List grants by installation: installation id, email, granted at, granted by."""

    async def read(session: AsyncSession) -> list[installation_grants.Grant]:
        return await installation_grants.grants(
            session,
            installation_id=installation,
            email=email.strip().lower() if email is not None else None,
        )

    for found in in_session(read):
        granted_at = found.granted_at.isoformat(timespec="seconds")
        typer.echo(f"{found.installation_id}\t{found.email}\t{granted_at}\t{found.granted_by}")


@installations_app.command("show")
def show_installation(installation: Installation) -> None:
    """What GitHub's App events said of an installation (account, status, the repositories it
    may read), and who holds a grant of it."""

    async def read(
        session: AsyncSession,
    ) -> tuple[GitHubInstallation | None, list[installation_grants.Grant]]:
        row = await session.get(GitHubInstallation, installation)
        return row, await installation_grants.grants(session, installation_id=installation)

    row, grants = in_session(read)
    if row is None:
        typer.echo(
            f"installation {installation}: no App event received for it (set the App's webhook "
            "to /api/webhooks/github with HERALD_GITHUB_APP_WEBHOOK_SECRET)"
        )
    else:
        status = "removed" if row.removed_at else "suspended" if row.suspended_at else "active"
        account = f"{row.account_login or '-'} ({row.account_type or '-'})"
        if row.repository_selection == "selected":
            repositories = ", ".join(row.repositories or []) or "none selected"
        else:
            repositories = "all of the account's" if row.repository_selection else "-"
        for label, value in (
            ("installation", str(row.installation_id)),
            ("account", account),
            ("status", status),
            ("repositories", repositories),
            ("updated", row.updated_at.isoformat(timespec="seconds")),
        ):
            typer.echo(f"{label:<13}{value}")
    typer.echo(f"{'granted to':<13}{', '.join(grant.email for grant in grants) or '-'}")


async def _user_id(session: AsyncSession, email: str) -> str | None:
    return await session.scalar(select(User.id).where(User.email == email))


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (a bare container)
        return "operator"


def _no_user(email: str) -> NoReturn:
    typer.echo(
        f"herald: no user has the email {email}: check it, or create the user with "
        f"`herald users create --email {email}`",
        err=True,
    )
    raise typer.Exit(1)
