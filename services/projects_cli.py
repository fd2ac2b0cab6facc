"""`herald projects`: list and show projects, connect one to the GitHub credential it reads with,
see the GitHub webhook deliveries it received.

Like `herald tokens`, it works on DATABASE_URL directly (PostgreSQL, or the standalone
mode's SQLite file). A credential goes through the API's own rules: `UpdateProject` validates
it and `credential_columns` refuses and encrypts it, so the two doors cannot disagree.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.credentials import CredentialRefusedError, credential_columns, ensure_granted
from services.api.deliveries import recent_deliveries
from services.api.pagination import MAX_LIMIT
from services.api.requests import UpdateProject
from services.api.views import credential_in_use, project_view
from services.cli_database import in_session
from services.publishing_cli import publishing_app
from shared.db.schema import Project, User
from shared.secrets import SecretKeyError
from shared.settings import get_settings

projects_app = typer.Typer(
    help="List projects and connect them to GitHub.", no_args_is_help=True, add_completion=False
)
projects_app.add_typer(publishing_app, name="publishing")

# The option of `connect` that sets each API field, to name it in a refusal.
_OPTIONS = {"githubInstallationId": "--installation", "githubToken": "--token-stdin"}
# A token is at most 2,000 characters (the API's rule refuses longer): reading a little more
# is enough to refuse a longer one without reading a whole file piped in by mistake.
_MOST_READ = 4096


async def _live_project(session: AsyncSession, project_id: str) -> Project | None:
    return await session.scalar(
        select(Project).where(Project.id == project_id, Project.deleted_at.is_(None))
    )


def repository_of(project: Project) -> str:
    """`owner/name` (with the host of an Enterprise server), `local:PATH`, or `-`."""
    if project.github_repo_owner and project.github_repo_name:
        repository = f"{project.github_repo_owner}/{project.github_repo_name}"
        if project.github_base_url:
            host = project.github_base_url.split("://", 1)[-1].split("/", 1)[0]
            repository += f" on {host}"
        return repository
    if project.local_repo_path:
        return f"local:{project.local_repo_path}"
    return "-"


def budget_of(rate_limit: dict[str, Any] | None) -> str:
    """`remaining/limit` of the hourly budget as the latest scan saw it, or `-` unknown."""
    if not rate_limit:
        return "-"
    return f"{rate_limit['remaining']}/{rate_limit['limit']}"


@projects_app.command("list")
def list_projects(
    email: Annotated[str | None, typer.Option("--email", help="Only this user's projects.")] = None,
) -> None:
    """List projects, oldest first: id, name, repository, credential, GitHub budget left."""

    async def read(session: AsyncSession) -> list[Project]:
        statement = select(Project).where(Project.deleted_at.is_(None))
        if email is not None:
            statement = statement.join(User, User.id == Project.user_id).where(
                User.email == email.strip().lower()
            )
        statement = statement.order_by(Project.created_at, Project.id)
        return list((await session.scalars(statement)).all())

    for project in in_session(read):
        credential = credential_in_use(project) or "-"
        typer.echo(
            f"{project.id}\t{project.name}\t{repository_of(project)}\t{credential}\t"
            f"{budget_of(project.github_rate_limit)}"
        )


@projects_app.command("show")
def show_project(
    project_id: Annotated[
        str, typer.Argument(metavar="PROJECT_ID", help="The project's id (prj_...).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the project as the API shows it.")
    ] = False,
) -> None:
    """Show a project and its GitHub credential (a stored token only as `set`, never itself)."""

    async def read(session: AsyncSession) -> tuple[Project, str] | None:
        found = (
            await session.execute(
                select(Project, User.email)
                .join(User, User.id == Project.user_id)
                .where(Project.id == project_id, Project.deleted_at.is_(None))
            )
        ).first()
        return None if found is None else (found[0], found[1])

    found = in_session(read)
    if found is None:
        _no_project(project_id)
    project, owner = found
    if as_json:
        typer.echo(json.dumps(project_view(project), indent=2, ensure_ascii=False))
        return
    limit = project.github_rate_limit
    for label, value in (
        ("id", project.id),
        ("name", project.name),
        ("owner", owner),
        ("repository", repository_of(project)),
        ("credential", credential_in_use(project) or "-"),
        ("installation", _installation_of(project)),
        ("token", "set" if project.github_token_encrypted else "not set"),
        ("budget", budget_of(limit) + (f" until {limit['resetAt']}" if limit else "")),
    ):
        typer.echo(f"{label:<13}{value}")


@projects_app.command("connect")
def connect_project(
    project_id: Annotated[
        str, typer.Argument(metavar="PROJECT_ID", help="The project's id (prj_...).")
    ],
    installation: Annotated[
        int | None,
        typer.Option(
            "--installation",
            metavar="ID",
            help="Read through herald's GitHub App, this installation of it: one granted to "
            "the project's owner (`herald installations grant`).",
        ),
    ] = None,
    token_stdin: Annotated[
        bool,
        typer.Option(
            "--token-stdin",
            help="Read with the project's own GitHub token, stored encrypted with "
            "HERALD_SECRET_KEY. Read from stdin (a hidden prompt on a terminal), never from "
            "an argument: it stays out of shell history and the process list.",
        ),
    ] = False,
    use_global: Annotated[
        bool,
        typer.Option(
            "--global", help="Forget the project's own credential: the server's one applies."
        ),
    ] = False,
) -> None:
    """Set the one GitHub credential a project reads with, replacing the one it had.

    Give exactly one of --installation, --token-stdin, --global.
    """
    chosen = [
        option
        for option, given in (
            ("--installation", installation is not None),
            ("--token-stdin", token_stdin),
            ("--global", use_global),
        )
        if given
    ]
    if len(chosen) != 1:
        _refuse(
            " and ".join(chosen) or "no credential",
            "give exactly one of --installation, --token-stdin, --global",
        )
    token = _read_token() if token_stdin else ""
    changes = _validated(installation=installation, token=token)
    settings = get_settings()

    async def write(session: AsyncSession) -> Project | None:
        async with session.begin():
            project = await _live_project(session, project_id)
            if project is None:
                return None
            columns = credential_columns(settings, changes, project.github_base_url)
            await ensure_granted(session, columns, user_id=project.user_id)
            for column, value in columns.items():
                setattr(project, column, value)
            project.updated_at = datetime.now(UTC)
            return project

    try:
        project = in_session(write)
    except CredentialRefusedError as exc:
        _refuse(_OPTIONS[exc.field], exc.message)
    except SecretKeyError as exc:
        typer.echo(f"herald: {exc.message}; nothing was changed", err=True)
        raise typer.Exit(1) from None
    if project is None:
        _no_project(project_id)
    typer.echo(f"{project.id}: credential {_described(project)}")


@projects_app.command("deliveries")
def project_deliveries(
    project_id: Annotated[
        str, typer.Argument(metavar="PROJECT_ID", help="The project's id (prj_...).")
    ],
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="How many, newest first.")
    ] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print them as the API shows them.")
    ] = False,
) -> None:
    """The project's recent GitHub webhook deliveries and what each came to, newest first:
    received, delivery id, event and action, outcome (the runs it started, or why none)."""

    async def read(session: AsyncSession) -> list[dict[str, Any]] | None:
        if await _live_project(session, project_id) is None:
            return None
        rows, _ = await recent_deliveries(session, project_id, limit=limit, cursor=None)
        return rows

    rows = in_session(read)
    if rows is None:
        _no_project(project_id)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        event = f"{row['event']}/{row['action']}" if row["action"] else row["event"]
        if row["outcome"] == "started":
            came_to = "started " + ", ".join(run["executionId"] for run in row["executions"])
        else:
            came_to = f"{row['outcome']}" + (f": {row['reason']}" if row["reason"] else "")
        again = f"\t(sent again {row['redeliveries']}x)" if row["redeliveries"] else ""
        typer.echo(f"{row['receivedAt']}\t{row['deliveryId']}\t{event}\t{came_to}{again}")


def _installation_of(project: Project) -> str:
    if project.github_installation_id is None:
        return "-"
    status = project.github_installation_status
    return f"{project.github_installation_id}" + (f" ({status})" if status else "")


def _read_token() -> str:
    """The token on stdin, surrounding whitespace (the newline of `echo`) left out."""
    if sys.stdin.isatty():
        typed: str = typer.prompt("GitHub token", hide_input=True, default="", show_default=False)
        token = typed.strip()
    else:
        token = sys.stdin.read(_MOST_READ).strip()
    if not token:
        _refuse(
            "--token-stdin",
            "stdin held no token: pipe one in (`gh auth token | herald projects connect "
            "PROJECT_ID --token-stdin`), or pass --global for the server's credential",
        )
    return token


def _validated(*, installation: int | None, token: str) -> dict[str, Any]:
    """The credential change as the API's `UpdateProject` validates it, refused by option.

    The one credential given replaces the other: a token beside an installation would never
    be read, and an installation would shadow a new token.
    """
    body = {"githubInstallationId": installation, "githubToken": token}
    try:
        return UpdateProject.model_validate(body).model_dump(exclude_unset=True)
    except ValidationError as exc:
        # Never the input itself: it may be the token.
        error = exc.errors(include_input=False, include_url=False)[0]
        _refuse(_OPTIONS[str(error["loc"][0])], str(error["msg"]))


def _described(project: Project) -> str:
    credential = credential_in_use(project)
    if credential == "app":
        return f"app (installation {project.github_installation_id})"
    if credential == "token":
        return "token (its own, stored encrypted)"
    if credential == "global":
        return "global (the server's credential)"
    return "- (it names no GitHub repository)"


def _refuse(option: str, message: str) -> NoReturn:
    """Exit 2 (a usage error) with one line naming the option at fault, as `schedule` does."""
    typer.echo(f"error: {option}: {message}", err=True)
    raise typer.Exit(2)


def _no_project(project_id: str) -> NoReturn:
    typer.echo(f"herald: no project {project_id}", err=True)
    raise typer.Exit(1)
