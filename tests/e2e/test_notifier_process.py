"""The notifier as a real process: `execution.finished` from RabbitMQ to email, Slack, records."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from shared import topology
from shared.bus import AmqpBus
from shared.events import ExecutionFinished, ExecutionStatus, NotificationSettings, Trigger
from shared.secrets import encrypt, generate_key
from tests.support import processes
from tests.support.fakes.resend import FakeResend
from tests.support.fakes.slack import FakeSlack

pytestmark = pytest.mark.e2e


async def drain(url: str, queue: str, want: int, timeout: float = 30) -> list[dict[str, Any]]:
    """Take messages off a queue until `want` arrived; return (routing key, body) dicts."""
    found: list[dict[str, Any]] = []
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        source = await channel.get_queue(queue, ensure=True)
        deadline = time.monotonic() + timeout
        while len(found) < want and time.monotonic() < deadline:
            message = await source.get(fail=False)
            if message is None:
                await asyncio.sleep(0.1)
                continue
            await message.ack()
            found.append({"type": message.type, **json.loads(message.body)})
    finally:
        await connection.close()
    return found


async def test_the_notifier_alerts_in_app_by_email_and_slack_and_records_each(
    fresh_amqp_url: str, tmp_path: Path
) -> None:
    key = generate_key()
    with FakeResend() as resend, FakeSlack() as slack:
        slack.fail_next(429, "rate_limited", retry_after=1)
        slack_url = slack.webhook()
        notifier = processes.start(
            "notifier",
            {
                "AMQP_URL": fresh_amqp_url,
                "HERALD_SECRET_KEY": key,
                "HERALD_RESEND_API_KEY": resend.api_key,
                "HERALD_RESEND_API_URL": resend.url,
                "HERALD_EMAIL_FROM": "herald <alerts@herald.test>",
                # The local Slack listens on loopback: allowed as the operator would allow it.
                "HERALD_SLACK_WEBHOOK_ORIGINS": slack_url.split("/services/")[0],
                "HERALD_OUTBOUND_ALLOW_NETWORKS": "127.0.0.1/32",
            },
            tmp_path,
        )
        try:
            processes.wait_ready(notifier)
            bus = AmqpBus(fresh_amqp_url, service="tests")
            await bus.start()
            event = ExecutionFinished(
                execution_id="exe_e2e",
                job_id="cron_e2e",
                project_id="prj_e2e",
                status=ExecutionStatus.FAILED,
                trigger=Trigger.SCHEDULE,
                duration=2_000,
                error_message="GitHub 404: <b>Not Found</b>",
                job_name="weekly <digest>",
                project_name="acme",
                user_id="usr_e2e",
                consecutive_failures=2,
                notification_settings=NotificationSettings(
                    recipients=["ada@example.com", "bob@example.com"],
                    failure_threshold=2,
                    slack_webhook_url=encrypt(slack_url, key),
                ),
                link="http://herald.test/api/cron/executions/exe_e2e",
            )
            try:
                await bus.publish(event)
                records = await drain(fresh_amqp_url, topology.API_QUEUE.name, want=4)
                # A redelivered event (same id) sends no second email: Resend's idempotency.
                await bus.publish(event)
                again = await drain(fresh_amqp_url, topology.API_QUEUE.name, want=4)
            finally:
                await bus.close(grace=1)
        finally:
            code = processes.stop(notifier)
    logs = notifier.logs()
    assert code == 0, logs

    [in_app] = [r for r in records if r["type"] == "notification.created"]
    assert (in_app["kind"], in_app["title"]) == ("job_failure", "weekly <digest> failed")
    deliveries = {
        (r["channel"], r["recipient"]): r for r in records if r["type"] == "notification.delivery"
    }
    assert set(deliveries) == {
        ("email", "ada@example.com"),
        ("email", "bob@example.com"),
        ("slack", "http://127.0.0.1/…XXXX"),
    }
    assert all(r["outcome"] == "SENT" for r in deliveries.values())
    assert deliveries[("slack", "http://127.0.0.1/…XXXX")]["attempts"] == 2  # after its 429

    assert sorted(m["to"][0] for m in resend.sent) == ["ada@example.com", "bob@example.com"]
    assert "weekly &lt;digest&gt; failed" in resend.sent[0]["html"]
    assert resend.sent[0]["from"] == "herald <alerts@herald.test>"
    # The same records again, with the same ids (the api's inbox drops them) ...
    assert sorted(r["eventId"] for r in again) == sorted(r["eventId"] for r in records)
    # ... and Resend answered the repeated emails from its idempotency store.
    assert len(resend.sent) == 2
    assert len([r for r in resend.requests if r["path"] == "/emails"]) == 4
    assert len(slack.received) == 2  # Slack has no idempotency: a redelivery posts again
    assert slack_url not in logs
    assert "XXXXXXXXXXXX" not in logs
