"""Lateness of a published batch: searched in the bodies, the same figures as decoding them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from services.scheduler.lateness import observe_batch_lateness, observe_lateness
from shared.events import JobDue, Repository, Trigger

NAME = "herald_scheduler_fire_lateness_seconds"
NOW = datetime(2032, 3, 1, 9, 0, 0, 120_000, tzinfo=UTC)


def job_due(scheduled_for: datetime, trigger: Trigger = Trigger.SCHEDULE) -> bytes:
    return JobDue(
        execution_id="exe_1",
        job_id="cron_1",
        project_id="prj_1",
        scheduled_for=scheduled_for,
        trigger=trigger,
        window_start=None,
        window_end=scheduled_for,
        # A repository whose name spells the fields the search looks for.
        repository=Repository(local_path='/r/"trigger":"SCHEDULE","scheduledFor":"2000'),
        platforms=["x"],
        deadline=scheduled_for + timedelta(minutes=15),
    ).to_json()


def observed() -> tuple[float, float]:
    count = REGISTRY.get_sample_value(f"{NAME}_count") or 0.0
    total = REGISTRY.get_sample_value(f"{NAME}_sum") or 0.0
    return count, total


def observe_each(bodies: list[bytes]) -> tuple[float, float]:
    before = observed()
    for body in bodies:
        observe_lateness(body, NOW)
    after = observed()
    return after[0] - before[0], after[1] - before[1]


def observe_batch(bodies: list[bytes]) -> tuple[float, float]:
    before = observed()
    observe_batch_lateness(bodies, NOW)
    after = observed()
    return after[0] - before[0], after[1] - before[1]


def test_a_batch_observes_what_decoding_each_body_observes() -> None:
    instant = NOW.replace(microsecond=0)
    bodies = [job_due(instant) for _ in range(5)]
    bodies += [job_due(instant - timedelta(seconds=3)) for _ in range(2)]
    # Catch-up and manual runs are late by design: neither path counts them.
    bodies += [job_due(instant, Trigger.CATCHUP), job_due(instant, Trigger.MANUAL)]
    # A slot after the publish counts as on time.
    bodies.append(job_due(NOW + timedelta(seconds=1)))
    each = observe_each(bodies)
    batch = observe_batch(bodies)
    assert batch[0] == each[0] == 8
    assert batch[1] == pytest.approx(each[1])
    assert batch[1] == pytest.approx(5 * 0.12 + 2 * 3.12)


def test_a_body_spelled_otherwise_is_decoded() -> None:
    compact = job_due(NOW.replace(microsecond=0))
    spaced = json.dumps(json.loads(compact), indent=1).encode()
    assert b'"scheduledFor":"' not in spaced
    assert observe_batch([spaced]) == pytest.approx((1, 0.12))
