"""Trace context kept in the database: each scheduled run begins its own trace, recorded on
the execution and on its outbox row, and a relay publishes a row inside the trace it was
written in; with tracing off nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scheduler.claims import fire_due
from shared import outbox, tracing
from shared.db.schema import Execution, OutboxMessage
from tests.support import factories
from tests.support.events import job_due


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider, "scheduler")
    yield exporter
    tracing.shutdown()


class TracedPublishes:
    """A bus recording, for each message, the trace context current when it was published."""

    is_ready = True

    def __init__(self) -> None:
        self.published: dict[str | None, str | None] = {}

    async def publish_raw(
        self, routing_key: str, body: bytes, *, message_id: str | None = None
    ) -> None:
        self.published[message_id] = tracing.traceparent()


async def test_each_scheduled_run_begins_a_trace_of_its_own(
    own_sessions: async_sessionmaker[AsyncSession], spans: InMemorySpanExporter
) -> None:
    sessions = own_sessions  # a database of its own: the claim and the relay read every row
    user_id, _ = await factories.user_with_token(sessions)
    project = await factories.project(sessions, user_id, local_repo_path="/srv/repo")
    slot = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    jobs = [await factories.job(sessions, project, next_run_at=slot) for _ in range(3)]

    await fire_due(sessions, now=slot + timedelta(seconds=1), batch=100)

    async with sessions() as session:
        executions = (
            await session.scalars(
                select(Execution).where(Execution.job_id.in_([job.id for job in jobs]))
            )
        ).all()
        rows = (await session.scalars(select(OutboxMessage))).all()
    trace_ids = {execution.trace_id for execution in executions}
    assert len(executions) == 3 and len(trace_ids) == 3 and None not in trace_ids
    by_execution = {execution.id: execution.trace_id for execution in executions}
    for row in rows:
        [execution_id] = [key for key in by_execution if key in row.payload]
        assert row.traceparent is not None
        assert row.traceparent.split("-")[1] == by_execution[execution_id]
    started = [span for span in spans.get_finished_spans() if span.name == "start run"]
    assert {format(span.context.trace_id, "032x") for span in started} == trace_ids
    assert all(span.parent is None for span in started)

    # The relay publishes each row as a child of its run's span.
    bus = TracedPublishes()
    relay = outbox.OutboxRelay(sessions, bus)  # type: ignore[arg-type]
    assert await relay.relay_once() == 3
    assert {row.event_id: row.traceparent for row in rows} == bus.published


async def test_an_event_written_in_a_span_is_published_in_its_trace(
    own_sessions: async_sessionmaker[AsyncSession], spans: InMemorySpanExporter
) -> None:
    sessions = own_sessions  # a database of its own: the relay reads every row
    event = job_due()
    with tracing.internal("request") as request:
        assert request is not None
        async with sessions() as session, session.begin():
            await outbox.enqueue(session, event)
    bus = TracedPublishes()
    await outbox.OutboxRelay(sessions, bus).relay_once()  # type: ignore[arg-type]
    context = request.get_span_context()
    published = bus.published[event.event_id]
    assert published is not None
    assert published.split("-")[1:3] == [f"{context.trace_id:032x}", f"{context.span_id:016x}"]


async def test_off_no_trace_context_is_stored(
    own_sessions: async_sessionmaker[AsyncSession],
) -> None:
    sessions = own_sessions  # a database of its own: the relay reads every row
    assert not tracing.enabled()
    event = job_due()
    async with sessions() as session, session.begin():
        await outbox.enqueue(session, event)
    async with sessions() as session:
        stored = await session.scalar(
            select(OutboxMessage.traceparent).where(OutboxMessage.event_id == event.event_id)
        )
    assert stored is None
    bus = TracedPublishes()
    await outbox.OutboxRelay(sessions, bus).relay_once()  # type: ignore[arg-type]
    assert bus.published == {event.event_id: None}
