"""`herald jobs webhook`: where a WEBHOOK job delivers, and the secret it signs with.

Like `herald projects`, it works on DATABASE_URL directly (PostgreSQL, or the standalone
mode's SQLite file), through the API's own rules (`services.api.webhook_jobs`): a URL the
API would refuse is refused here with the same words, and both are stored encrypted with
HERALD_SECRET_KEY. The URL is read from stdin (it may embed a token): never an argument.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.problems import Problem
from services.api.webhook_jobs import new_secret, receiver_columns
from services.cli_database import in_session
from shared.db.schema import CronJob
from shared.events import JobType
from shared.settings import get_settings

jobs_app = typer.Typer(
    help="A WEBHOOK job's receiver and signing secret.", no_args_is_help=True, add_completion=False
)

# A URL is at most 2,000 characters (the API's rule): a little more is enough to refuse one.
_MOST_READ = 4096


@jobs_app.command("webhook")
def webhook(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="The job's id (cron_...).")],
    url_stdin: Annotated[
        bool,
        typer.Option(
            "--url-stdin",
            help="Deliver to the URL read from stdin (a hidden prompt on a terminal): it stays "
            "out of shell history and the process list. The secret stays.",
        ),
    ] = False,
    renew_secret: Annotated[
        bool,
        typer.Option(
            "--renew-secret",
            help="Make a new signing secret and print it, once: herald cannot show it again.",
        ),
    ] = False,
) -> None:
    """Show where a WEBHOOK job delivers; with options, change its receiver or secret."""
    url = _read_url() if url_stdin else None
    settings = get_settings()

    async def write(session: AsyncSession) -> tuple[CronJob, str | None] | None:
        async with session.begin():
            job = await session.scalar(
                select(CronJob).where(CronJob.id == job_id, CronJob.deleted_at.is_(None))
            )
            if job is None:
                return None
            if job.type != JobType.WEBHOOK:
                _refuse("JOB_ID", f"{job.id} is a {job.type} job: only a WEBHOOK job delivers")
            if url is not None:
                for column, value in receiver_columns(url, job.type, settings).items():
                    setattr(job, column, value)
            secret = None
            if renew_secret:
                secret, job.webhook_secret_encrypted = new_secret(settings)
            if url is not None or renew_secret:
                job.updated_at = datetime.now(UTC)
            return job, secret

    try:
        found = in_session(write)
    except Problem as exc:
        # Never the URL itself: it may embed a token.
        for error in exc.errors or [{"field": "", "message": exc.detail}]:
            option = "--url-stdin" if error["field"] == "webhookUrl" else "--renew-secret"
            typer.echo(f"error: {option}: {error['message']}", err=True)
        raise typer.Exit(2 if exc.status == 422 else 1) from None
    if found is None:
        typer.echo(f"herald: no job {job_id}", err=True)
        raise typer.Exit(1)
    job, secret = found
    typer.echo(f"{job.id}: delivers to {job.webhook_host or '-'}")
    if secret is not None:
        typer.echo(f"signing secret (shown once): {secret}")


def _read_url() -> str:
    if sys.stdin.isatty():
        typed: str = typer.prompt("Webhook URL", hide_input=True, default="", show_default=False)
        url = typed.strip()
    else:
        url = sys.stdin.read(_MOST_READ).strip()
    if not url:
        _refuse("--url-stdin", "stdin held no URL")
    return url


def _refuse(option: str, message: str) -> NoReturn:
    """Exit 2 (a usage error) with one line naming the option at fault, as `projects` does."""
    typer.echo(f"error: {option}: {message}", err=True)
    raise typer.Exit(2)
