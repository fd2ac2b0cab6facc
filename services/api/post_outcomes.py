"""What the publisher says became of a post: PUBLISHED with its address, or FAILED.

Applied in the transaction that claims the events in the inbox, so each is applied once;
and each write is a compare-and-set on SCHEDULED, so a `post.published` arriving again
under another id (a post claimed again after its lease) changes nothing either. A failure
that is not final only notes the reason (the publisher tries again); a final one moves the
post to FAILED with the network's reason, releases the claim, raises an in-app alert for
the post's owner, and writes `post.unpublished` for the notifier, which mails it when the
project asks for `post_failed`. Each move is in the post's history, by "herald".

A final failure keeps the time its chain's first attempt with an unknown outcome began
(`publish_unknown_since`) through FAILED and a new schedule, until the post is published:
the scheduler's next claim hands it on, so a publication Mastodon forgot the key of is
looked for rather than repeated. The post keeps the earliest such time it has heard of (a
late failure of a stale chain never erases it), and forgets it only when published or when
a failure hands the question to the owner (`ownerChecks`). The Mastodon instance's limits
an outcome reports are recorded on the project's credential while it names that instance,
and forgotten when the instance refused a status they let through: edits and schedules are
checked against them. Recording them is a savepoint of its own, which cannot fail the
outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from sqlalchemy import Table, case, literal, null, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.post_review import PostState
from shared.db.schema import (
    Content,
    CronJob,
    Execution,
    PostChange,
    Project,
    PublishingCredential,
)
from shared.db.types import UTCDateTime
from shared.events import (
    Event,
    MastodonLimits,
    NotificationCreated,
    NotificationSettings,
    PostFailed,
    PostPublished,
    PostUnpublished,
)
from shared.ids import derived_event_id, new_id
from shared.notification_settings import public_settings
from shared.publishing import NETWORK_NAMES

log = structlog.get_logger(__name__)

ACTOR = "herald"
POST_FAILED = "post_failed"

_CONTENTS = cast(Table, Content.__table__)
_CHANGES = cast(Table, PostChange.__table__)
_CREDENTIALS = cast(Table, PublishingCredential.__table__)


def is_post_outcome(event: Event) -> bool:
    return isinstance(event, PostPublished | PostFailed)


@dataclass
class Outcomes:
    # In-app alerts, stored by the caller with the batch's others.
    alerts: list[NotificationCreated] = field(default_factory=list)
    # Events for the outbox, written by the caller in the same transaction.
    events: list[PostUnpublished] = field(default_factory=list)


async def apply_post_outcomes(
    connection: AsyncConnection, events: list[Event], *, public_url: str
) -> Outcomes:
    """Apply the batch's post outcomes; return the alerts and events they raise."""
    outcomes = Outcomes()
    for event in events:
        if isinstance(event, PostPublished | PostFailed):
            await _learn_limits(connection, event)
        if isinstance(event, PostPublished):
            await _published(connection, event)
        elif isinstance(event, PostFailed):
            raised = await _failed(connection, event, public_url=public_url)
            if raised is not None:
                outcomes.alerts.append(raised[0])
                outcomes.events.append(raised[1])
    return outcomes


async def _published(connection: AsyncConnection, event: PostPublished) -> None:
    moved = await connection.execute(
        update(_CONTENTS)
        .where(_CONTENTS.c.id == event.post_id, _CONTENTS.c.state == PostState.SCHEDULED)
        .values(
            state=PostState.PUBLISHED.value,
            state_changed_at=event.published_at,
            published_at=event.published_at,
            published_url=event.url,
            network_post_id=event.network_post_id,
            publish_error=None,
            publish_claimed_at=None,
            publish_first_claimed_at=None,
            publish_unknown_since=None,
            publish_unknown_bodies=null(),
        )
    )
    if not moved.rowcount:
        log.info("post already moved; published event ignored", post_id=event.post_id)
        return
    network = NETWORK_NAMES.get(event.network, event.network)
    await _record(
        connection,
        event.post_id,
        at=event.published_at,
        action="publish",
        from_state=PostState.SCHEDULED,
        to_state=PostState.PUBLISHED,
        detail=f"published on {network}" + (f": {event.url}" if event.url else ""),
    )


async def _failed(
    connection: AsyncConnection, event: PostFailed, *, public_url: str
) -> tuple[NotificationCreated, PostUnpublished] | None:
    if not event.final:
        # Tried again later: the post stays SCHEDULED and claimed; the reason is shown. The
        # claim moves to the next attempt, where the scheduler's lease starts counting: a
        # chain still being worked is not claimed a second time.
        await connection.execute(
            update(_CONTENTS)
            .where(_CONTENTS.c.id == event.post_id, _CONTENTS.c.state == PostState.SCHEDULED)
            .values(
                publish_error=event.reason,
                publish_claimed_at=case(
                    (
                        _CONTENTS.c.publish_claimed_at.is_not(None),
                        event.next_attempt_at or event.occurred_at,
                    ),
                    else_=None,
                ),
            )
        )
        return None
    now = datetime.now(UTC)
    moved = await connection.execute(
        update(_CONTENTS)
        .where(_CONTENTS.c.id == event.post_id, _CONTENTS.c.state == PostState.SCHEDULED)
        .values(
            state=PostState.FAILED.value,
            state_changed_at=now,
            publish_error=event.reason,
            publish_claimed_at=None,
            publish_first_claimed_at=None,
            **_unknown_outcome(event),
        )
        .returning(_CONTENTS.c.user_id)
    )
    owner = moved.scalar_one_or_none()
    if owner is None:
        log.info("post already moved; failure ignored", post_id=event.post_id)
        return None
    await _record(
        connection,
        event.post_id,
        at=now,
        action="fail",
        from_state=PostState.SCHEDULED,
        to_state=PostState.FAILED,
        detail=event.reason,
    )
    link = f"{public_url.rstrip('/')}/console/posts/{event.post_id}"
    names = (
        await connection.execute(
            select(CronJob.name, Project.name, Project.notification_settings)
            .select_from(_CONTENTS)
            .join(Execution, Execution.id == _CONTENTS.c.execution_id)
            .join(CronJob, CronJob.id == Execution.job_id)
            .join(Project, Project.id == _CONTENTS.c.project_id)
            .where(_CONTENTS.c.id == event.post_id)
        )
    ).one()
    job_name, project_name, stored = names
    settings = NotificationSettings.model_validate(public_settings(stored, keep_encrypted=True))
    title = f"{job_name}: a {event.platform} post could not be published"
    alert = NotificationCreated(
        event_id=derived_event_id(event.event_id, "alert"),
        occurred_at=now,
        execution_id=event.execution_id,
        job_id=event.job_id,
        project_id=event.project_id,
        user_id=owner,
        kind=POST_FAILED,
        title=title,
        body=f"Project {project_name}: {event.reason}",
        link=link,
    )
    mail = PostUnpublished(
        event_id=derived_event_id(event.event_id, "post.unpublished"),
        occurred_at=now,
        execution_id=event.execution_id,
        job_id=event.job_id,
        project_id=event.project_id,
        user_id=owner,
        post_id=event.post_id,
        platform=event.platform,
        reason=event.reason,
        job_name=job_name,
        project_name=project_name,
        notification_settings=settings,
        recipients=settings.recipients,
        link=link,
    )
    return alert, mail


def _unknown_outcome(event: PostFailed) -> dict[str, Any]:
    """What the post keeps of attempts whose outcome herald did not learn: never less than it
    knew (a late failure of a stale chain may know less than the post), until the reason
    hands the question to the owner, who checks the account before scheduling again."""
    if event.owner_checks:
        return {"publish_unknown_since": None, "publish_unknown_bodies": null()}
    if event.unknown_since is None:
        return {}
    stored = _CONTENTS.c.publish_unknown_since
    reported = literal(event.unknown_since, UTCDateTime())
    # The earliest: SQLite keeps a fixed naive UTC text, which compares as time does.
    return {"publish_unknown_since": case((stored < reported, stored), else_=reported)}


async def _learn_limits(connection: AsyncConnection, event: PostPublished | PostFailed) -> None:
    """Keep or forget the instance's limits the outcome reports, in a savepoint: what herald
    learns of an instance must never cost the outcome it rides on."""
    outdated = event.mastodon_limits_outdated if isinstance(event, PostFailed) else None
    if event.mastodon_limits is None and outdated is None:
        return
    try:
        async with connection.begin_nested():
            if event.mastodon_limits is not None:
                await _record_limits(connection, event.project_id, event.mastodon_limits)
            if outdated is not None:
                await _forget_limits(connection, event.project_id, outdated)
    except Exception:
        # Whatever went wrong (a value a column cannot hold, say), the savepoint is undone.
        log.warning("instance limits not recorded", project_id=event.project_id, exc_info=True)


async def _forget_limits(connection: AsyncConnection, project_id: str, instance: str) -> None:
    """The instance refused a status within the limits kept for it: they are out of date, and
    Mastodon's default applies until the publisher reads them again."""
    if await _credential_instance(connection, project_id) != instance:
        return
    await connection.execute(
        update(_CREDENTIALS)
        .where(_CREDENTIALS.c.project_id == project_id, _CREDENTIALS.c.network == "mastodon")
        .values(
            max_characters=None,
            characters_reserved_per_url=None,
            updated_at=_CREDENTIALS.c.updated_at,
        )
    )


async def _credential_instance(connection: AsyncConnection, project_id: str) -> str | None:
    settings = await connection.scalar(
        select(_CREDENTIALS.c.settings).where(
            _CREDENTIALS.c.project_id == project_id, _CREDENTIALS.c.network == "mastodon"
        )
    )
    return (settings or {}).get("instanceUrl")


async def _record_limits(
    connection: AsyncConnection, project_id: str, limits: MastodonLimits
) -> None:
    """Keep the instance's limits on the project's Mastodon credential, unless the credential
    names another instance by now (the owner saved a new one after the post was claimed)."""
    found = (
        await connection.execute(
            select(
                _CREDENTIALS.c.settings,
                _CREDENTIALS.c.max_characters,
                _CREDENTIALS.c.characters_reserved_per_url,
            ).where(_CREDENTIALS.c.project_id == project_id, _CREDENTIALS.c.network == "mastodon")
        )
    ).one_or_none()
    if found is None or (found.settings or {}).get("instanceUrl") != limits.instance_url:
        return
    known = (found.max_characters, found.characters_reserved_per_url)
    if known == (limits.max_characters, limits.characters_reserved_per_url):
        return
    await connection.execute(
        update(_CREDENTIALS)
        .where(_CREDENTIALS.c.project_id == project_id, _CREDENTIALS.c.network == "mastodon")
        .values(
            max_characters=limits.max_characters,
            characters_reserved_per_url=limits.characters_reserved_per_url,
            # Says when the owner saved the credential: what herald learned is no change.
            updated_at=_CREDENTIALS.c.updated_at,
        )
    )


async def _record(
    connection: AsyncConnection,
    post_id: str,
    *,
    at: datetime,
    action: str,
    from_state: PostState,
    to_state: PostState,
    detail: str,
) -> None:
    values: dict[str, Any] = {
        "id": new_id("pch"),
        "content_id": post_id,
        "at": at,
        "actor": ACTOR,
        "action": action,
        "from_state": from_state.value,
        "to_state": to_state.value,
        "detail": detail,
    }
    await connection.execute(_CHANGES.insert(), [values])
