"""RabbitMQ topology: the delay ladder choice, queue arguments and name uniqueness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import topology
from shared.topology import (
    DEAD_LETTER_EXCHANGE,
    DELAY_LADDER,
    RETRY_EXCHANGE,
    TARGET_QUEUE_HEADER,
    WORK_QUEUES,
    delay_queue_arguments,
    delay_step_for,
    retry_binding_arguments,
    work_queue_arguments,
)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.5, None),
        (0, None),
        (-5, None),
        (0.999, None),
        (1, "herald.delay.1s"),
        (9.99, "herald.delay.1s"),
        (10, "herald.delay.10s"),
        (59, "herald.delay.10s"),
        (60, "herald.delay.1m"),
        (299, "herald.delay.1m"),
        (300, "herald.delay.5m"),
        (1799, "herald.delay.5m"),
        (1800, "herald.delay.30m"),
        (3600, "herald.delay.30m"),
        (10**9, "herald.delay.30m"),
    ],
)
def test_delay_step_is_the_largest_step_not_exceeding_the_wait(
    seconds: float, expected: str | None
) -> None:
    step = delay_step_for(seconds)

    assert (step.name if step else None) == expected


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e7, allow_nan=False))
def test_delay_step_never_overshoots_and_no_larger_step_fits(seconds: float) -> None:
    step = delay_step_for(seconds)

    if step is None:
        assert seconds < DELAY_LADDER[0].seconds
    else:
        assert step.seconds <= seconds
        assert all(
            other.seconds > seconds for other in DELAY_LADDER if other.seconds > step.seconds
        )


def test_the_ladder_is_strictly_increasing() -> None:
    seconds = [step.seconds for step in DELAY_LADDER]

    assert seconds == sorted(set(seconds))


def test_every_work_queue_has_a_distinct_dead_letter_queue() -> None:
    dead_letters = [queue.dead_letter_queue for queue in WORK_QUEUES]

    assert len(set(dead_letters)) == len(WORK_QUEUES)
    assert all(dlq != queue.name for queue, dlq in zip(WORK_QUEUES, dead_letters, strict=True))


def test_no_queue_name_appears_twice_across_work_dead_letter_and_delay_queues() -> None:
    names = [
        *(queue.name for queue in WORK_QUEUES),
        *(queue.dead_letter_queue for queue in WORK_QUEUES),
        *(step.name for step in DELAY_LADDER),
    ]

    assert len(names) == len(set(names))


@pytest.mark.parametrize("queue", WORK_QUEUES, ids=lambda queue: queue.name)
def test_a_work_queue_is_quorum_with_a_delivery_limit_and_at_least_once_dead_lettering(
    queue: topology.WorkQueue,
) -> None:
    arguments = work_queue_arguments(queue, delivery_limit=7)

    assert arguments["x-queue-type"] == "quorum"
    assert arguments["x-delivery-limit"] == 7
    assert arguments["x-dead-letter-exchange"] == DEAD_LETTER_EXCHANGE
    assert arguments["x-dead-letter-routing-key"] == queue.dead_letter_queue
    assert arguments["x-dead-letter-strategy"] == "at-least-once"
    # RabbitMQ accepts at-least-once dead-lettering only with reject-publish overflow.
    assert arguments["x-overflow"] == "reject-publish"


@pytest.mark.parametrize("step", DELAY_LADDER, ids=lambda step: step.name)
def test_a_delay_queue_expires_after_its_step_into_the_retry_exchange(
    step: topology.DelayStep,
) -> None:
    arguments = delay_queue_arguments(step)

    assert arguments["x-message-ttl"] == step.seconds * 1000
    assert arguments["x-dead-letter-exchange"] == RETRY_EXCHANGE
    assert arguments["x-dead-letter-strategy"] == "at-least-once"
    assert arguments["x-overflow"] == "reject-publish"


def test_a_retry_binding_matches_only_its_own_queue_header() -> None:
    queue = WORK_QUEUES[0]

    assert retry_binding_arguments(queue) == {"x-match": "all", TARGET_QUEUE_HEADER: queue.name}


def test_every_routing_key_a_work_queue_binds_is_an_event_type() -> None:
    from shared.events import EVENT_TYPES

    keys = {key for queue in WORK_QUEUES for key in queue.routing_keys}

    assert keys <= set(EVENT_TYPES)
