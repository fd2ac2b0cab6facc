"""The `herald` command line."""

from __future__ import annotations

import asyncio
import importlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select, update

from services.installations_cli import installations_app
from services.jobs_cli import jobs_app
from services.posts_cli import posts_app
from services.projects_cli import projects_app
from shared.accounts import ensure_user
from shared.db.engine import create_engine, session_factory
from shared.db.migrate import upgrade
from shared.db.schema import ApiToken, User
from shared.scheduling.preview_cli import schedule_app
from shared.settings import Settings, get_settings
from shared.tokens import issue_token

app = typer.Typer(
    help="herald: scheduled jobs that turn repository activity into posts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
dlq_app = typer.Typer(help="Inspect and replay dead-lettered messages.", no_args_is_help=True)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(dlq_app, name="dlq")
app.add_typer(tokens_app, name="tokens")
app.add_typer(projects_app, name="projects")
app.add_typer(installations_app, name="installations")
app.add_typer(posts_app, name="posts")
app.add_typer(jobs_app, name="jobs")
app.add_typer(schedule_app, name="schedule")


def _service(name: str) -> None:
    importlib.import_module(f"services.{name}.main").main()


@app.command()
def api() -> None:
    """Run the API service."""
    _service("api")


@app.command()
def scheduler() -> None:
    """Run the scheduler service."""
    _service("scheduler")


@app.command()
def scanner() -> None:
    """Run the scanner service."""
    _service("scanner")


@app.command()
def generator() -> None:
    """Run the generator service."""
    _service("generator")


@app.command()
def notifier() -> None:
    """Run the notifier service."""
    _service("notifier")


@app.command()
def publisher() -> None:
    """Run the publisher service."""
    _service("publisher")


@app.command()
def migrate() -> None:
    """Apply database migrations (run before starting services)."""
    upgrade(get_settings().database_url)
    typer.echo("database is at the latest schema")


@app.command()
def run() -> None:
    """Migrate, seed a demo and run all six services (what `make run` does).

    Where PostgreSQL or RabbitMQ does not answer, runs the standalone mode instead.
    """
    from services.devrun import run_all

    raise typer.Exit(run_all(get_settings()))


@app.command()
def standalone() -> None:
    """Run all six services in this process on SQLite and an in-process bus (no servers)."""
    from services.standalone.main import run_standalone

    raise typer.Exit(run_standalone(get_settings(), reason="asked for with `herald standalone`"))


@app.command("export")
def export_data(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Database URL to export (default: DATABASE_URL when set, else the "
            "standalone mode's SQLite file when there is one, else the default database).",
        ),
    ] = None,
) -> None:
    """Export every project and job as JSON (to move to another herald, e.g. distributed)."""
    from services.standalone.transfer import export_records

    settings = get_settings()
    if source is None:
        source = _configured_database(settings)

    async def go() -> dict[str, object]:
        engine = create_engine(source)
        try:
            return await export_records(session_factory(engine))
        finally:
            await engine.dispose()

    text = json.dumps(asyncio.run(go()), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"exported to {output}", err=True)


def _configured_database(settings: Settings) -> str:
    """The database `herald export` reads when not told: the one this environment names
    (DATABASE_URL), else the standalone mode's file; never a default nobody chose."""
    from services.standalone.datafile import DataFileError, check_database, data_files

    if "database_url" in settings.model_fields_set:
        return settings.database_url
    files = data_files(settings)
    if not files.database.exists():
        raise typer.BadParameter(
            f"nothing to export: DATABASE_URL is not set and there is no standalone data at "
            f"{files.database} (set DATABASE_URL, run where `herald standalone` ran, or pass "
            "--from)"
        )
    try:
        check_database(files.database)
    except DataFileError as exc:
        raise typer.BadParameter(str(exc)) from None
    return files.url


@app.command("import")
def import_data(
    path: Annotated[Path, typer.Argument(help="A file written by `herald export`.")],
) -> None:
    """Import projects and jobs from `herald export` into DATABASE_URL (migrated first)."""
    from services.standalone.transfer import TransferError, import_records

    database_url = get_settings().database_url
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="PATH") from None
    upgrade(database_url)

    async def go() -> tuple[int, int]:
        engine = create_engine(database_url)
        try:
            return await import_records(
                session_factory(engine),
                data,
                secret_key=get_settings().secret_key.get_secret_value(),
            )
        finally:
            await engine.dispose()

    try:
        projects, jobs = asyncio.run(go())
    except TransferError as exc:
        raise typer.BadParameter(str(exc), param_hint="PATH") from None
    typer.echo(f"imported {projects} project(s) and {jobs} job(s)")


@app.command()
def definitions() -> None:
    """Print the RabbitMQ definitions of herald's topology (deploy/rabbitmq/definitions.json)."""
    from shared.definitions import render

    typer.echo(render(), nl=False)


@app.command()
def asyncapi() -> None:
    """Print the AsyncAPI document of herald's events."""
    from shared.asyncapi import render

    typer.echo(render(), nl=False)


@users_app.command("create")
def create_user(
    email: str = typer.Option(..., help="The user's email address."),
    name: str = typer.Option("", help="Display name."),
    timezone: str = typer.Option("UTC", help="IANA time zone used to display times."),
) -> None:
    """Create a user (or find an existing one) and print its id."""

    async def go() -> str:
        engine = create_engine(get_settings().database_url)
        async with session_factory(engine)() as session, session.begin():
            user = await ensure_user(session, email=email, name=name, timezone=timezone)
            user_id = user.id
        await engine.dispose()
        return user_id

    typer.echo(asyncio.run(go()))


@tokens_app.command("create")
def create_token(
    email: str = typer.Option(..., help="Whose token: the user's email."),
    name: str = typer.Option("", help="A label for the token."),
    create_user: bool = typer.Option(
        False, "--create-user", help="Create the user first when no user has this email."
    ),
) -> None:
    """Issue an API token for a user and print it (it is shown only once)."""

    async def go() -> str | None:
        engine = create_engine(get_settings().database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                known = await session.scalar(select(User).where(User.email == email.lower()))
                if known is None and not create_user:
                    return None
                user = known or await ensure_user(session, email=email)
                return await issue_token(session, user_id=user.id, name=name)
        finally:
            await engine.dispose()

    token = asyncio.run(go())
    if token is None:
        # A typo must not quietly become a new user holding a token.
        typer.echo(
            f"no user has the email {email.lower()}: check it, or create the user with "
            f"`herald users create --email {email}` (or pass --create-user)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(token)


@tokens_app.command("list")
def list_tokens(
    email: str = typer.Option(..., help="Whose tokens: the user's email."),
) -> None:
    """List a user's tokens, newest first: id, prefix, name, created, revoked (no secrets)."""

    async def go() -> list[ApiToken]:
        engine = create_engine(get_settings().database_url)
        try:
            async with session_factory(engine)() as session:
                return list(
                    (
                        await session.scalars(
                            select(ApiToken)
                            .join(User, User.id == ApiToken.user_id)
                            .where(User.email == email.strip().lower())
                            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
                        )
                    ).all()
                )
        finally:
            await engine.dispose()

    for token in asyncio.run(go()):
        revoked = token.revoked_at.isoformat(timespec="seconds") if token.revoked_at else "live"
        created = token.created_at.isoformat(timespec="seconds")
        typer.echo(f"{token.id}\t{token.prefix}…\t{token.name or '-'}\t{created}\t{revoked}")


@tokens_app.command("revoke")
def revoke_token(token_id: str = typer.Argument(..., help="The token's id (tok_...).")) -> None:
    """Revoke a token at once, and the console sessions it began."""

    async def go() -> bool:
        engine = create_engine(get_settings().database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                revoked = await session.execute(
                    update(ApiToken)
                    .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                    .values(revoked_at=datetime.now(UTC))
                )
                if revoked.rowcount:  # type: ignore[attr-defined]
                    return True
                return await session.get(ApiToken, token_id) is not None
        finally:
            await engine.dispose()

    if not asyncio.run(go()):
        typer.echo(f"herald: no token {token_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {token_id}")


@dlq_app.command("list")
def dlq_list(
    queue: Annotated[
        str | None, typer.Option(help="A work queue or its .dlq (default: every one).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Messages shown per queue.")] = 100,
    standalone: Annotated[
        bool, typer.Option("--standalone", help="Read the standalone mode's queue file.")
    ] = False,
) -> None:
    """Show dead-lettered messages and why they were dead-lettered; nothing is removed."""
    from services.deadletters import list_dead_letters

    settings = get_settings()
    try:
        if standalone:
            from services.standalone.datafile import data_files
            from services.standalone.deadletters import list_standalone_dead_letters

            queues = data_files(settings).queues
            if not queues.exists():
                raise typer.BadParameter(
                    f"no standalone data at {queues}", param_hint="--standalone"
                )
            found = list_standalone_dead_letters(queues, queue=queue, limit=limit)
        else:
            found = list_dead_letters(settings.amqp_url, queue=queue, limit=limit)
        rows = asyncio.run(found)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not rows:
        typer.echo("no dead letters")
        return
    for row in rows:
        typer.echo(
            f"{row.queue}  {row.message_id or '-'}  {row.routing_key}  reason={row.reason}  "
            f"execution={row.execution_id or '-'}\n    {row.excerpt}"
        )


@dlq_app.command("replay")
def dlq_replay(
    queue: str = typer.Option(..., help="The work queue (or its .dlq) to replay into."),
    message_id: Annotated[
        list[str] | None, typer.Option("--id", help="Replay only these message ids.")
    ] = None,
    replay_all: Annotated[
        bool, typer.Option("--all", help="Replay every message of the queue.")
    ] = False,
) -> None:
    """Send dead letters back to their work queue, confirmed before they leave the .dlq."""
    from services.deadletters import replay

    if not message_id and not replay_all:
        raise typer.BadParameter("name messages with --id, or pass --all")
    ids = None if replay_all else set(message_id or ())
    try:
        count = asyncio.run(replay(get_settings().amqp_url, queue=queue, message_ids=ids))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"replayed {count} message(s) into {queue.removesuffix('.dlq')}")


def main() -> None:
    app()
