"""Grants of herald's GitHub App installations to users: who may read through which.

GitHub tells herald which installation holds a repository, never which herald user owns it,
so an operator says so: a project names an installation only while its owner holds a grant
of it. Revoking a grant takes the installation off that user's projects in the same
transaction, so no `job.due` built afterwards carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.schema import GitHubInstallationGrant, Project, User
from shared.db.upsert import insert_ignore


@dataclass(frozen=True)
class Grant:
    installation_id: int
    email: str
    granted_at: datetime
    granted_by: str


async def holds_grant(session: AsyncSession, *, installation_id: int, user_id: str) -> bool:
    """Whether the user holds a grant of the installation, kept until the transaction ends.

    The row is read `FOR SHARE` on PostgreSQL: a revoke running meanwhile waits for this
    transaction, then clears the installation it stored (SQLite runs one writer at a time).
    """
    found = await session.scalar(
        select(GitHubInstallationGrant.installation_id)
        .where(
            GitHubInstallationGrant.installation_id == installation_id,
            GitHubInstallationGrant.user_id == user_id,
        )
        .with_for_update(read=True)
    )
    return found is not None


async def grant(
    session: AsyncSession, *, installation_id: int, user_id: str, granted_by: str
) -> bool:
    """Grant the installation to the user; False when it was granted already (kept as was)."""
    return await insert_ignore(
        session,
        GitHubInstallationGrant.__table__,  # type: ignore[arg-type]
        {
            "installation_id": installation_id,
            "user_id": user_id,
            "granted_at": datetime.now(UTC),
            "granted_by": granted_by,
        },
    )


async def revoke(session: AsyncSession, *, installation_id: int, user_id: str) -> list[str] | None:
    """Revoke the grant and take the installation off the user's projects; their ids.

    None when the user held no grant of it and no project of theirs named it. The grant goes
    first: a connect that read it `FOR SHARE` has committed by then, and the update below
    clears what it stored. Projects are cleared even without a grant row (one brought in by
    an import, say): a revoke always leaves the user's projects off the installation.
    """
    deleted = await session.execute(
        delete(GitHubInstallationGrant).where(
            GitHubInstallationGrant.installation_id == installation_id,
            GitHubInstallationGrant.user_id == user_id,
        )
    )
    had_grant = bool(deleted.rowcount)  # type: ignore[attr-defined]
    cleared = await session.scalars(
        update(Project)
        .where(Project.user_id == user_id, Project.github_installation_id == installation_id)
        .values(
            github_installation_id=None,
            github_credential=None,
            github_rate_limit=None,
            updated_at=datetime.now(UTC),
        )
        .returning(Project.id)
    )
    found = sorted(cleared.all())
    return found if had_grant or found else None


async def grants(
    session: AsyncSession, *, installation_id: int | None = None, email: str | None = None
) -> list[Grant]:
    """The grants, by installation then email, optionally of one installation or one user."""
    statement = select(
        GitHubInstallationGrant.installation_id,
        User.email,
        GitHubInstallationGrant.granted_at,
        GitHubInstallationGrant.granted_by,
    ).join(User, User.id == GitHubInstallationGrant.user_id)
    if installation_id is not None:
        statement = statement.where(GitHubInstallationGrant.installation_id == installation_id)
    if email is not None:
        statement = statement.where(User.email == email)
    statement = statement.order_by(GitHubInstallationGrant.installation_id, User.email)
    return [Grant(*row) for row in (await session.execute(statement)).all()]
