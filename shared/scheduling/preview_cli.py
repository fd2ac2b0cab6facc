"""Command line preview of a schedule's next runs (``herald schedule preview``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from shared.scheduling.errors import ScheduleError
from shared.scheduling.preview import preview_preset_runs, preview_runs
from shared.scheduling.zones import load_zone

schedule_app = typer.Typer(no_args_is_help=True, add_completion=False)


@schedule_app.callback()
def _schedule() -> None:
    """Inspect schedules."""


# The option that gives each field a ScheduleError can name.
_PRESET_OPTIONS = {
    "frequency": "--frequency",
    "hour": "--hour",
    "minute": "--minute",
    "dayOfWeek": "--day-of-week",
    "dayOfMonth": "--day-of-month",
}
_SHARED_OPTIONS = {
    "timezone": "--tz",
    "count": "--count",
    "gapPolicy": "--gap-policy",
    "foldPolicy": "--fold-policy",
}


def _option_of(field: str | None, *, preset: bool) -> str:
    """Name the option (or the EXPRESSION argument) a problem's field came from."""
    name = field or ""
    if name in _SHARED_OPTIONS:
        return _SHARED_OPTIONS[name]
    if preset:
        return _PRESET_OPTIONS.get(name, "--frequency")
    # Cron's own fields (minute, day-of-week, ...) are all parts of the expression.
    return "EXPRESSION"


def _parse_after(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 date-time: {text!r}") from exc
    if moment.tzinfo is None:
        raise typer.BadParameter("--after needs a UTC offset, e.g. 2025-03-08T12:00:00Z")
    return moment


@schedule_app.command("preview")
def preview(
    expression: Annotated[
        str | None, typer.Argument(help="Cron expression, e.g. '30 2 * * *' or '@daily'.")
    ] = None,
    tz: Annotated[str, typer.Option("--tz", help="IANA time zone.")] = "UTC",
    count: Annotated[int, typer.Option("--count", help="How many runs to show.")] = 10,
    frequency: Annotated[
        str | None, typer.Option("--frequency", help="Preset: DAILY, WEEKLY or MONTHLY.")
    ] = None,
    hour: Annotated[int | None, typer.Option("--hour", help="Preset hour (0-23).")] = None,
    minute: Annotated[int | None, typer.Option("--minute", help="Preset minute (0-59).")] = 0,
    day_of_week: Annotated[
        int | None, typer.Option("--day-of-week", help="WEEKLY preset day, 0=Sunday..6.")
    ] = None,
    day_of_month: Annotated[
        int | None, typer.Option("--day-of-month", help="MONTHLY preset day, 1-31.")
    ] = None,
    after: Annotated[
        str | None, typer.Option("--after", help="Start after this ISO time (default: now).")
    ] = None,
    gap_policy: Annotated[
        str | None,
        typer.Option(
            "--gap-policy",
            help="A fixed-time job's time that does not exist (clocks go forward): SHIFT "
            "(default) runs at the end of the gap, SKIP has no run that day.",
        ),
    ] = None,
    fold_policy: Annotated[
        str | None,
        typer.Option(
            "--fold-policy",
            help="A fixed-time job's time that occurs twice (clocks go back): FIRST "
            "(default) runs at the first occurrence, SECOND at the second.",
        ),
    ] = None,
) -> None:
    """Print a schedule's next runs in local time and UTC, marking DST effects.

    --gap-policy and --fold-policy apply to a job at a fixed local time (a preset, or an
    expression whose minute and hour fields do not start with '*'); on another they are
    refused, as the API refuses them.
    """
    start = _parse_after(after)
    # The API takes the policies in capitals; a person may type them either way.
    gap_policy = gap_policy.upper() if gap_policy else None
    fold_policy = fold_policy.upper() if fold_policy else None
    try:
        if frequency is not None:
            if expression is not None:
                raise typer.BadParameter("give either an expression or --frequency, not both")
            config: dict[str, Any] = {
                "hour": hour,
                "minute": minute,
                "timezone": tz,
                "dayOfWeek": day_of_week,
                "dayOfMonth": day_of_month,
            }
            for key, value in (("gapPolicy", gap_policy), ("foldPolicy", fold_policy)):
                if value is not None:
                    config[key] = value
            rows = preview_preset_runs(frequency, config, start, count)
        elif expression is not None:
            rows = preview_runs(
                expression, tz, start, count, gap_policy=gap_policy, fold_policy=fold_policy
            )
        else:
            raise typer.BadParameter("give a cron expression or --frequency")
    except ScheduleError as exc:
        for problem in exc.problems:
            where = _option_of(problem.field, preset=frequency is not None)
            typer.echo(f"error: {where}: {problem.message}", err=True)
        raise typer.Exit(code=2) from exc
    zone = load_zone(tz)
    typer.echo(f"{'local':<28}  {'utc':<20}  note")
    for row in rows:
        utc = row["utc"] or ""
        local = datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone(zone)
        label = local.strftime("%Y-%m-%d %H:%M %Z") + local.strftime(" (%z)")
        typer.echo(f"{label:<28}  {utc:<20}  {row['note'] or ''}".rstrip())
