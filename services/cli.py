"""The `herald` command line."""

from __future__ import annotations

import asyncio
import importlib

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
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
tokens_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")
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


def main() -> None:
    app()
