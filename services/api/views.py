"""Records as the REST API shows them: camelCase, UTC instants ending in `Z`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.db.schema import Content, CronJob, Execution, ExecutionStep, Notification, Project
from shared.notification_settings import public_settings


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is several times faster than strftime; both truncate to milliseconds.
    if value.microsecond:
        return value.isoformat(timespec="milliseconds")[:-6] + "Z"
    return value.isoformat(timespec="seconds")[:-6] + "Z"


def project_view(project: Project) -> dict[str, Any]:
    return {
        "id": project.id,
        "name": project.name,
        "githubRepoOwner": project.github_repo_owner,
        "githubRepoName": project.github_repo_name,
        "githubBaseUrl": project.github_base_url,
        "localRepoPath": project.local_repo_path,
        "platforms": list(project.platforms or []),
        "notificationSettings": public_settings(project.notification_settings),
        "lastSyncedAt": iso(project.last_synced_at),
        "createdAt": iso(project.created_at),
        "updatedAt": iso(project.updated_at),
    }


def job_view(job: CronJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "projectId": job.project_id,
        "type": job.type,
        "name": job.name,
        "description": job.description,
        "frequency": job.frequency,
        "timeConfig": {"timezone": "UTC", **job.time_config},
        "schedule": job.schedule,
        "isEnabled": job.is_enabled,
        "maxRetries": job.max_retries,
        "retryDelay": job.retry_delay,
        "timeoutSeconds": job.timeout_seconds,
        "overlapPolicy": job.overlap_policy,
        "catchupWindow": job.catchup_window,
        "jitter": job.jitter,
        "nextRunAt": iso(job.next_run_at),
        "lastRunAt": iso(job.last_run_at),
        "disabledReason": job.disabled_reason,
        "createdAt": iso(job.created_at),
        "updatedAt": iso(job.updated_at),
    }


def execution_view(execution: Execution) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": execution.id,
        "jobId": execution.job_id,
        "projectId": execution.project_id,
        "scheduledFor": iso(execution.scheduled_for),
        "trigger": execution.trigger,
        "triggeredBy": execution.triggered_by,
        "status": execution.status,
        "attempt": execution.attempt,
        "windowStart": iso(execution.window_start),
        "windowEnd": iso(execution.window_end),
        "startedAt": iso(execution.started_at),
        "completedAt": iso(execution.completed_at),
        "duration": execution.duration,
        "itemsProcessed": execution.items_processed,
        "itemsSuccess": execution.items_success,
        "itemsFailed": execution.items_failed,
        "errorMessage": execution.error_message,
        "errorStack": execution.error_stack,
        "metadata": _metadata(execution.metadata_),
        "createdAt": iso(execution.created_at),
    }
    if execution.status == "MISSED":
        view["missedCount"] = execution.missed_count
        view["firstMissedAt"] = iso(execution.first_missed_at)
        view["lastMissedAt"] = iso(execution.last_missed_at)
    return view


def _metadata(stored: dict[str, Any]) -> dict[str, Any]:
    tokens = stored.get("aiTokens") or {}
    return {
        **stored,
        "githubApiCalls": int(stored.get("githubApiCalls", 0)),
        "aiTokens": {
            "prompt": int(tokens.get("prompt", 0)),
            "completion": int(tokens.get("completion", 0)),
        },
        "generationMs": int(stored.get("generationMs", 0)),
        "dbQueries": int(stored.get("dbQueries", 0)),
    }


def content_view(content: Content) -> dict[str, Any]:
    return {
        "id": content.id,
        "executionId": content.execution_id,
        "platform": content.platform,
        "title": content.title,
        "body": content.body,
        "characters": content.characters,
        "model": content.model,
        "promptTokens": content.prompt_tokens,
        "completionTokens": content.completion_tokens,
        "generationMs": content.generation_ms,
        "status": content.status,
        "error": content.error,
        "createdAt": iso(content.created_at),
    }


def step_view(step: ExecutionStep) -> dict[str, Any]:
    return {
        "step": step.step,
        "kind": step.kind,
        "attempt": step.attempt,
        "detail": step.detail,
        "at": iso(step.at),
    }


def notification_view(notification: Notification) -> dict[str, Any]:
    return {
        "id": notification.id,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "link": notification.link,
        "executionId": notification.execution_id,
        "readAt": iso(notification.read_at),
        "read": notification.read_at is not None,
        "createdAt": iso(notification.created_at),
    }
