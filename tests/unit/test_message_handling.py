"""The one rule both buses apply to a consumed message (`shared.handling.decide`)."""

from __future__ import annotations

import pytest

from shared.errors import InvalidEventError
from shared.handling import ACK, decide


def test_a_handled_message_is_acked() -> None:
    assert decide(None, delivery=1, delivery_limit=5) == ACK
    assert decide(None, delivery=9, delivery_limit=5) == ACK  # redelivered, then handled


def test_an_invalid_event_is_dead_lettered_at_once_with_why() -> None:
    outcome = decide(InvalidEventError("version 2 is unknown"), delivery=1, delivery_limit=5)
    assert (outcome.action, outcome.kind, outcome.reason) == (
        "dead_letter",
        "invalid",
        "version 2 is unknown",
    )


@pytest.mark.parametrize("delivery", [1, 2, 5])
def test_a_failed_handler_is_requeued_after_a_growing_pause_up_to_the_limit(
    delivery: int,
) -> None:
    outcome = decide(RuntimeError("boom"), delivery=delivery, delivery_limit=5)
    assert outcome.action == "requeue"
    expected = min(2.0, 0.2 * 2 ** (delivery - 1))  # 0.2 s doubling, capped at 2 s
    assert expected * 0.9 <= outcome.pause <= expected * 1.1


def test_the_delivery_past_the_limit_is_dead_lettered_as_a_failing_handler() -> None:
    outcome = decide(RuntimeError("boom"), delivery=6, delivery_limit=5)
    assert (outcome.action, outcome.kind) == ("dead_letter", "handler_failed")
    assert outcome.reason == "dead-lettered after 6 failed deliveries: RuntimeError('boom')"
