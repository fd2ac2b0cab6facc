"""Repeated unread alerts of one job and kind collapse into one, counted once per event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.batch import apply_events
from services.api.lifecycle import apply_event
from shared.db.schema import Notification
from shared.events import NotificationCreated
from shared.ids import new_id
from tests.support import factories

PUBLIC = "http://herald.test"
START = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


def alert(
    user_id: str, job_id: str, n: int, *, kind: str = "job_success", **fields: Any
) -> NotificationCreated:
    """The alert of a job's `n`-th run, two minutes after the previous one."""
    return NotificationCreated(
        execution_id=f"exec_{job_id}_{n}",
        job_id=job_id,
        project_id="prj_1",
        user_id=user_id,
        kind=kind,
        title=f"run {n} completed",
        body=f"Project p: status COMPLETED. Run {n}.",
        link=f"{PUBLIC}/console/executions/exec_{job_id}_{n}",
        occurred_at=START + timedelta(minutes=2 * n),
        **fields,
    )


async def user(sessions: async_sessionmaker[AsyncSession]) -> tuple[str, dict[str, str]]:
    user_id, token = await factories.user_with_token(sessions)
    return user_id, {"Authorization": f"Bearer {token}"}


async def stored(sessions: async_sessionmaker[AsyncSession], user_id: str) -> list[Notification]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at, Notification.id)
        )
        return list(rows.all())


async def listed(api: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await api.get("/api/notifications", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_unread_repeats_collapse_into_one_alert_of_the_latest_run(
    sessions: async_sessionmaker[AsyncSession], api: httpx.AsyncClient
) -> None:
    user_id, headers = await user(sessions)
    job_id = new_id("job")
    for n in range(1, 6):
        await apply_event(sessions, alert(user_id, job_id, n), public_url=PUBLIC)
    body = await listed(api, headers)
    assert (body["count"], body["unreadCount"]) == (1, 1)
    [shown] = body["data"]
    assert shown["count"] == 5
    assert shown["kind"] == "job_success"
    assert shown["jobId"] == job_id
    assert shown["title"] == "run 5 completed"
    assert shown["body"] == "Project p: status COMPLETED. Run 5."
    assert shown["executionId"] == f"exec_{job_id}_5"
    assert shown["link"] == f"{PUBLIC}/console/executions/exec_{job_id}_5"
    assert shown["firstAt"] == "2030-03-01T09:02:00Z"
    assert shown["lastAt"] == shown["createdAt"] == "2030-03-01T09:10:00Z"


async def test_other_kinds_and_other_jobs_keep_alerts_of_their_own(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await user(sessions)
    daily, weekly = new_id("job"), new_id("job")
    events = [
        alert(user_id, daily, 1),
        alert(user_id, daily, 2, kind="job_failure"),
        alert(user_id, weekly, 3),
        alert(user_id, daily, 4),
    ]
    for event in events:
        await apply_event(sessions, event, public_url=PUBLIC)
    rows = await stored(sessions, user_id)
    assert sorted((row.job_id, row.kind, row.count) for row in rows) == sorted(
        [(daily, "job_failure", 1), (weekly, "job_success", 1), (daily, "job_success", 2)]
    )


async def test_a_read_alert_is_never_reused_the_next_one_starts_anew(
    sessions: async_sessionmaker[AsyncSession], api: httpx.AsyncClient
) -> None:
    user_id, headers = await user(sessions)
    job_id = new_id("job")
    for n in (1, 2):
        await apply_event(sessions, alert(user_id, job_id, n), public_url=PUBLIC)
    [first] = (await listed(api, headers))["data"]
    read = await api.post(f"/api/notifications/{first['id']}/read", headers=headers)
    assert read.status_code == 200, read.text
    for n in (3, 4, 5):
        await apply_event(sessions, alert(user_id, job_id, n), public_url=PUBLIC)
    body = await listed(api, headers)
    assert body["unreadCount"] == 1
    newest, older = body["data"]
    assert (newest["read"], newest["count"], newest["title"]) == (False, 3, "run 5 completed")
    assert newest["firstAt"] == "2030-03-01T09:06:00Z"
    assert (older["id"], older["read"], older["count"]) == (first["id"], True, 2)
    assert older["title"] == "run 2 completed"


async def test_a_redelivered_alert_is_counted_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await user(sessions)
    job_id = new_id("job")
    first, second = alert(user_id, job_id, 1), alert(user_id, job_id, 2)
    await apply_event(sessions, first, public_url=PUBLIC)
    await apply_event(sessions, first, public_url=PUBLIC)  # the broker delivers it again
    await apply_event(sessions, second, public_url=PUBLIC)
    await apply_events(sessions, [first, second, second], public_url=PUBLIC)  # in one batch
    [row] = await stored(sessions, user_id)
    assert (row.count, row.execution_id) == (2, f"exec_{job_id}_2")


async def test_repeats_in_one_batch_are_counted_and_the_latest_wins(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await user(sessions)
    job_id = new_id("job")
    await apply_event(sessions, alert(user_id, job_id, 3), public_url=PUBLIC)
    # An older run's alert arriving late counts, but does not replace the latest run's words.
    late = [alert(user_id, job_id, n) for n in (5, 1, 4)]
    await apply_events(sessions, late, public_url=PUBLIC)
    [row] = await stored(sessions, user_id)
    assert row.count == 4
    assert (row.title, row.execution_id) == ("run 5 completed", f"exec_{job_id}_5")
    assert row.first_at == START + timedelta(minutes=2)
    assert row.created_at == START + timedelta(minutes=10)


async def test_alerts_stored_at_once_never_start_two_unread_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await user(sessions)
    job_id = new_id("job")
    arrivals = 8
    # Each in a transaction of its own, all at once: the unique index over unread alerts
    # makes every one after the first wait for it and then update its row.
    await asyncio.gather(
        *(
            apply_event(sessions, alert(user_id, job_id, n), public_url=PUBLIC)
            for n in range(arrivals)
        )
    )
    [row] = await stored(sessions, user_id)
    assert row.count == arrivals
    assert row.read_at is None


async def test_an_alert_of_no_job_is_never_collapsed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await user(sessions)
    for n in (1, 2):
        await apply_event(sessions, alert(user_id, "", n), public_url=PUBLIC)
    rows = await stored(sessions, user_id)
    assert [(row.job_id, row.count) for row in rows] == [(None, 1), (None, 1)]
