"""A post that could not be published is mailed to its owner when the project asks for
`post_failed` (the api stored the in-app alert already); never to a chat.

HTTP is stubbed at the wire (httpx.MockTransport); what the handler publishes is recorded.
"""

from __future__ import annotations

import json
from typing import Any

from shared.events import (
    NotificationCreated,
    NotificationDelivery,
    NotificationSettings,
    PostUnpublished,
)
from shared.secrets import encrypt
from tests.support.bus import RecordingBus
from tests.support.notifier import KEY, Wire, handler_on

REASON = "Bluesky 400 InvalidRequest: Record/text must not be longer than 300 graphemes"


def unpublished(**settings: Any) -> PostUnpublished:
    return PostUnpublished(
        execution_id="exe_1",
        job_id="cron_1",
        project_id="prj_1",
        user_id="usr_1",
        post_id="cnt_1",
        platform="bluesky",
        reason=REASON,
        job_name="<b>weekly</b> digest",
        project_name="acme",
        notification_settings=NotificationSettings(**settings),
        recipients=settings.get("recipients", []),
        link="https://herald.example/console/posts/cnt_1",
    )


async def test_an_owner_who_asks_for_it_gets_the_networks_reason_by_email_only() -> None:
    wire, bus = Wire(), RecordingBus()
    event = unpublished(
        recipients=["ada@example.com"],
        notification_events=["post_failed"],
        slack_webhook_url=encrypt("https://hooks.slack.com/services/T1/B1/SECRET", KEY),
    )

    await handler_on(wire, bus)(event)

    [sent] = wire.requests
    assert sent.url.host == "api.resend.test"
    body = json.loads(sent.content)
    assert body["to"] == ["ada@example.com"]
    assert body["subject"] == "[herald] <b>weekly</b> digest: a post could not be published (acme)"
    assert REASON in body["text"]
    assert "&lt;b&gt;weekly&lt;/b&gt;" in body["html"]
    assert "https://herald.example/console/posts/cnt_1" in body["text"]
    [record] = bus.of(NotificationDelivery)
    assert isinstance(record, NotificationDelivery)
    assert (record.channel, record.outcome, record.kind) == ("email", "SENT", "post_failed")
    assert bus.of(NotificationCreated) == []


async def test_no_email_unless_the_project_asks_for_post_failed() -> None:
    wire, bus = Wire(), RecordingBus()
    await handler_on(wire, bus)(unpublished(recipients=["ada@example.com"]))
    assert wire.requests == []
    assert bus.published == []
