"""Manual runs: an execution and its `job.due`, written together."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared import outbox
from shared.db.schema import CronJob, Execution, Project
from shared.dispatch import job_due_event, window_start_for
from shared.events import ExecutionStatus, Trigger
from shared.ids import new_id


async def trigger_manually(
    session: AsyncSession, *, job: CronJob, project: Project, user_id: str
) -> Execution:
    """Create a MANUAL execution whose window ends now, and queue its `job.due`."""
    now = datetime.now(UTC)
    execution = Execution(
        id=new_id("exec"),
        job_id=job.id,
        project_id=project.id,
        user_id=job.user_id,
        scheduled_for=now,
        trigger=Trigger.MANUAL,
        triggered_by=user_id,
        status=ExecutionStatus.PENDING,
        attempt=1,
        window_start=await window_start_for(session, job, now),
        window_end=now,
        items_processed=0,
        items_success=0,
        items_failed=0,
        metadata_={},
        created_at=now,
        updated_at=now,
    )
    event = job_due_event(job, project, execution, now=now)
    execution.deadline = event.deadline
    session.add(execution)
    await outbox.enqueue(session, event)
    return execution
