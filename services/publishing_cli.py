"""`herald projects publishing`: how a project publishes, set and shown from the shell.

Works on DATABASE_URL directly, like `herald projects`, through the API's own rules
(`services.api.publishing.save_credential`): the two doors cannot disagree. A secret is read
from stdin (a hidden prompt on a terminal), never from an argument, so it stays out of shell
history and the process list; the webhook's signing secret is made by herald and printed
once.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.problems import Problem
from services.api.publishing import (
    PublishingBody,
    credentials_of,
    publishing_view,
    save_credential,
)
from services.cli_database import in_session
from shared.db.schema import Project, PublishingCredential
from shared.publishing import NETWORKS, Network
from shared.settings import get_settings

publishing_app = typer.Typer(
    help="How a project publishes: Mastodon, Bluesky, its generic webhook.",
    no_args_is_help=True,
    add_completion=False,
)

# The option that sets each API field, to name it in a refusal.
_OPTIONS = {
    "instanceUrl": "--instance",
    "serviceUrl": "--service",
    "identifier": "--identifier",
    "url": "--url",
    "accessToken": "--secret-stdin",
    "appPassword": "--secret-stdin",
}
_SECRET_FIELD = {"mastodon": "accessToken", "bluesky": "appPassword"}
_MOST_READ = 4096

ProjectId = Annotated[str, typer.Argument(metavar="PROJECT_ID", help="The project's id.")]
NetworkArg = Annotated[str, typer.Argument(metavar="NETWORK", help="mastodon, bluesky or webhook.")]


async def _live(session: AsyncSession, project_id: str) -> Project | None:
    return await session.scalar(
        select(Project).where(Project.id == project_id, Project.deleted_at.is_(None))
    )


@publishing_app.command("show")
def show(project_id: ProjectId) -> None:
    """Which networks the project publishes to, and their non-secret settings."""

    async def read(session: AsyncSession) -> list[PublishingCredential] | None:
        if await _live(session, project_id) is None:
            return None
        return await credentials_of(session, project_id)

    credentials = in_session(read)
    if credentials is None:
        _no_project(project_id)
    for network, shown in publishing_view(credentials).items():
        if not shown["set"]:
            typer.echo(f"{network:<10}not set")
            continue
        details = ", ".join(
            f"{key} {value}" for key, value in shown.items() if key not in ("set", "updatedAt")
        )
        typer.echo(f"{network:<10}set ({details}), saved {shown['updatedAt']}")


@publishing_app.command("set")
def set_credential(
    project_id: ProjectId,
    network: NetworkArg,
    instance: Annotated[
        str | None, typer.Option("--instance", help="Mastodon: the instance's origin.")
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="Bluesky: the PDS origin (bsky.social).")
    ] = None,
    identifier: Annotated[
        str | None, typer.Option("--identifier", help="Bluesky: the handle or DID.")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="Webhook: where posts go.")] = None,
    secret_stdin: Annotated[
        bool,
        typer.Option(
            "--secret-stdin",
            help="Read the Mastodon access token or the Bluesky app password from stdin.",
        ),
    ] = False,
) -> None:
    """Save how the project publishes to NETWORK, replacing what was there."""
    chosen = _network(network)
    fields: dict[str, Any] = {
        "instanceUrl": instance,
        "serviceUrl": service,
        "identifier": identifier,
        "url": url,
    }
    secret_field = _SECRET_FIELD.get(chosen)
    if secret_field is not None:
        if not secret_stdin:
            _refuse("--secret-stdin", f"{chosen} needs its secret, read from stdin")
        fields[secret_field] = _read_secret()
    try:
        body = PublishingBody.model_validate(
            {key: value for key, value in fields.items() if value is not None}
        )
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        _refuse(_OPTIONS.get(str(error["loc"][0]), str(error["loc"][0])), str(error["msg"]))
    settings = get_settings()

    async def write(session: AsyncSession) -> str | None:
        async with session.begin():
            if await _live(session, project_id) is None:
                return None
            _, made = await save_credential(session, project_id, chosen, body, settings)
            return made or ""

    try:
        made = in_session(write)
    except Problem as problem:
        if problem.errors:
            field = problem.errors[0]["field"]
            _refuse(_OPTIONS.get(field, field), problem.errors[0]["message"])
        typer.echo(f"herald: {problem.detail}; nothing was changed", err=True)
        raise typer.Exit(1) from None
    if made is None:
        _no_project(project_id)
    typer.echo(f"{project_id}: {chosen} saved")
    if made:
        typer.echo(f"signing secret (shown this once): {made}")


@publishing_app.command("remove")
def remove(project_id: ProjectId, network: NetworkArg) -> None:
    """Forget how the project publishes to NETWORK."""
    chosen = _network(network)

    async def write(session: AsyncSession) -> bool:
        async with session.begin():
            if await _live(session, project_id) is None:
                return False
            credential = await session.get(PublishingCredential, (project_id, chosen))
            if credential is not None:
                await session.delete(credential)
            return True

    if not in_session(write):
        _no_project(project_id)
    typer.echo(f"{project_id}: {chosen} removed")


def _network(name: str) -> Network:
    for network in NETWORKS:
        if network == name:
            return network
    _refuse("NETWORK", f"must be one of {', '.join(NETWORKS)}")


def _read_secret() -> str:
    if sys.stdin.isatty():
        typed: str = typer.prompt("Secret", hide_input=True, default="", show_default=False)
        secret = typed.strip()
    else:
        secret = sys.stdin.read(_MOST_READ).strip()
    if not secret:
        _refuse("--secret-stdin", "stdin held no secret")
    return secret


def _refuse(option: str, message: str) -> NoReturn:
    typer.echo(f"error: {option}: {message}", err=True)
    raise typer.Exit(2)


def _no_project(project_id: str) -> NoReturn:
    typer.echo(f"herald: no project {project_id}", err=True)
    raise typer.Exit(1)
