"""The RabbitMQ bus on a real broker: routing, acks, dead letters, the delay ladder."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from shared import topology
from shared.bus import AmqpBus
from shared.events import Event, ExecutionCancelled, JobDue, StepStarted
from tests.support.events import job_due
from tests.support.polling import poll_async
from tests.support.servers import connection_names, queue_depth


async def test_an_event_reaches_each_queue_bound_to_its_routing_key(bus: AmqpBus) -> None:
    got: list[Event] = []

    async def handler(event: Event) -> None:
        got.append(event)

    await bus.consume(topology.SCANNER_QUEUE, handler)
    sent = job_due()
    await bus.publish(sent)
    # step.started is bound to the api queue only: the scanner never sees it.
    await bus.publish(StepStarted(execution_id="e", job_id="j", project_id="p", step="scan"))
    await poll_async(lambda: len(got) == 1)
    await asyncio.sleep(0.3)
    assert [event.event_id for event in got] == [sent.event_id]
    assert isinstance(got[0], JobDue)


async def test_a_malformed_message_is_dead_lettered_and_the_consumer_goes_on(
    bus: AmqpBus, fresh_amqp_url: str
) -> None:
    got: list[Event] = []

    async def handler(event: Event) -> None:
        got.append(event)

    await bus.consume(topology.SCANNER_QUEUE, handler)
    await bus.publish_raw("job.due", b'{"not": "an event"}', message_id="bad-1")
    await bus.publish_raw("job.due", b"\xff\xfe not json", message_id="bad-2")
    good = job_due()
    await bus.publish(good)
    await poll_async(lambda: len(got) == 1)
    dead = topology.SCANNER_QUEUE.dead_letter_queue
    await poll_async(lambda: queue_depth(fresh_amqp_url, dead) == 2)
    assert got[0].event_id == good.event_id


async def test_an_unknown_version_is_dead_lettered(bus: AmqpBus, fresh_amqp_url: str) -> None:
    body = job_due().model_dump(mode="json", by_alias=True)
    body["version"] = 2

    async def handler(event: Event) -> None:
        raise AssertionError("a version-2 event must never reach a handler")

    await bus.consume(topology.SCANNER_QUEUE, handler)
    await bus.publish_raw("job.due", json.dumps(body).encode())
    dead = topology.SCANNER_QUEUE.dead_letter_queue
    await poll_async(lambda: queue_depth(fresh_amqp_url, dead) == 1)


async def test_a_handler_that_keeps_crashing_is_dead_lettered_after_the_delivery_limit(
    bus: AmqpBus, fresh_amqp_url: str
) -> None:
    calls: list[str] = []

    async def handler(event: Event) -> None:
        calls.append(event.event_id)
        raise RuntimeError("boom")

    await bus.consume(topology.SCANNER_QUEUE, handler)
    await bus.publish(job_due())
    dead = topology.SCANNER_QUEUE.dead_letter_queue
    await poll_async(lambda: queue_depth(fresh_amqp_url, dead) == 1, timeout=30)
    # delivery limit 3: the first delivery plus three redeliveries, then the dead-letter queue.
    assert 3 <= len(calls) <= 4


async def test_a_delayed_message_returns_only_to_the_queue_that_asked(bus: AmqpBus) -> None:
    scanner: list[tuple[str, datetime]] = []
    api: list[str] = []

    async def on_scanner(event: Event) -> None:
        scanner.append((event.event_id, datetime.now(UTC)))

    async def on_api(event: Event) -> None:
        api.append(event.event_id)

    await bus.consume(topology.SCANNER_QUEUE, on_scanner)
    await bus.consume(topology.API_QUEUE, on_api)
    event = job_due()
    not_before = datetime.now(UTC) + timedelta(seconds=1.5)
    await bus.publish_delayed(event, topology.SCANNER_QUEUE, not_before)
    await poll_async(lambda: len(scanner) == 1, timeout=20)
    assert scanner[0][0] == event.event_id
    assert scanner[0][1] >= not_before - timedelta(milliseconds=50)
    assert api == []


async def test_cancellations_reach_every_process(fresh_amqp_url: str) -> None:
    first = AmqpBus(fresh_amqp_url, service="one")
    second = AmqpBus(fresh_amqp_url, service="two")
    await first.start()
    await second.start()
    seen: dict[str, list[str]] = {"one": [], "two": []}
    await first.on_cancelled(seen["one"].append)
    await second.on_cancelled(seen["two"].append)
    await first.publish(ExecutionCancelled(execution_id="exec_9", job_id="j", project_id="p"))
    await poll_async(lambda: seen["one"] == ["exec_9"] and seen["two"] == ["exec_9"])
    await first.close()
    await second.close()


async def test_connections_are_named_for_the_management_ui(fresh_amqp_url: str) -> None:
    bus = AmqpBus(fresh_amqp_url, service="naming")
    await bus.start()
    try:
        await poll_async(
            lambda: any(
                name.startswith("herald-naming@") for name in connection_names(fresh_amqp_url)
            ),
            timeout=30,
        )
        assert bus.is_ready
    finally:
        await bus.close()
    assert not bus.is_ready


async def test_closing_lets_the_in_flight_message_finish_and_ack(
    fresh_amqp_url: str,
) -> None:
    bus = AmqpBus(fresh_amqp_url, service="draining")
    await bus.start()
    started, finished = asyncio.Event(), []

    async def slow(event: Event) -> None:
        started.set()
        await asyncio.sleep(1.0)
        finished.append(event.event_id)

    await bus.consume(topology.SCANNER_QUEUE, slow)
    sent = job_due()
    await bus.publish(sent)
    await asyncio.wait_for(started.wait(), timeout=10)
    await bus.close(grace=10)
    assert finished == [sent.event_id]
    assert queue_depth(fresh_amqp_url, topology.SCANNER_QUEUE.name) == 0


async def test_a_message_unfinished_at_shutdown_is_redelivered_not_lost(
    fresh_amqp_url: str,
) -> None:
    bus = AmqpBus(fresh_amqp_url, service="impatient")
    await bus.start()
    started = asyncio.Event()

    async def stuck(event: Event) -> None:
        started.set()
        await asyncio.sleep(60)

    await bus.consume(topology.SCANNER_QUEUE, stuck)
    sent = job_due()
    await bus.publish(sent)
    await asyncio.wait_for(started.wait(), timeout=10)
    await bus.close(grace=0.2)  # the connection closes with the message unacked
    await poll_async(
        lambda: queue_depth(fresh_amqp_url, topology.SCANNER_QUEUE.name) == 1, timeout=30
    )
    again: list[str] = []
    second = AmqpBus(fresh_amqp_url, service="successor")
    await second.start()

    async def record(event: Event) -> None:
        again.append(event.event_id)

    await second.consume(topology.SCANNER_QUEUE, record)
    await poll_async(lambda: again == [sent.event_id])
    await second.close()
