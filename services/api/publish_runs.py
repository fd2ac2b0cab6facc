"""A PUBLISH_CONTENT run: its project's approved posts scheduled for now.

The scanner passes such a run's `job.due` through without reading the repository; on its
`activity.scanned` the api schedules, in the transaction that applies it, the project's
APPROVED posts, or, for a run a dependency started, only its upstream run's approved
posts (a "generate, then publish what I approved" chain). The run completes with the
posts it scheduled as its items: none is a normal run. Each post's history says which run
scheduled it, by "herald"; the scheduler then hands them to the publisher as any due post.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.api.post_review import PostState
from services.api.transitions import Run
from shared.db.schema import Content, PostChange
from shared.events import ActivityScanned, Event, JobType
from shared.ids import new_id

_CONTENTS = cast(Table, Content.__table__)
_CHANGES = cast(Table, PostChange.__table__)


def publish_scans(events: list[Event], runs: dict[str, Run]) -> list[ActivityScanned]:
    """The batch's scans of PUBLISH_CONTENT runs that are still open (to be completed)."""
    wanted: dict[str, ActivityScanned] = {}
    for event in events:
        if not isinstance(event, ActivityScanned) or event.job_type != JobType.PUBLISH_CONTENT:
            continue
        run = runs.get(event.execution_id)
        if run is None or run.row["status"] not in ("PENDING", "RUNNING"):
            continue
        # One scan per run: a second (a retry's) in the same batch finds the run completed.
        if event.skip_reason is None:
            wanted.setdefault(event.execution_id, event)
    return list(wanted.values())


async def schedule_approved(connection: AsyncConnection, run: Run, *, now: datetime) -> int:
    """Schedule for now the approved posts this run publishes; return how many."""
    row = run.row
    chosen = select(_CONTENTS.c.id).where(
        _CONTENTS.c.project_id == row["project_id"],
        _CONTENTS.c.state == PostState.APPROVED.value,
        _CONTENTS.c.publish_claimed_at.is_(None),
    )
    if row.get("upstream_execution_id"):
        chosen = chosen.where(_CONTENTS.c.execution_id == row["upstream_execution_id"])
    ids = list((await connection.execute(chosen.order_by(_CONTENTS.c.id))).scalars())
    if not ids:
        return 0
    moved = await connection.execute(
        update(_CONTENTS)
        .where(_CONTENTS.c.id.in_(ids), _CONTENTS.c.state == PostState.APPROVED.value)
        .values(
            state=PostState.SCHEDULED.value,
            publish_at=now,
            state_changed_at=now,
            publish_error=None,
        )
        .returning(_CONTENTS.c.id)
    )
    scheduled = sorted(moved.scalars())
    if scheduled:
        changes: list[dict[str, Any]] = [
            {
                "id": new_id("pch"),
                "content_id": post_id,
                "at": now,
                "actor": "herald",
                "action": "schedule",
                "from_state": PostState.APPROVED.value,
                "to_state": PostState.SCHEDULED.value,
                "detail": f"publish now: run {row['id']} of {run.job_name}",
            }
            for post_id in scheduled
        ]
        await connection.execute(_CHANGES.insert(), changes)
    return len(scheduled)
