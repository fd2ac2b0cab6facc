"""Records as the REST API shows them: camelCase, UTC instants ending in `Z`."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, ColumnElement, DateTime, Text, cast, type_coerce

from services.api import fields
from services.api.fields import RecordFields, Shown
from shared.db.schema import (
    ApiToken,
    Content,
    CronJob,
    Execution,
    ExecutionActivity,
    ExecutionStep,
    Notification,
    PostChange,
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
        "githubInstallationId": project.github_installation_id,
        # What GitHub's App events last said of it: active, suspended or removed.
        "githubInstallationStatus": (
            (project.github_installation_status or "active")
            if project.github_installation_id is not None
            else None
        ),
        # Write-only: whether a token is stored, never the token.
        "githubTokenSet": bool(project.github_token_encrypted),
        # Shown once when made (POST .../github-webhook-secret), then only as set or not.
        "githubWebhookSecretSet": bool(project.github_webhook_secret_encrypted),
        "githubCredential": credential_in_use(project),
        "githubRateLimit": project.github_rate_limit,
        "platforms": list(project.platforms or []),
        "notificationSettings": public_settings(project.notification_settings),
        "publishModes": {
            platform: (project.publish_modes or {}).get(platform, "review")
            for platform in project.platforms or []
        },
        "lastSyncedAt": iso(project.last_synced_at),
        "createdAt": iso(project.created_at),
        "updatedAt": iso(project.updated_at),
    }


def credential_in_use(project: Project) -> str | None:
    """`app`, `token`, `global` (or `none`, read anonymously) for a GitHub project; else None.

    What the latest scan reported when there is one (`none` when the server has no token of
    its own, say), else what the project's credential columns say it will read with.
    """
    if not project.github_repo_owner:
        return None
    if project.github_credential:
        return project.github_credential
    if project.github_installation_id is not None:
        return "app"
    return "token" if project.github_token_encrypted else "global"


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


def _time_config(stored: str | dict[str, Any]) -> dict[str, Any]:
    return {"timezone": "UTC", **(stored_json(stored) if isinstance(stored, str) else stored)}


_CONVERT: dict[Shown, Callable[[Any], Any] | None] = {
    Shown.TEXT: None,
    Shown.NUMBER: None,
    Shown.INSTANT: iso,
    Shown.TIME_CONFIG: _time_config,
    Shown.METADATA: _metadata,
    Shown.OBJECT: None,
}


def _viewer(record: RecordFields) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """The view of a row of `record.columns` (its values in the table's order)."""
    # Per field: its key, how its value is shown (None: as stored, as is null), and for a
    # field shown only `when`, the position of the value compared and the value wanted.
    plan = tuple(
        (
            field.key,
            _CONVERT[field.shown],
            -1 if field.when is None else record.attributes.index(field.when[0]),
            None if field.when is None else field.when[1],
        )
        for field in record.fields
    )

    def view(row: Sequence[Any]) -> dict[str, Any]:
        built: dict[str, Any] = {}
        for (key, convert, condition, wanted), value in zip(plan, row, strict=True):
            if condition >= 0 and row[condition] != wanted:
                continue
            built[key] = value if convert is None or value is None else convert(value)
        return built

    return view


job_row_view = _viewer(fields.JOB)
execution_row_view = _viewer(fields.EXECUTION)


def job_view(job: CronJob) -> dict[str, Any]:
    return job_row_view([getattr(job, name) for name in fields.JOB.attributes])


def execution_view(execution: Execution) -> dict[str, Any]:
    return execution_row_view([getattr(execution, name) for name in fields.EXECUTION.attributes])


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
        **publication_view(content),
    }


def publication_view(content: Content) -> dict[str, Any]:
    """A post's publication side, as both the run's posts and the review list show it."""
    return {
        # The post's review and publishing state (None: its generation failed).
        "publishStatus": content.state,
        "publishAt": iso(content.publish_at),
        "publishedAt": iso(content.published_at),
        "publishedUrl": content.published_url,
        "publishError": content.publish_error,
    }


def post_view(content: Content) -> dict[str, Any]:
    """A post as the review list shows it."""
    return {
        "id": content.id,
        "executionId": content.execution_id,
        "projectId": content.project_id,
        "platform": content.platform,
        "title": content.title,
        "body": content.body,
        "characters": content.characters,
        **publication_view(content),
        "publishedId": content.network_post_id,
        "editedBy": content.edited_by,
        "editedAt": iso(content.edited_at),
        "stateChangedAt": iso(content.state_changed_at),
        "createdAt": iso(content.created_at),
    }


def post_change_view(change: PostChange) -> dict[str, Any]:
    return {
        "at": iso(change.at),
        "actor": change.actor,
        "action": change.action,
        "from": change.from_state,
        "to": change.to_state,
        "detail": change.detail,
    }


def activity_view(item: ExecutionActivity) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "sha": item.sha,
        "number": item.number,
        "title": item.title,
        "author": item.author,
        "url": item.url,
        "at": iso(item.at),
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
