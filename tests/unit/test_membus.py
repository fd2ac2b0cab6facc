"""The in-process bus keeps the broker's semantics: routing, acks, dead letters, delays, fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.standalone.membus import MemoryBroker, MemoryBus
from services.standalone.queuestore import QueueStore
from shared import topology
from shared.errors import DependencyUnavailableError, InvalidEventError
from shared.events import (
    ActivityScanned,
    Event,
    ExecutionCancelled,
    StepStarted,
)
from tests.support.events import job_due
from tests.support.polling import poll_async


@pytest.fixture
async def broker() -> AsyncIterator[MemoryBroker]:
    broker = MemoryBroker(QueueStore(None), prefetch=4, delivery_limit=2)
    await broker.open()
    yield broker
    await broker.close()


@pytest.fixture
async def bus(broker: MemoryBroker) -> AsyncIterator[MemoryBus]:
    bus = broker.client()
    await bus.start()
    yield bus
    await bus.close(grace=1)


async def test_an_event_reaches_every_queue_bound_to_its_key_and_no_other(
    broker: MemoryBroker, bus: MemoryBus
) -> None:
    got: dict[str, list[str]] = {queue.name: [] for queue in topology.WORK_QUEUES}
    for queue in topology.WORK_QUEUES:

        async def handler(event: Event, name: str = queue.name) -> None:
            got[name].append(event.routing_key)

        await bus.consume(queue, handler)
    scanned = ActivityScanned.model_validate(
        {
            **job_due().model_dump(),
            "summary": {},
            "github_api_calls": 0,
        }
    )
    await bus.publish(job_due())
    await bus.publish(scanned)
    await bus.publish(StepStarted(execution_id="e", job_id="j", project_id="p", step="scan"))
    await poll_async(lambda: sum(map(len, got.values())) == 4)
    await asyncio.sleep(0.05)  # nothing more arrives
    assert got == {
        "herald.scanner": ["job.due"],
        "herald.generator": ["activity.scanned"],
        "herald.api": ["activity.scanned", "step.started"],
        "herald.notifier": [],
        "herald.publisher": [],
    }
    assert await broker.store.pending() == []  # every copy acked, nothing left stored


async def test_a_message_stays_stored_until_its_handler_returns(
    broker: MemoryBroker, bus: MemoryBus
) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(_event: Event) -> None:
        entered.set()
        await release.wait()

    await bus.consume(topology.SCANNER_QUEUE, slow)
    await bus.publish(job_due())
    await entered.wait()
    assert len(await broker.store.pending()) == 1  # unacked while the handler runs
    release.set()
    await poll_async(lambda: not broker.ready_queue(topology.SCANNER_QUEUE).qsize())
    await bus.close(grace=1)
    assert await broker.store.pending() == []


async def test_a_failing_handler_is_redelivered_then_dead_lettered_with_its_reason(
    broker: MemoryBroker, bus: MemoryBus
) -> None:
    deliveries: list[str] = []
    poisoned: list[tuple[str, str]] = []

    async def crashing(event: Event) -> None:
        deliveries.append(event.event_id)
        raise RuntimeError("boom")

    async def on_poison(event: Event, reason: str) -> None:
        poisoned.append((event.event_id, reason))

    await bus.consume(topology.SCANNER_QUEUE, crashing, on_poison=on_poison)
    sent = job_due()
    await bus.publish(sent)
    await poll_async(lambda: bool(poisoned))
    # The first delivery and `delivery_limit` redeliveries, then the dead-letter queue.
    assert deliveries == [sent.event_id] * 3
    assert poisoned[0][0] == sent.event_id
    assert "3 failed deliveries" in poisoned[0][1]
    dead = await broker.store.dead_letters("herald.scanner.dlq")
    assert [(message.message_id, message.routing_key) for message in dead] == [
        (sent.event_id, "job.due")
    ]
    assert dead[0].dead_reason is not None and "RuntimeError('boom')" in dead[0].dead_reason


async def test_an_invalid_event_is_dead_lettered_at_once_and_the_consumer_goes_on(
    broker: MemoryBroker, bus: MemoryBus
) -> None:
    got: list[str] = []

    async def handler(event: Event) -> None:
        if event.execution_id == "exec_bad":
            raise InvalidEventError("refused by the handler")
        got.append(event.execution_id)

    await bus.consume(topology.SCANNER_QUEUE, handler)
    await bus.publish_raw("job.due", b"{not json", message_id="m-broken")
    await bus.publish(job_due(execution_id="exec_bad"))
    await bus.publish(job_due(execution_id="exec_good"))
    await poll_async(lambda: got == ["exec_good"])
    await poll_async(lambda: broker.ready_queue(topology.SCANNER_QUEUE).empty())
    dead = await broker.store.dead_letters()
    assert sorted(message.dead_reason or "" for message in dead)[1] == "refused by the handler"
    assert {message.queue for message in dead} == {"herald.scanner.dlq"}
    assert len(dead) == 2


async def test_a_delayed_message_reaches_only_the_queue_that_asked_and_not_before_its_time(
    broker: MemoryBroker, bus: MemoryBus
) -> None:
    got: dict[str, list[datetime]] = {"api": [], "generator": []}

    async def on_generator(_event: Event) -> None:
        got["generator"].append(datetime.now(UTC))

    async def on_api(_event: Event) -> None:
        got["api"].append(datetime.now(UTC))

    await bus.consume(topology.GENERATOR_QUEUE, on_generator)
    await bus.consume(topology.API_QUEUE, on_api)
    scanned = ActivityScanned.model_validate(
        {**job_due().model_dump(), "summary": {}, "github_api_calls": 0}
    )
    not_before = datetime.now(UTC) + timedelta(milliseconds=300)
    await bus.publish_delayed(scanned, topology.GENERATOR_QUEUE, not_before)
    assert got["generator"] == []
    await poll_async(lambda: bool(got["generator"]))
    assert got["generator"][0] >= not_before
    assert got["api"] == []  # a retry is for the worker that asked, not every subscriber


async def test_cancellation_fans_out_to_every_subscriber_and_is_not_stored(
    broker: MemoryBroker, bus: MemoryBus
) -> None:
    other = broker.client()
    await other.start()
    heard: list[tuple[str, str]] = []
    await bus.on_cancelled(lambda execution_id: heard.append(("one", execution_id)))
    await other.on_cancelled(lambda execution_id: heard.append(("two", execution_id)))
    await bus.publish(ExecutionCancelled(execution_id="exec_9", job_id="j", project_id="p"))
    assert sorted(heard) == [("one", "exec_9"), ("two", "exec_9")]
    await other.close()
    await bus.publish(ExecutionCancelled(execution_id="exec_10", job_id="j", project_id="p"))
    assert heard[-1] == ("one", "exec_10")
    assert await broker.store.pending() == []


async def test_prefetch_bounds_the_messages_handled_at_once(
    broker: MemoryBroker, bus: MemoryBus
) -> None:
    running = 0
    most = 0
    release = asyncio.Event()
    done: list[str] = []

    async def handler(event: Event) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        done.append(event.execution_id)

    await bus.consume(topology.SCANNER_QUEUE, handler)
    for n in range(10):
        await bus.publish(job_due(execution_id=f"exec_{n}"))
    await poll_async(lambda: running == 4)
    release.set()
    await poll_async(lambda: len(done) == 10)
    assert most == 4


async def test_closing_a_client_leaves_unfinished_messages_queued_for_the_next_consumer(
    broker: MemoryBroker,
) -> None:
    first = broker.client()
    await first.start()
    entered = asyncio.Event()

    async def never_finishes(_event: Event) -> None:
        entered.set()
        await asyncio.Event().wait()

    await first.consume(topology.SCANNER_QUEUE, never_finishes)
    sent = job_due()
    await first.publish(sent)
    await entered.wait()
    await first.close(grace=0.1)
    second = broker.client()
    await second.start()
    got: list[str] = []

    async def handler(event: Event) -> None:
        got.append(event.event_id)

    await second.consume(topology.SCANNER_QUEUE, handler)
    await poll_async(lambda: got == [sent.event_id])
    await second.close()


async def test_a_closed_broker_refuses_to_publish(broker: MemoryBroker, bus: MemoryBus) -> None:
    await broker.close()
    assert not bus.is_ready
    with pytest.raises(ConnectionError):
        await bus.publish(job_due())


async def test_an_unavailable_dependency_is_waited_out_without_spending_the_delivery_limit(
    broker: MemoryBroker, bus: MemoryBus
) -> None:
    runs: list[str] = []

    async def flaky(event: Event) -> None:
        runs.append(event.event_id)
        if len(runs) <= broker.delivery_limit + 1:
            raise DependencyUnavailableError("database unreachable")

    await bus.consume(topology.SCANNER_QUEUE, flaky)
    await bus.publish(job_due())
    await poll_async(lambda: len(runs) == broker.delivery_limit + 2, timeout=30)
    assert await broker.store.dead_letters() == []
    await bus.close(grace=1)
    assert await broker.store.pending() == []
