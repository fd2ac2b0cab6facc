"""Pipeline events applied to executions on real PostgreSQL: once each, terminal is final."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.batch import EventBatcher
from services.api.lifecycle import apply_event
from shared.db.schema import (
    Content,
    Execution,
    ExecutionStep,
    JobStatistics,
    Notification,
    OutboxMessage,
)
from shared.events import (
    ContentGenerated,
    NotificationCreated,
    PostResult,
    StepFailed,
    StepStarted,
)
from tests.support import factories
from tests.support.lifecycle import PUBLIC, scanned, started_execution


async def finished_events(
    sessions: async_sessionmaker[AsyncSession], execution_id: str
) -> list[dict[str, object]]:
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.routing_key == "execution.finished",
                    OutboxMessage.payload.contains(execution_id),
                )
            )
        ).all()
    return [json.loads(row.payload) for row in rows]


async def test_a_run_completes_with_its_posts_counts_and_one_finished_event(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await started_execution(sessions)
    generated = ContentGenerated(
        **envelope,
        results=[
            PostResult(
                platform="x",
                status="GENERATED",
                body="hello",
                characters=5,
                prompt_tokens=10,
                completion_tokens=5,
            ),
            PostResult(platform="blog", status="FAILED", error="model refused"),
        ],
        generation_ms=12,
    )
    events = [
        StepStarted(**envelope, step="scan"),
        scanned(envelope, commits=2),
        StepStarted(**envelope, step="generate"),
        generated,
    ]
    for event in events + events:  # every event delivered twice
        await apply_event(sessions, event, public_url=PUBLIC)
    async with sessions() as session:
        stored = await session.get(Execution, execution.id)
        posts = (
            await session.scalars(select(Content).where(Content.execution_id == execution.id))
        ).all()
        stats = await session.get(JobStatistics, execution.job_id)
    assert stored is not None and stats is not None
    assert stored.status == "COMPLETED"
    assert (stored.items_processed, stored.items_success, stored.items_failed) == (2, 1, 1)
    assert stored.metadata_["githubApiCalls"] == 3
    assert stored.metadata_["aiTokens"] == {"prompt": 10, "completion": 5}
    assert stored.started_at is not None and stored.duration is not None
    assert sorted(post.platform for post in posts) == ["blog", "x"]
    assert (stats.total_success, stats.total_failures) == (1, 0)
    finished = await finished_events(sessions, execution.id)
    assert len(finished) == 1
    assert finished[0]["status"] == "COMPLETED"
    assert finished[0]["itemsFailed"] == 1
    # Only what confirmed travels: the notifier cannot mail the waiting address.
    assert finished[0]["recipients"] == ["a@example.test"]
    assert finished[0]["notificationSettings"]["recipients"] == ["a@example.test"]
    assert finished[0]["link"] == f"{PUBLIC}/console/executions/{execution.id}"


async def test_no_activity_completes_with_zero_items(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await started_execution(sessions)
    await apply_event(sessions, StepStarted(**envelope, step="scan"), public_url=PUBLIC)
    await apply_event(sessions, scanned(envelope, commits=0), public_url=PUBLIC)
    async with sessions() as session:
        stored = await session.get(Execution, execution.id)
    assert stored is not None
    assert (stored.status, stored.items_processed) == ("COMPLETED", 0)


async def test_a_final_failure_fails_the_run_and_late_events_never_move_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await started_execution(sessions)
    await apply_event(sessions, StepStarted(**envelope, step="scan"), public_url=PUBLIC)
    await apply_event(
        sessions,
        StepFailed(**envelope, step="scan", retriable=True, final=False, error="GitHub 502"),
        public_url=PUBLIC,
    )
    async with sessions() as session:
        retrying = await session.get(Execution, execution.id)
    assert retrying is not None
    assert (retrying.status, retrying.attempt) == ("RUNNING", 2)
    await apply_event(
        sessions,
        StepFailed(
            **{**envelope},
            attempt=2,
            step="scan",
            retriable=False,
            final=True,
            error="GitHub 404: Not Found",
            stack="trace",
        ),
        public_url=PUBLIC,
    )
    await apply_event(sessions, scanned(envelope, commits=1), public_url=PUBLIC)  # late
    async with sessions() as session:
        stored = await session.get(Execution, execution.id)
        stats = await session.get(JobStatistics, execution.job_id)
    assert stored is not None and stats is not None
    assert stored.status == "FAILED"
    assert stored.error_message == "GitHub 404: Not Found"
    assert stored.error_stack == "trace"
    assert (stats.total_failures, stats.consecutive_failures) == (1, 1)
    finished = await finished_events(sessions, execution.id)
    assert [event["status"] for event in finished] == ["FAILED"]
    assert finished[0]["consecutiveFailures"] == 1


async def test_in_app_alerts_keep_the_newest_fifty_per_user(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    user_id, _ = await factories.user_with_token(sessions)
    base = datetime(2030, 1, 1, tzinfo=UTC)
    for n in range(55):
        await apply_event(
            sessions,
            NotificationCreated(
                execution_id=f"exec_{n}",
                job_id=f"job_{n}",  # one job's unread alerts would collapse into one
                project_id="p",
                user_id=user_id,
                kind="job_success",
                title=f"alert {n}",
                body="b",
                occurred_at=base + timedelta(minutes=n),
            ),
            public_url=PUBLIC,
        )
    async with sessions() as session:
        titles = (
            await session.scalars(
                select(Notification.title)
                .where(Notification.user_id == user_id)
                .order_by(Notification.created_at)
            )
        ).all()
    assert len(titles) == 50
    assert titles[0] == "alert 5"
    assert titles[-1] == "alert 54"


async def test_events_applied_out_of_order_still_record_every_step_and_the_duration(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await started_execution(sessions)
    started = StepStarted(
        **envelope, step="scan", occurred_at=datetime.now(UTC) - timedelta(seconds=2)
    )
    generated = ContentGenerated(
        **envelope, results=[PostResult(platform="x", status="GENERATED", body="hi", characters=2)]
    )
    for event in (generated, scanned(envelope, commits=1), started):  # reverse of publishing
        await apply_event(sessions, event, public_url=PUBLIC)
    async with sessions() as session:
        stored = await session.get(Execution, execution.id)
        kinds = (
            await session.execute(
                select(ExecutionStep.step, ExecutionStep.kind).where(
                    ExecutionStep.execution_id == execution.id
                )
            )
        ).all()
    assert stored is not None
    assert stored.status == "COMPLETED"
    assert stored.started_at == started.occurred_at
    assert stored.duration is not None and stored.duration >= 2000
    assert stored.metadata_["activity"]["commits"] == 1
    assert {("scan", "started"), ("scan", "completed")} <= set(kinds)


async def test_a_batch_applies_each_event_once_and_a_poison_event_fails_alone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await started_execution(sessions)
    batcher = EventBatcher(sessions, public_url=PUBLIC)
    events = [
        StepStarted(**envelope, step="scan"),
        scanned(envelope, commits=2),
        StepStarted(**envelope, step="generate"),
        ContentGenerated(
            **envelope,
            results=[PostResult(platform="x", status="GENERATED", body="hi", characters=2)],
        ),
    ]
    poison = NotificationCreated(
        execution_id=execution.id,
        job_id=envelope["job_id"],
        project_id=envelope["project_id"],
        user_id="usr_nobody",  # no such user: the insert breaks a foreign key
        kind="job_success",
        title="t",
        body="b",
    )
    # Handed in together, as the consumer does with what its prefetch delivered, each twice.
    outcomes = await asyncio.gather(
        *(batcher.apply(event) for event in [*events, poison, *events]), return_exceptions=True
    )
    assert [outcome is None for outcome in outcomes] == [True] * 4 + [False] + [True] * 4
    async with sessions() as session:
        stored = await session.get(Execution, execution.id)
        steps = (
            await session.execute(
                select(ExecutionStep.step, ExecutionStep.kind).where(
                    ExecutionStep.execution_id == execution.id
                )
            )
        ).all()
        stats = await session.get(JobStatistics, execution.job_id)
    assert stored is not None and stats is not None
    assert stored.status == "COMPLETED"
    assert sorted(steps) == [
        ("execution", "completed"),
        ("generate", "completed"),
        ("generate", "started"),
        ("scan", "completed"),
        ("scan", "started"),
    ]
    assert stored.metadata_["dbQueries"] > 0
    assert (stats.total_success, stats.timed_runs) == (1, 1)
    assert [event["status"] for event in await finished_events(sessions, execution.id)] == [
        "COMPLETED"
    ]


async def test_a_stopping_batcher_lets_the_batch_in_hand_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await started_execution(sessions)
    batcher = EventBatcher(sessions, public_url=PUBLIC)
    async with sessions() as blocking, blocking.begin():
        # Holding the run's row (SQLite: the write lock) keeps the batch waiting.
        await blocking.execute(
            select(Execution).where(Execution.id == execution.id).with_for_update()
        )
        handler = asyncio.create_task(batcher.apply(StepStarted(**envelope, step="scan")))
        await asyncio.sleep(0.3)
        handler.cancel()  # the bus stopping takes the handler away, not the batch
        closing = asyncio.create_task(batcher.close())
        await asyncio.sleep(0.3)
        assert not closing.done()
    await closing
    async with sessions() as session:
        steps = (
            await session.execute(
                select(ExecutionStep.step, ExecutionStep.kind).where(
                    ExecutionStep.execution_id == execution.id
                )
            )
        ).all()
    assert ("scan", "started") in steps


async def test_a_batch_past_the_grace_is_rolled_back_and_gives_its_connection_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    execution, envelope = await started_execution(sessions)
    batcher = EventBatcher(sessions, public_url=PUBLIC)
    event = StepStarted(**envelope, step="scan")
    async with sessions() as blocking, blocking.begin():
        await blocking.execute(
            select(Execution).where(Execution.id == execution.id).with_for_update()
        )
        handler = asyncio.create_task(batcher.apply(event))
        await asyncio.sleep(0.3)
        closing = asyncio.create_task(batcher.close(grace=0.2))
        await asyncio.sleep(0.5)  # past the grace: the batch is being cancelled
    await closing
    assert handler.done()
    async with sessions() as session, session.begin():
        steps = (
            await session.execute(
                select(ExecutionStep.step).where(ExecutionStep.execution_id == execution.id)
            )
        ).all()
    assert ("scan",) not in steps
    # Delivered again (its message was never acked), it is applied: nothing of it was kept.
    await apply_event(sessions, event, public_url=PUBLIC)
    async with sessions() as session:
        again = (
            await session.execute(
                select(ExecutionStep.step).where(ExecutionStep.execution_id == execution.id)
            )
        ).all()
    assert ("scan",) in again
