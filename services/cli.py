"""The `herald` command line."""

from __future__ import annotations

import asyncio
import importlib
from typing import Annotated

import typer

from shared.accounts import ensure_user
from shared.db.engine import create_engine, session_factory
from shared.db.migrate import upgrade
from shared.scheduling.preview_cli import schedule_app
from shared.settings import get_settings
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
def migrate() -> None:
    """Apply database migrations (run before starting services)."""
    upgrade(get_settings().database_url)
    typer.echo("database is at the latest schema")


@app.command()
def run() -> None:
    """Migrate, seed a demo and run all five services (what `make run` does)."""
    from services.devrun import run_all

    raise typer.Exit(run_all(get_settings()))


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
) -> None:
    """Issue an API token for a user and print it (it is shown only once)."""

    async def go() -> str:
        engine = create_engine(get_settings().database_url)
        async with session_factory(engine)() as session, session.begin():
            user = await ensure_user(session, email=email)
            token = await issue_token(session, user_id=user.id, name=name)
        await engine.dispose()
        return token

    typer.echo(asyncio.run(go()))


@dlq_app.command("list")
def dlq_list(
    queue: Annotated[
        str | None, typer.Option(help="A work queue or its .dlq (default: every one).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Messages shown per queue.")] = 100,
) -> None:
    """Show dead-lettered messages and why they were dead-lettered; nothing is removed."""
    from shared.deadletters import list_dead_letters

    try:
        rows = asyncio.run(list_dead_letters(get_settings().amqp_url, queue=queue, limit=limit))
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
    from shared.deadletters import replay

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
