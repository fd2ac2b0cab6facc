"""A moved schedule reaches its owner: in-app always, by email when the project asks.

HTTP is stubbed at the wire (httpx.MockTransport); what the handler publishes is recorded.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from shared.events import (
    NotificationCreated,
    NotificationDelivery,
    NotificationSettings,
    ScheduleMoved,
)
from shared.secrets import encrypt
from tests.support.bus import RecordingBus
from tests.support.notifier import KEY, Wire, handler_on


def moved(**settings: Any) -> ScheduleMoved:
    return ScheduleMoved(
        job_id="cron_1",
        project_id="prj_1",
        user_id="usr_1",
        job_name="morning digest",
        project_name="acme",
        timezone="America/Asuncion",
        previous_run_at=datetime(2026, 11, 2, 12, 0, tzinfo=UTC),
        next_run_at=datetime(2026, 11, 2, 13, 0, tzinfo=UTC),
        rules_version="2026b",
        previous_rules_version="2026a",
        notification_settings=NotificationSettings(**settings),
        recipients=settings.get("recipients", []),
        link="https://herald.example/console/jobs/cron_1",
    )


async def test_the_owner_gets_an_in_app_alert_even_without_asking_for_the_kind() -> None:
    wire, bus = Wire(), RecordingBus()
    event = moved(recipients=["ada@example.com"])  # the default kinds: no schedule_moved

    await handler_on(wire, bus)(event)

    [alert] = bus.of(NotificationCreated)
    assert isinstance(alert, NotificationCreated)
    assert (alert.user_id, alert.job_id, alert.execution_id) == ("usr_1", "cron_1", "")
    assert alert.kind == "schedule_moved"
    assert alert.title == "morning digest: next run moved"
    assert "2026-11-02 12:00 UTC to 2026-11-02 13:00 UTC" in alert.body
    assert "America/Asuncion" in alert.body
    assert alert.link == "https://herald.example/console/jobs/cron_1"
    assert wire.requests == []
    assert bus.of(NotificationDelivery) == []


async def test_an_owner_who_asks_for_it_also_gets_an_email_and_no_chat_message() -> None:
    wire, bus = Wire(), RecordingBus()
    event = moved(
        recipients=["ada@example.com"],
        notification_events=["job_failure", "schedule_moved"],
        slack_webhook_url=encrypt("https://hooks.slack.com/services/T1/B1/SECRET", KEY),
    )

    await handler_on(wire, bus)(event)

    assert len(bus.of(NotificationCreated)) == 1
    [sent] = wire.requests
    assert sent.url.host == "api.resend.test"
    body = json.loads(sent.content)
    assert body["to"] == ["ada@example.com"]
    assert "morning digest: next run moved" in body["subject"]
    [record] = bus.of(NotificationDelivery)
    assert isinstance(record, NotificationDelivery)
    assert (record.channel, record.recipient, record.outcome) == (
        "email",
        "ada@example.com",
        "SENT",
    )
    assert record.kind == "schedule_moved"


async def test_email_notifications_off_sends_no_email_even_for_an_asked_kind() -> None:
    wire, bus = Wire(), RecordingBus()
    event = moved(
        recipients=["ada@example.com"],
        notification_events=["schedule_moved"],
        email_notifications=False,
    )

    await handler_on(wire, bus)(event)

    assert len(bus.of(NotificationCreated)) == 1
    assert wire.requests == []
    assert bus.of(NotificationDelivery) == []
