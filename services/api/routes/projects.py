"""Projects: the repository to scan, the platforms to write for, the alerts wanted."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, status
from fastapi import Path as PathParam
from pydantic.alias_generators import to_camel
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.auth import UserDep
from services.api.credentials import CredentialRefusedError, credential_columns, ensure_granted
from services.api.deliveries import DELIVERY_ID, recent_deliveries
from services.api.deps import SessionDep, StateDep
from services.api.pagination import (
    DEFAULT_LIMIT,
    CursorQuery,
    LimitQuery,
    cursor_position,
    listed,
)
from services.api.problems import Problem, invalid
from services.api.publishing import (
    NetworkName,
    PublishingBody,
    credentials_of,
    publishing_view,
    save_credential,
)
from services.api.quotas import ensure_room
from services.api.recipients import ask_new_recipients
from services.api.records import project_of
from services.api.requests import (
    CreateProject,
    NotificationSettingsBody,
    PlatformName,
    PublishMode,
    UpdateProject,
)
from services.api.views import project_view
from shared.db.notify import JOBS_CHANNEL, notify
from shared.db.schema import CronJob, JobStatistics, Project, PublishingCredential
from shared.destinations import github_origins, webhook_refusal
from shared.ids import new_id
from shared.notification_settings import public_settings
from shared.outbound import ForbiddenDestinationError
from shared.secrets import SecretKeyError, encrypt
from shared.settings import Settings
from shared.signatures import new_webhook_secret

router = APIRouter(prefix="/api/projects", tags=["projects"])

ProjectId = Annotated[str, PathParam(max_length=40)]


def _check_source(
    settings: Settings,
    owner: str | None,
    name: str | None,
    local_path: str | None,
    base_url: str | None = None,
) -> str | None:
    """Refuse a source the scanner could not, or must not, read; return the base URL to store."""
    if bool(owner) != bool(name):
        raise invalid(
            "githubRepoName" if owner else "githubRepoOwner",
            "githubRepoOwner and githubRepoName go together",
        )
    if local_path is not None:
        root = Path(settings.local_repos_root).resolve()
        candidate = (root / local_path).resolve()
        if candidate != root and root not in candidate.parents:
            raise invalid("localRepoPath", "must lie under the server's HERALD_LOCAL_REPOS_ROOT")
    if not base_url:
        return None
    try:
        return github_origins(settings).check_base(base_url)
    except ForbiddenDestinationError as exc:
        raise invalid("githubBaseUrl", exc.message) from None


async def _credential_columns(
    session: AsyncSession,
    settings: Settings,
    changes: dict[str, Any],
    base_url: str | None,
    *,
    user_id: str,
) -> dict[str, Any]:
    """`credential_columns` of an installation granted to the user, refusals as the 422 of
    the field at fault."""
    try:
        columns = credential_columns(settings, changes, base_url)
        await ensure_granted(session, columns, user_id=user_id)
        return columns
    except CredentialRefusedError as exc:
        raise invalid(exc.field, exc.message) from None
    except SecretKeyError as exc:
        raise invalid("githubToken", exc.message) from None


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="createProject")
async def create_project(
    body: CreateProject, user: UserDep, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    base_url = _check_source(
        state.settings,
        body.github_repo_owner,
        body.github_repo_name,
        body.local_repo_path,
        body.github_base_url,
    )
    await ensure_room(
        session,
        kind=Project,
        user_id=user.id,
        limit=state.settings.max_projects_per_user,
        setting="HERALD_MAX_PROJECTS_PER_USER",
    )
    credential = await _credential_columns(
        session,
        state.settings,
        body.model_dump(include={"github_installation_id", "github_token"}),
        base_url,
        user_id=user.id,
    )
    now = datetime.now(UTC)
    project = Project(
        **credential,
        id=new_id("prj"),
        user_id=user.id,
        name=body.name,
        github_repo_owner=body.github_repo_owner,
        github_repo_name=body.github_repo_name,
        github_base_url=base_url,
        local_repo_path=body.local_repo_path,
        platforms=list(dict.fromkeys(body.platforms)),
        notification_settings=stored_settings(body.notification_settings, {}, state.settings),
        publish_modes=stored_modes(body.publish_modes),
        created_at=now,
        updated_at=now,
    )
    session.add(project)
    await ask_new_recipients(session, user=user, project=project, settings=state.settings)
    await session.commit()
    return {"success": True, "data": project_view(project)}


@router.get("", operation_id="listProjects")
async def list_projects(
    user: UserDep,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    statement = select(Project).where(Project.user_id == user.id, Project.deleted_at.is_(None))
    return await listed(
        session, statement, model=Project, view=project_view, limit=limit, cursor=cursor
    )


@router.get("/{project_id}", operation_id="getProject")
async def get_project(project_id: ProjectId, user: UserDep, session: SessionDep) -> dict[str, Any]:
    project = await project_of(session, user.id, project_id)
    publishing = publishing_view(await credentials_of(session, project.id))
    return {"success": True, "data": {**project_view(project), "publishing": publishing}}


@router.put("/{project_id}/publishing/{network}", operation_id="putPublishingCredential")
async def put_publishing_credential(
    project_id: ProjectId,
    network: NetworkName,
    body: PublishingBody,
    user: UserDep,
    session: SessionDep,
    state: StateDep,
) -> dict[str, Any]:
    """Save how the project publishes to a network, replacing what was there (write-only).

    The generic webhook's signing secret is made by herald and shown in this answer only.
    """
    project = await project_of(session, user.id, project_id)
    credential, made = await save_credential(session, project.id, network, body, state.settings)
    await session.commit()
    data: dict[str, Any] = {"network": network, **publishing_view([credential])[network]}
    if made is not None:
        data["signingSecret"] = made  # shown once: herald keeps it encrypted only
    return {"success": True, "data": data}


@router.delete("/{project_id}/publishing/{network}", operation_id="deletePublishingCredential")
async def delete_publishing_credential(
    project_id: ProjectId, network: NetworkName, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    """Forget how the project publishes to a network; posts for it can no longer be scheduled."""
    project = await project_of(session, user.id, project_id)
    credential = await session.get(PublishingCredential, (project.id, network))
    if credential is not None:
        await session.delete(credential)
        await session.commit()
    return {"success": True, "data": publishing_view(await credentials_of(session, project.id))}


@router.patch("/{project_id}", operation_id="updateProject")
async def update_project(
    project_id: ProjectId, body: UpdateProject, user: UserDep, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    project = await project_of(session, user.id, project_id)
    changes = body.model_dump(exclude_unset=True)
    owner = changes.get("github_repo_owner", project.github_repo_owner)
    name = changes.get("github_repo_name", project.github_repo_name)
    base_url = _check_source(
        state.settings,
        owner,
        name,
        changes.get("local_repo_path"),
        changes.get("github_base_url"),
    )
    if changes.get("github_base_url"):
        changes["github_base_url"] = base_url
    effective_base = changes.get("github_base_url", project.github_base_url)
    credential = await _credential_columns(
        session, state.settings, changes, effective_base, user_id=user.id
    )
    for column, value in credential.items():
        setattr(project, column, value)
    for field in (
        "name",
        "github_repo_owner",
        "github_repo_name",
        "github_base_url",
        "local_repo_path",
    ):
        if field in changes:
            setattr(project, field, changes[field])
    if body.platforms is not None:
        project.platforms = list(dict.fromkeys(body.platforms))
    if body.publish_modes is not None:
        project.publish_modes = stored_modes(body.publish_modes)
    if body.notification_settings is not None:
        project.notification_settings = stored_settings(
            body.notification_settings, project.notification_settings, state.settings
        )
        await ask_new_recipients(session, user=user, project=project, settings=state.settings)
    project.updated_at = datetime.now(UTC)
    await session.commit()
    return {"success": True, "data": project_view(project)}


@router.delete("/{project_id}", operation_id="deleteProject")
async def delete_project(
    project_id: ProjectId, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    project = await project_of(session, user.id, project_id)
    now = datetime.now(UTC)
    project.deleted_at = now
    # Its jobs go with it (history stays), and the scheduler hears of it at once.
    await session.execute(
        update(CronJob)
        .where(CronJob.project_id == project.id, CronJob.deleted_at.is_(None))
        .values(deleted_at=now, is_enabled=False, next_run_at=None)
    )
    await session.execute(
        update(JobStatistics)
        .where(JobStatistics.job_id.in_(select(CronJob.id).where(CronJob.project_id == project.id)))
        .values(live=False)
    )
    await notify(session, JOBS_CHANNEL)
    await session.commit()
    return {"success": True, "data": {"id": project.id, "deleted": True}}


def stored_modes(modes: Mapping[PlatformName, PublishMode]) -> dict[str, str]:
    """Only the platforms published without review: review is what absence means."""
    return {platform: mode for platform, mode in sorted(modes.items()) if mode == "auto"}


def stored_settings(
    body: NotificationSettingsBody, current: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The settings to store: webhook URLs encrypted, kept when left out, removed by ""."""
    stored = body.model_dump(by_alias=True, exclude={"slack_webhook_url", "discord_webhook_url"})
    for field in ("slack_webhook_url", "discord_webhook_url"):
        key = to_camel(field)
        value = getattr(body, field)
        if field not in body.model_fields_set:
            if current.get(key):
                stored[key] = current[key]
        elif value:
            refusal = webhook_refusal(field.removesuffix("_webhook_url"), value, settings)
            if refusal is not None:
                raise invalid(f"notificationSettings.{key}", refusal)
            try:
                stored[key] = encrypt(value, settings.secret_key.get_secret_value())
            except SecretKeyError as exc:
                raise invalid(f"notificationSettings.{key}", exc.message) from None
    return stored


@router.get("/{project_id}/notification-settings", operation_id="getNotificationSettings")
async def get_notification_settings(
    project_id: ProjectId, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    """A project's alert preferences (webhook URLs only shown as set or not)."""
    project = await project_of(session, user.id, project_id)
    return {"success": True, "data": public_settings(project.notification_settings)}


@router.put("/{project_id}/notification-settings", operation_id="putNotificationSettings")
async def put_notification_settings(
    project_id: ProjectId,
    body: NotificationSettingsBody,
    user: UserDep,
    session: SessionDep,
    state: StateDep,
) -> dict[str, Any]:
    """Replace a project's alert preferences; stored webhook URLs are kept."""
    project = await project_of(session, user.id, project_id)
    project.notification_settings = stored_settings(
        body, project.notification_settings, state.settings
    )
    await ask_new_recipients(session, user=user, project=project, settings=state.settings)
    project.updated_at = datetime.now(UTC)
    await session.commit()
    return {"success": True, "data": public_settings(project.notification_settings)}


@router.post(
    "/{project_id}/github-webhook-secret",
    status_code=status.HTTP_201_CREATED,
    operation_id="createGitHubWebhookSecret",
)
async def create_github_webhook_secret(
    project_id: ProjectId, user: UserDep, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    """Make the project a new GitHub webhook secret, replacing any before it.

    The secret is in this answer only: herald keeps it encrypted and never shows it again
    (`githubWebhookSecretSet` says whether one is set). Deliveries signed with the secret
    it replaces are refused from now on.
    """
    project = await project_of(session, user.id, project_id)
    secret = new_webhook_secret()
    try:
        project.github_webhook_secret_encrypted = encrypt(
            secret, state.settings.secret_key.get_secret_value()
        )
    except SecretKeyError as exc:
        raise Problem(503, exc.message) from None
    project.updated_at = datetime.now(UTC)
    await session.commit()
    url = f"{state.settings.public_url.rstrip('/')}/api/webhooks/github?project={project.id}"
    return {
        "success": True,
        "data": {
            "secret": secret,
            "payloadUrl": url,
            "contentType": "application/json",
            "events": ["release", "push", "pull_request"],
        },
    }


@router.get("/{project_id}/github-deliveries", operation_id="listGitHubDeliveries")
async def list_github_deliveries(
    project_id: ProjectId,
    user: UserDep,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
) -> dict[str, Any]:
    """The project's GitHub webhook deliveries, newest first, with what each came to.

    `outcome`: started (`executions` it started), ignored (`reason`: no trigger matched, or
    the jobs had a run open and do not overlap, `skipped`), refused (signed, but not a
    delivery herald reads: `reason`). A copy GitHub sent again is counted in
    `redeliveries`; an unsigned delivery is never recorded.
    """
    # A forged cursor is refused as on every list, before anything is read.
    cursor_position(cursor, DELIVERY_ID)
    project = await project_of(session, user.id, project_id)
    rows, next_cursor = await recent_deliveries(session, project.id, limit=limit, cursor=cursor)
    return {"success": True, "data": rows, "count": len(rows), "nextCursor": next_cursor}


@router.delete("/{project_id}/github-webhook-secret", operation_id="deleteGitHubWebhookSecret")
async def delete_github_webhook_secret(
    project_id: ProjectId, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    """Forget the project's GitHub webhook secret: every delivery is refused until a new one."""
    project = await project_of(session, user.id, project_id)
    project.github_webhook_secret_encrypted = None
    project.updated_at = datetime.now(UTC)
    await session.commit()
    return {"success": True, "data": project_view(project)}
