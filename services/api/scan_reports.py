"""What scans report about their projects: a moved repository, the credential they read with.

A moved repository renames its project once and tells its owner once. The scanner learns of
a move when GitHub answers the old name with `301 Moved Permanently` (`activity.scanned`
carries the new owner and name). The api renames the project with a compare-and-set on the
name it had: two executions reporting the same move at once, or a report arriving after the
owner already changed the name, change nothing and raise no alert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api import query_count
from services.api.alerts import store_alerts
from services.api.transitions import GitHubUse, Move
from shared.db.schema import Project
from shared.events import Event, NotificationCreated
from shared.finished import execution_link

ALERT_KIND = "repository_moved"

_PROJECTS = cast(Table, Project.__table__)
_RECORD_USE = (
    update(_PROJECTS)
    .where(_PROJECTS.c.id == bindparam("key_id"))
    .values(
        # A scan that began before its installation was revoked reports `app` late: the
        # project no longer names one, so it does not read through the App any more.
        github_credential=case(
            (
                and_(
                    bindparam("credential") == "app",
                    _PROJECTS.c.github_installation_id.is_(None),
                ),
                None,
            ),
            else_=bindparam("credential"),
        ),
        github_rate_limit=bindparam("rate_limit"),
    )
)


async def record_github_use(connection: AsyncConnection, uses: dict[str, GitHubUse]) -> None:
    """Keep on each project the credential its latest scan read with, and that budget.

    The latest applied wins: a snapshot to show the owner, not a figure anything relies on.
    """
    with query_count.on_behalf_of(use.execution_id for use in uses.values()):
        await connection.execute(
            _RECORD_USE,
            [
                {"key_id": project_id, "credential": use.credential, "rate_limit": use.rate_limit}
                for project_id, use in sorted(uses.items())
            ],
        )


async def rename_moved_projects(
    connection: AsyncConnection,
    dialect: Any,
    moves: list[Move],
    *,
    public_url: str,
    now: datetime,
) -> None:
    """Point each project at its repository's new name; alert its owner when it changed."""
    alerts: list[Event] = []
    unique = {(move.project_id, move.old): move for move in moves}
    for _key, move in sorted(unique.items()):
        with query_count.on_behalf_of([move.execution_id]):
            result = await connection.execute(
                update(Project)
                .where(
                    Project.id == move.project_id,
                    Project.github_repo_owner == move.old[0],
                    Project.github_repo_name == move.old[1],
                    Project.deleted_at.is_(None),
                )
                .values(github_repo_owner=move.new[0], github_repo_name=move.new[1], updated_at=now)
            )
        if result.rowcount:
            alerts.append(moved_alert(move, public_url=public_url, now=now))
    if alerts:
        await store_alerts(connection, dialect, alerts)


def moved_alert(move: Move, *, public_url: str, now: datetime) -> NotificationCreated:
    old, new = "/".join(move.old), "/".join(move.new)
    return NotificationCreated(
        occurred_at=now,
        execution_id=move.execution_id,
        job_id=move.job_id,
        project_id=move.project_id,
        user_id=move.user_id,
        kind=ALERT_KIND,
        title=f"{move.project_name}: repository moved to {new}",
        body=(
            f"GitHub says {old} was renamed or transferred to {new}. Project "
            f"{move.project_name} now names {new}; its runs go on as before. If that is not "
            "the repository you meant, edit the project."
        ),
        link=execution_link(public_url, move.execution_id),
    )
