"""From a job's stored schedule to its runs, windows and `job.due` events.

Shared by the scheduler (scheduled and catch-up runs) and the API (manual runs), so both
compute activity windows and events the same way.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.schema import SCANNED_SKIP, Execution, Project
from shared.events import (
    GitHubCredential,
    JobDue,
    JobType,
    Repository,
    RetryPolicy,
    RunConditions,
    Trigger,
    WebhookTarget,
)
from shared.scheduling import (
    FOLD_FIELD,
    GAP_FIELD,
    never_fires,
    next_runs,
    preset_next_runs,
    preset_previous_run,
    previous_run,
)
from shared.scheduling.zones import forget_zones

CUSTOM = "CUSTOM"


class ScheduledJob(Protocol):
    """A job as scheduling reads it: a stored `CronJob`, or a row the scheduler claimed."""

    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def frequency(self) -> str: ...
    @property
    def schedule(self) -> str: ...
    @property
    def time_config(self) -> dict[str, Any]: ...
    @property
    def jitter(self) -> int: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def retry_delay(self) -> int: ...
    @property
    def timeout_seconds(self) -> int: ...
    @property
    def conditions(self) -> dict[str, Any] | None: ...
    @property
    def type(self) -> str: ...
    @property
    def webhook_url_encrypted(self) -> str | None: ...
    @property
    def webhook_secret_encrypted(self) -> str | None: ...


class Run(Protocol):
    """An execution as its events read it: a stored `Execution`, or a row just inserted."""

    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def scheduled_for(self) -> datetime: ...
    @property
    def trigger(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def window_start(self) -> datetime | None: ...
    @property
    def window_end(self) -> datetime: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def completed_at(self) -> datetime | None: ...
    @property
    def duration(self) -> int | None: ...
    @property
    def items_processed(self) -> int: ...
    @property
    def items_success(self) -> int: ...
    @property
    def items_failed(self) -> int: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def skip_reason(self) -> str | None: ...
    @property
    def missed_count(self) -> int | None: ...


def job_timezone(time_config: dict[str, Any]) -> str:
    return str(time_config.get("timezone") or "UTC")


def next_run_after(job: ScheduledJob, after: datetime) -> datetime:
    """The job's first scheduled instant strictly after `after` (UTC)."""
    key = _schedule_key(job)
    if key is None:
        return _next(job.frequency, job.schedule, job.time_config, after)
    return _next_run(key, after)


def previous_slot(job: ScheduledJob, before: datetime) -> datetime | None:
    """The job's last scheduled instant strictly before `before`, if any."""
    key = _schedule_key(job)
    if key is None:
        return _previous(job.frequency, job.schedule, job.time_config, before)
    return _previous_run(key, before)


def custom_runs(
    schedule: str, time_config: dict[str, Any], after: datetime, count: int
) -> list[datetime]:
    """A CUSTOM job's next `count` runs, in its zone and with its DST policy (`gapPolicy`,
    `foldPolicy` in `time_config`)."""
    return next_runs(
        schedule,
        job_timezone(time_config),
        after,
        count,
        gap_policy=time_config.get(GAP_FIELD),
        fold_policy=time_config.get(FOLD_FIELD),
    )


def _next(frequency: str, schedule: str, time_config: Any, after: datetime) -> datetime:
    # The DST policy is part of `time_config`, so of the cache key (`_schedule_key`).
    if frequency == CUSTOM:
        runs = custom_runs(schedule, time_config, after, 1)
        if not runs:  # only gap policy SKIP can leave a valid expression without a run
            raise never_fires(schedule, job_timezone(time_config))
        return runs[0]
    return preset_next_runs(frequency, time_config, after, 1)[0]


def _previous(frequency: str, schedule: str, time_config: Any, before: datetime) -> datetime | None:
    if frequency == CUSTOM:
        return previous_run(
            schedule,
            job_timezone(time_config),
            before,
            gap_policy=time_config.get(GAP_FIELD),
            fold_policy=time_config.get(FOLD_FIELD),
        )
    return preset_previous_run(frequency, time_config, before)


# Many jobs share a schedule and fall due at the same instant (a burst of "0 9 * * *"): one
# answer per (schedule, instant) serves them all. Errors are not cached (lru_cache re-raises).
# The key holds every item of `time_config`, so a job's DST policy (`gapPolicy`, `foldPolicy`)
# is part of it: jobs differing only in their policy never share an answer.
_Key = tuple[str, str, str, tuple[tuple[str, str, Any], ...]]


def _schedule_key(job: ScheduledJob) -> _Key | None:
    """A hashable form of the job's schedule; None when it cannot be one (then uncached).

    Values keep their type in the key: `True` and `1.0` hash like `1` but validate otherwise.
    """
    time_config = job.time_config
    if not isinstance(time_config, dict):
        return None
    frozen = tuple(sorted((key, type(value).__name__, value) for key, value in time_config.items()))
    try:
        hash(frozen)
    except TypeError:
        return None
    return (job.frequency, job.schedule, job_timezone(time_config), frozen)


def _thawed(frozen: tuple[tuple[str, str, Any], ...]) -> dict[str, Any]:
    return {key: value for key, _, value in frozen}


@functools.lru_cache(maxsize=8192)
def _next_run(key: _Key, after: datetime) -> datetime:
    frequency, schedule, _, frozen = key
    return _next(frequency, schedule, _thawed(frozen), after)


@functools.lru_cache(maxsize=8192)
def _previous_run(key: _Key, before: datetime) -> datetime | None:
    frequency, schedule, _, frozen = key
    return _previous(frequency, schedule, _thawed(frozen), before)


def forget_rules() -> None:
    """Drop every zone and run computed so far: the time-zone rules they followed changed."""
    forget_zones()
    _next_run.cache_clear()
    _previous_run.cache_clear()


def interval_before(job: ScheduledJob, end: datetime) -> datetime | None:
    """One schedule interval before `end`: as far back as the job's slots around `end` lie apart.

    A scheduled first run opens at its previous slot, one interval back. A manual first run
    falls between two slots; opening at the previous one would give it the sliver since then
    (five minutes for a daily job run at 09:05), so it takes a whole interval too: a day for a
    daily job, a week for a weekly one.
    """
    previous = previous_slot(job, end)
    if previous is None:
        return None
    return end - (next_run_after(job, previous) - previous)


def accumulates(conditions: dict[str, Any] | None) -> bool:
    """Whether a job's runs skipped for their conditions leave their activity to the next."""
    return bool(conditions and conditions.get("accumulate"))


# The runs the next window follows, spelled as the partial indexes on (job, window end)
# spell them, so the planner reads each from its index (a bound value, or an OR of the two,
# made it read every run of the job from the table).
SCANNED_RUNS = (text("status = 'COMPLETED'"), text(SCANNED_SKIP))


def opening_after(
    status: str, start: datetime | None, end: datetime, *, accumulate: bool
) -> datetime | None:
    """Where the window after a scanned run opens: at its end, but at its start when it was
    skipped for its conditions and the job accumulates (its activity waits for the next run;
    the skipped runs of an accumulating job all open where the first of them did)."""
    return start if accumulate and status == "SKIPPED" else end


async def window_start_for(
    session: AsyncSession, job: ScheduledJob, window_end: datetime
) -> datetime | None:
    """Where a manual run's activity window opens: after the last scanned run
    (`opening_after`), else one schedule interval before its end (`interval_before`)."""
    latest = [
        select(Execution.status, Execution.window_start, Execution.window_end)
        .where(Execution.job_id == job.id, scanned, Execution.window_end < window_end)
        .order_by(Execution.window_end.desc())
        .limit(1)
        .subquery()
        for scanned in SCANNED_RUNS
    ]
    found = (await session.execute(union_all(*(select(*run.c) for run in latest)))).all()
    last = max(found, key=lambda run: run.window_end, default=None)
    if last is not None:
        opens = opening_after(*last, accumulate=accumulates(job.conditions))
        if opens is not None:
            return opens
    return interval_before(job, window_end)


def repository_of(project: Project) -> Repository:
    return Repository(
        owner=project.github_repo_owner,
        name=project.github_repo_name,
        base_url=project.github_base_url,
        local_path=project.local_repo_path,
    )


def credential_of(project: Project) -> GitHubCredential | None:
    """The project's own GitHub credential for `job.due`: the token stays encrypted."""
    if project.github_installation_id is None and not project.github_token_encrypted:
        return None
    status = project.github_installation_status
    return GitHubCredential(
        installation_id=project.github_installation_id,
        token=project.github_token_encrypted or None,
        installation_status=(
            status
            if project.github_installation_id is not None and status in ("suspended", "removed")
            else None
        ),
    )


def webhook_of(job: ScheduledJob, project: Project) -> WebhookTarget | None:
    """A WEBHOOK job's destination for `job.due`: URL and secret stay encrypted."""
    if job.type != JobType.WEBHOOK:
        return None
    if not (job.webhook_url_encrypted and job.webhook_secret_encrypted):
        return None
    return WebhookTarget(
        url=job.webhook_url_encrypted,
        secret=job.webhook_secret_encrypted,
        job_name=job.name,
        project_name=project.name,
    )


def job_due_event(
    job: ScheduledJob,
    project: Project,
    execution: Run,
    *,
    now: datetime,
    upstream_execution_id: str | None = None,
) -> JobDue:
    """The `job.due` event that starts an execution's pipeline (a dependency run's names the
    upstream execution it follows)."""
    return JobDue(
        occurred_at=now,
        execution_id=execution.id,
        job_id=job.id,
        project_id=project.id,
        attempt=execution.attempt,
        scheduled_for=execution.scheduled_for,
        trigger=Trigger(execution.trigger),
        window_start=execution.window_start,
        window_end=execution.window_end,
        repository=repository_of(project),
        platforms=list(project.platforms or []),
        retry_policy=RetryPolicy(max_retries=job.max_retries, retry_delay=job.retry_delay),
        deadline=now + timedelta(seconds=job.timeout_seconds),
        timeout_seconds=job.timeout_seconds,
        user_id=job.user_id,
        github_credential=credential_of(project),
        conditions=RunConditions.model_validate(job.conditions) if job.conditions else None,
        job_type=JobType(job.type),
        upstream_execution_id=upstream_execution_id,
        webhook=webhook_of(job, project),
    )
