"""What one user may create and run: records per user, manual runs per job per minute, runs
GitHub's deliveries start per project per minute.

Both are counted in the database of record, in the transaction that would add one more, under
a row lock (the user's, the job's), so replicas and concurrent requests cannot overshoot.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.problems import Problem
from shared.db.schema import CronJob, Execution, Project, User
from shared.events import Trigger
from shared.metrics import API_REFUSALS

WINDOW = timedelta(minutes=1)


async def ensure_room(
    session: AsyncSession,
    *,
    kind: type[Project] | type[CronJob],
    user_id: str,
    limit: int,
    setting: str,
) -> None:
    """Refuse (403) when the user already has `limit` live records of `kind`."""
    if limit == 0:
        return
    # The user's row lock serialises creations: two at once cannot both take the last place.
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    live = await session.scalar(
        select(func.count())
        .select_from(kind)
        .where(kind.user_id == user_id, kind.deleted_at.is_(None))
    )
    if (live or 0) >= limit:
        API_REFUSALS.labels(limit=setting.lower(), outcome="refused").inc()
        noun = "projects" if kind is Project else "jobs"
        raise Problem(
            403,
            f"you have {live} {noun}, the most this server allows one user ({setting}); "
            f"delete one first",
        )


async def ensure_trigger_budget(
    session: AsyncSession, *, job_id: str, per_minute: int, now: datetime
) -> None:
    """Refuse (429 with Retry-After) a manual run past `per_minute` for this job.

    Call it with the job's row locked: the count then cannot race another trigger.
    """
    if per_minute == 0:
        return
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(Execution.created_at)).where(
                Execution.job_id == job_id,
                Execution.trigger == Trigger.MANUAL,
                Execution.created_at > now - WINDOW,
            )
        )
    ).one()
    if count < per_minute:
        return
    wait = max(1, math.ceil((oldest + WINDOW - now).total_seconds()))
    API_REFUSALS.labels(limit="manual_triggers", outcome="refused").inc()
    raise Problem(
        429,
        f"this job was run by hand {count} times in the last minute, the most this server "
        f"allows (HERALD_MANUAL_TRIGGERS_PER_MINUTE); try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )


async def webhook_room(
    session: AsyncSession, *, project_id: str, per_minute: int, now: datetime
) -> int | None:
    """How many more runs GitHub's deliveries may start for the project this minute (None:
    no limit).

    Apart from the manual budget: a burst of deliveries (a busy repository, a script
    redelivering) must not lock the owner out of running a job by hand, nor the owner's
    clicks make GitHub's deliveries start nothing. Call it with the project's row locked,
    so two deliveries at once cannot both take the last place.
    """
    if per_minute == 0:
        return None
    jobs = select(CronJob.id).where(CronJob.project_id == project_id).scalar_subquery()
    started = await session.scalar(
        select(func.count()).where(
            Execution.job_id.in_(jobs),
            Execution.trigger == Trigger.WEBHOOK,
            Execution.created_at > now - WINDOW,
        )
    )
    return max(0, per_minute - int(started or 0))


def webhook_budget_spent(per_minute: int) -> str:
    """Why a job a delivery triggers did not run: the project's webhook budget is spent."""
    API_REFUSALS.labels(limit="webhook_runs", outcome="refused").inc()
    return (
        f"the project's deliveries started {per_minute} runs in the last minute, the most "
        "this server allows (HERALD_WEBHOOK_RUNS_PER_MINUTE)"
    )
