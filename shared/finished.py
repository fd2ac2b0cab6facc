"""The authoritative `execution.finished` event, built the same way by the api and scheduler."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.db.schema import Project
from shared.dispatch import Run, ScheduledJob
from shared.events import (
    Digest,
    ExecutionFinished,
    ExecutionStatus,
    JobType,
    NotificationSettings,
    PostExcerpt,
    Trigger,
)
from shared.ids import derived_event_id
from shared.job_results import result_sentence
from shared.notification_settings import public_settings


def execution_link(public_url: str, execution_id: str) -> str:
    # A person follows it from an email or an alert: the console page, behind sign-in.
    return f"{public_url.rstrip('/')}/console/executions/{execution_id}"


def finished_event(
    execution: Run,
    *,
    job: ScheduledJob,
    project: Project,
    consecutive_failures: int,
    previous_status: ExecutionStatus | None,
    occurred_at: datetime | None,
    public_url: str,
    posts: Sequence[PostExcerpt] = (),
) -> ExecutionFinished:
    """Describe a finished execution for the notifier (webhook URLs stay encrypted)."""
    settings = NotificationSettings.model_validate(
        public_settings(project.notification_settings, keep_encrypted=True)
    )
    # A job built in memory without its type (older callers) is a GENERATE_CONTENT one.
    job_type = JobType(job.type) if job.type else JobType.GENERATE_CONTENT
    metadata = getattr(execution, "metadata_", None) or {}
    stored_digest = metadata.get("digest") if job_type == JobType.ANALYTICS else None
    return ExecutionFinished(
        # One id per execution: whoever finishes it, a repeat is dropped by the inbox.
        event_id=derived_event_id(execution.id, "execution.finished"),
        **({"occurred_at": occurred_at} if occurred_at is not None else {}),
        execution_id=execution.id,
        job_id=job.id,
        project_id=project.id,
        attempt=execution.attempt,
        status=ExecutionStatus(execution.status),
        trigger=Trigger(execution.trigger),
        scheduled_for=execution.scheduled_for,
        started_at=execution.started_at,
        completed_at=execution.completed_at,
        duration=execution.duration,
        items_processed=execution.items_processed or 0,
        items_success=execution.items_success or 0,
        items_failed=execution.items_failed or 0,
        error_message=execution.error_message,
        job_name=job.name,
        project_name=project.name,
        user_id=execution.user_id,
        notification_settings=settings,
        recipients=settings.recipients,
        consecutive_failures=consecutive_failures,
        previous_status=previous_status,
        posts=list(posts),
        link=execution_link(public_url, execution.id),
        missed_count=execution.missed_count,
        skip_reason=execution.skip_reason,
        job_type=job_type,
        result=result_sentence(
            job_type,
            execution.status,
            metadata,
            items_processed=execution.items_processed or 0,
            items_success=execution.items_success or 0,
        ),
        digest=Digest.model_validate(stored_digest) if stored_digest else None,
    )
