"""Dead letters: a failing step ends its execution FAILED; `herald dlq` lists and replays."""

from __future__ import annotations

import asyncio

from services.deadletters import list_dead_letters, replay
from shared import topology
from shared.bus import AmqpBus
from shared.events import Event, Step, StepFailed
from shared.steps import poison_reporter
from tests.support.events import job_due
from tests.support.polling import poll_async


async def test_a_poison_step_fails_its_execution_and_can_be_listed_and_replayed(
    fresh_amqp_url: str,
) -> None:
    bus = AmqpBus(fresh_amqp_url, service="poison", delivery_limit=2)
    await bus.start()
    healthy = False
    handled: list[str] = []
    failures: list[StepFailed] = []

    async def scanner(event: Event) -> None:
        if not healthy:
            raise RuntimeError("scanner bug")
        handled.append(event.event_id)

    async def api(event: Event) -> None:
        if isinstance(event, StepFailed):
            failures.append(event)

    await bus.consume(topology.SCANNER_QUEUE, scanner, on_poison=poison_reporter(bus, Step.SCAN))
    await bus.consume(topology.API_QUEUE, api)
    sent = job_due(execution_id="exec_poison", job_id="cron_p", project_id="prj_p")
    await bus.publish(sent)

    # The execution hears why: one final, non-retriable step failure naming the cause.
    await poll_async(lambda: len(failures) == 1)
    assert failures[0].execution_id == "exec_poison"
    assert failures[0].final and not failures[0].retriable
    assert "dead-lettered after 3 failed deliveries" in failures[0].error
    assert "scanner bug" in failures[0].error

    rows: list = []

    async def listed() -> None:
        rows[:] = await list_dead_letters(fresh_amqp_url, queue="herald.scanner")

    for _ in range(50):
        await listed()
        if rows:
            break
        await asyncio.sleep(0.2)
    assert [(row.message_id, row.routing_key, row.execution_id) for row in rows] == [
        (sent.event_id, "job.due", "exec_poison")
    ]
    assert rows[0].reason == "rejected"
    await listed()
    assert len(rows) == 1  # listing leaves the message where it was

    healthy = True
    assert await replay(fresh_amqp_url, queue="herald.scanner", message_ids={sent.event_id}) == 1
    await poll_async(lambda: handled == [sent.event_id])
    assert await list_dead_letters(fresh_amqp_url, queue="herald.scanner") == []
    await bus.close()
