"""Records as the REST API shows them: camelCase, UTC instants ending in `Z`."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, DateTime, Text, cast, type_coerce

from shared.db.schema import (
    ApiToken,
    Content,
    CronJob,
    Execution,
    ExecutionStep,
    Notification,
    Project,
)
from shared.db.types import UTCDateTime
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


def token_view(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "createdAt": iso(token.created_at),
        "revokedAt": iso(token.revoked_at),
    }


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


# The columns a job's and an execution's view read, in the order `job_row_view` and
# `execution_row_view` unpack them: hot lists select exactly these as plain rows, with no
# ORM object per row, and the single-record views read the same names from an ORM object.
JOB_FIELDS = (
    "id",
    "project_id",
    "type",
    "name",
    "description",
    "frequency",
    "time_config",
    "schedule",
    "is_enabled",
    "max_retries",
    "retry_delay",
    "timeout_seconds",
    "overlap_policy",
    "catchup_window",
    "jitter",
    "next_run_at",
    "last_run_at",
    "disabled_reason",
    "created_at",
    "updated_at",
)
EXECUTION_FIELDS = (
    "id",
    "job_id",
    "project_id",
    "scheduled_for",
    "trigger",
    "triggered_by",
    "status",
    "attempt",
    "window_start",
    "window_end",
    "started_at",
    "completed_at",
    "duration",
    "items_processed",
    "items_success",
    "items_failed",
    "error_message",
    "error_stack",
    "metadata_",
    "created_at",
    "missed_count",
    "first_missed_at",
    "last_missed_at",
)
JOB_COLUMNS: tuple[Column[Any], ...] = tuple(CronJob.__mapper__.columns[f] for f in JOB_FIELDS)
EXECUTION_COLUMNS: tuple[Column[Any], ...] = tuple(
    Execution.__mapper__.columns[f] for f in EXECUTION_FIELDS
)


_AWARE = DateTime(timezone=True)


def hot_columns(columns: Sequence[Column[Any]], dialect: str) -> tuple[ColumnElement[Any], ...]:
    """`columns` as a hot list selects them, for rows the views read with the least work.

    On PostgreSQL asyncpg already returns timestamps as aware UTC datetimes, so they skip
    `UTCDateTime`'s per-value conversion (SQLite keeps naive text and needs it). A job's
    `time_config` comes as its stored text, decoded by `stored_json`: jobs share a handful
    of configurations, so a page decodes each once.
    """
    hot: list[ColumnElement[Any]] = []
    for column in columns:
        if column.name == "time_config":
            hot.append(cast(column, Text).label(column.name))
        elif dialect == "postgresql" and isinstance(column.type, UTCDateTime):
            hot.append(type_coerce(column, _AWARE).label(column.name))
        else:
            hot.append(column)
    return tuple(hot)


@functools.lru_cache(maxsize=1024)
def stored_json(text: str) -> dict[str, Any]:
    """A stored JSON object, decoded once per distinct text (callers copy, never mutate)."""
    value: dict[str, Any] = json.loads(text)
    return value


def job_view(job: CronJob) -> dict[str, Any]:
    return job_row_view([getattr(job, field) for field in JOB_FIELDS])


def job_row_view(row: Sequence[Any]) -> dict[str, Any]:
    """The view of a row of `JOB_COLUMNS`."""
    (
        job_id,
        project_id,
        job_type,
        name,
        description,
        frequency,
        time_config,
        schedule,
        is_enabled,
        max_retries,
        retry_delay,
        timeout_seconds,
        overlap_policy,
        catchup_window,
        jitter,
        next_run_at,
        last_run_at,
        disabled_reason,
        created_at,
        updated_at,
    ) = row
    return {
        "id": job_id,
        "projectId": project_id,
        "type": job_type,
        "name": name,
        "description": description,
        "frequency": frequency,
        "timeConfig": {
            "timezone": "UTC",
            **(stored_json(time_config) if isinstance(time_config, str) else time_config),
        },
        "schedule": schedule,
        "isEnabled": is_enabled,
        "maxRetries": max_retries,
        "retryDelay": retry_delay,
        "timeoutSeconds": timeout_seconds,
        "overlapPolicy": overlap_policy,
        "catchupWindow": catchup_window,
        "jitter": jitter,
        "nextRunAt": iso(next_run_at),
        "lastRunAt": iso(last_run_at),
        "disabledReason": disabled_reason,
        "createdAt": iso(created_at),
        "updatedAt": iso(updated_at),
    }


def execution_view(execution: Execution) -> dict[str, Any]:
    return execution_row_view([getattr(execution, field) for field in EXECUTION_FIELDS])


def execution_row_view(row: Sequence[Any]) -> dict[str, Any]:
    """The view of a row of `EXECUTION_COLUMNS`."""
    (
        execution_id,
        job_id,
        project_id,
        scheduled_for,
        trigger,
        triggered_by,
        status,
        attempt,
        window_start,
        window_end,
        started_at,
        completed_at,
        duration,
        items_processed,
        items_success,
        items_failed,
        error_message,
        error_stack,
        metadata,
        created_at,
        missed_count,
        first_missed_at,
        last_missed_at,
    ) = row
    view: dict[str, Any] = {
        "id": execution_id,
        "jobId": job_id,
        "projectId": project_id,
        "scheduledFor": iso(scheduled_for),
        "trigger": trigger,
        "triggeredBy": triggered_by,
        "status": status,
        "attempt": attempt,
        "windowStart": iso(window_start),
        "windowEnd": iso(window_end),
        "startedAt": iso(started_at),
        "completedAt": iso(completed_at),
        "duration": duration,
        "itemsProcessed": items_processed,
        "itemsSuccess": items_success,
        "itemsFailed": items_failed,
        "errorMessage": error_message,
        "errorStack": error_stack,
        "metadata": _metadata(metadata),
        "createdAt": iso(created_at),
    }
    if status == "MISSED":
        view["missedCount"] = missed_count
        view["firstMissedAt"] = iso(first_missed_at)
        view["lastMissedAt"] = iso(last_missed_at)
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
        "jobId": notification.job_id,
        "readAt": iso(notification.read_at),
        "read": notification.read_at is not None,
        # `createdAt` is the latest run's time (the list's order); a collapsed alert
        # reports `count` runs, from `firstAt` to `lastAt`.
        "createdAt": iso(notification.created_at),
        "count": notification.count,
        "firstAt": iso(notification.first_at),
        "lastAt": iso(notification.created_at),
    }
