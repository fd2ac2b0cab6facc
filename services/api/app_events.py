"""What herald's GitHub App is told of its installations, applied to what herald may read.

GitHub sends the App's own webhook `installation` (created, deleted, suspend, unsuspend,
new_permissions_accepted) and `installation_repositories` (added, removed). Each updates
the installation's row (`github_installations`) and, in the same transaction, the status
every project naming the installation carries to the scanner: a suspended or removed
installation fails a run at once with the reason, instead of a token request that GitHub
would refuse. Grants are the operator's and are left as they are: an installation that
comes back from suspension reads for the same users again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.schema import GitHubInstallation, Project
from shared.db.upsert import insert_ignore

log = structlog.get_logger(__name__)

#: The App events herald applies; any other is recorded and ignored.
EVENTS = frozenset({"installation", "installation_repositories"})


@dataclass(frozen=True)
class Applied:
    """What an App delivery changed: the installation, its status and the projects told."""

    installation_id: int
    status: str | None
    projects: list[str]


async def installation_status(session: AsyncSession, installation_id: int) -> str | None:
    """What GitHub last said of the installation: "removed", "suspended", or None (reads)."""
    row = (
        await session.execute(
            select(GitHubInstallation.suspended_at, GitHubInstallation.removed_at).where(
                GitHubInstallation.installation_id == installation_id
            )
        )
    ).first()
    return _status(row.suspended_at, row.removed_at) if row is not None else None


def installation_of(payload: Mapping[str, Any]) -> int | None:
    """The delivery's installation id, when it names one GitHub could have issued."""
    installation = payload.get("installation")
    found = installation.get("id") if isinstance(installation, Mapping) else None
    return found if isinstance(found, int) and not isinstance(found, bool) and found > 0 else None


def ignored_because(event: str, action: Any) -> str | None:
    """Why a signed App delivery changes nothing, or None when herald applies it."""
    if event not in EVENTS:
        return f"herald applies only {' and '.join(sorted(EVENTS))} events from its App"
    known = _ACTIONS[event]
    if action not in known:
        return f"{event} action {action!r} changes nothing herald reads"
    return None


_ACTIONS: dict[str, frozenset[str]] = {
    "installation": frozenset(
        {"created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"}
    ),
    "installation_repositories": frozenset({"added", "removed"}),
}


async def apply_app_event(
    session: AsyncSession,
    event: str,
    payload: Mapping[str, Any],
    installation_id: int,
    *,
    now: datetime,
) -> Applied:
    """Apply one `installation` or `installation_repositories` delivery (see the module)."""
    action = payload.get("action")
    installation = _object(payload, "installation")
    await insert_ignore(
        session,
        GitHubInstallation.__table__,  # type: ignore[arg-type]
        {"installation_id": installation_id, "updated_at": now},
    )
    row = await session.scalar(
        select(GitHubInstallation)
        .where(GitHubInstallation.installation_id == installation_id)
        .with_for_update()
    )
    assert row is not None  # inserted above, or already there
    account = _object(installation, "account")
    if isinstance(account.get("login"), str):
        row.account_login = account["login"][:255]
    if isinstance(account.get("type"), str):
        row.account_type = account["type"][:32]
    selection = installation.get("repository_selection")
    if selection in ("all", "selected"):
        row.repository_selection = selection
    reported = _instant(installation.get("updated_at"))
    stale = reported is not None and row.reported_at is not None and reported < row.reported_at
    if event == "installation":
        if action == "deleted":
            row.removed_at = row.removed_at or now
        elif stale:
            log.info(
                "an older state of an installation ignored",
                installation_id=installation_id,
                action=action,
            )
        elif action == "suspend":
            row.suspended_at = _instant(installation.get("suspended_at")) or now
        elif action == "unsuspend":
            row.suspended_at = None
        else:  # created, new_permissions_accepted: the installation as it stands
            row.suspended_at = _instant(installation.get("suspended_at"))
            if "repositories" in payload:
                row.repositories = _names(payload.get("repositories"))
    else:
        held = set(row.repositories or [])
        if action == "added":
            held |= set(_names(payload.get("repositories_added")))
        else:
            held -= set(_names(payload.get("repositories_removed")))
        row.repositories = sorted(held)
    if row.repository_selection == "all":
        row.repositories = None  # every repository of the account: no list to keep
    if reported is not None and not stale:
        row.reported_at = reported
    row.updated_at = now
    status = _status(row.suspended_at, row.removed_at)
    told = await session.scalars(
        update(Project)
        .where(Project.github_installation_id == installation_id)
        .values(github_installation_status=status, updated_at=now)
        .returning(Project.id)
    )
    return Applied(installation_id, status, sorted(told.all()))


def _status(suspended_at: datetime | None, removed_at: datetime | None) -> str | None:
    if removed_at is not None:
        return "removed"  # never comes back: a new installation has a new id
    return "suspended" if suspended_at is not None else None


def _names(value: Any) -> list[str]:
    """The repositories' `full_name`s (owner/name) of a payload's list of them."""
    if not isinstance(value, list):
        return []
    return sorted(
        {
            str(item["full_name"])[:200]
            for item in value
            if isinstance(item, Mapping) and isinstance(item.get("full_name"), str)
        }
    )


def _object(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
