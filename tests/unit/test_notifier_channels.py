"""Deliveries per channel: retries honour the server, failures stay on their channel.

HTTP is stubbed at the wire (httpx.MockTransport); waits go through an injected sleep.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from services.notifier.channels import (
    Channels,
    Delivery,
    attempt,
    delivery_key,
    mask_webhook,
    retry_wait,
)
from shared.errors import PermanentError, TransientError
from shared.events import (
    ExecutionFinished,
    ExecutionStatus,
    NotificationSettings,
    RecipientConfirmationRequested,
    Trigger,
)
from shared.secrets import encrypt, generate_key
from shared.settings import Settings

KEY = generate_key()
SLACK_URL = "https://hooks.slack.com/services/T1/B1/SECRETSECRET"
DISCORD_URL = "https://discord.com/api/v10/webhooks/1/SECRETTOKEN"


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def finished(**settings: Any) -> ExecutionFinished:
    return ExecutionFinished(
        execution_id="exe_1",
        job_id="cron_1",
        project_id="prj_1",
        status=ExecutionStatus.FAILED,
        trigger=Trigger.SCHEDULE,
        job_name="daily",
        project_name="acme",
        user_id="usr_1",
        consecutive_failures=1,
        error_message="boom",
        link="http://herald.test/api/cron/executions/exe_1",
        notification_settings=NotificationSettings(**settings),
    )


def sends(*outcomes: Exception | None) -> Delivery:
    script = list(outcomes)

    async def send() -> None:
        outcome = script.pop(0)
        if outcome is not None:
            raise outcome

    return Delivery("slack", "https://hooks.slack.com/…CRET", send)


async def test_a_transient_error_is_retried_after_the_servers_wait() -> None:
    sleeps = Sleeps()
    delivery = sends(TransientError("429", retry_after=2.5), None)

    result = await attempt(delivery, attempts=3, max_wait=30, sleep=sleeps)

    assert (result.outcome, result.attempts, result.error) == ("SENT", 2, None)
    assert sleeps.waits == [2.5]


async def test_a_permanent_error_is_not_retried() -> None:
    sleeps = Sleeps()

    result = await attempt(
        sends(PermanentError("Slack 404 no_service")), attempts=3, max_wait=30, sleep=sleeps
    )

    assert (result.outcome, result.attempts, result.error) == ("FAILED", 1, "Slack 404 no_service")
    assert sleeps.waits == []


async def test_tries_run_out_with_the_last_error() -> None:
    sleeps = Sleeps()
    delivery = sends(TransientError("a"), TransientError("b"), TransientError("c"))

    result = await attempt(delivery, attempts=3, max_wait=30, sleep=sleeps, jitter=lambda: 1.0)

    assert (result.outcome, result.attempts, result.error) == ("FAILED", 3, "c")
    assert sleeps.waits == [1.0, 2.0]


async def test_a_wait_beyond_the_notifiers_patience_fails_at_once() -> None:
    sleeps = Sleeps()

    result = await attempt(
        sends(TransientError("Resend 429", retry_after=3600)), attempts=3, max_wait=30, sleep=sleeps
    )

    assert result.outcome == "FAILED"
    assert result.error is not None
    assert "asked to wait 3600 s" in result.error
    assert sleeps.waits == []


async def test_a_crashing_transport_is_recorded_not_raised() -> None:
    result = await attempt(sends(RuntimeError(SLACK_URL)), attempts=3, max_wait=30)

    assert (result.outcome, result.error) == ("FAILED", "unexpected error: RuntimeError")


@pytest.mark.parametrize(
    ("attempt_no", "retry_after", "jitter", "expected"),
    [
        (1, None, 0.0, 0.5),
        (1, None, 1.0, 1.0),
        (3, None, 1.0, 4.0),
        (9, None, 1.0, 8.0),
        (1, 7.0, 0.3, 7.0),
    ],
)
def test_retry_wait(
    attempt_no: int, retry_after: float | None, jitter: float, expected: float
) -> None:
    assert retry_wait(attempt_no, retry_after, jitter) == pytest.approx(expected)


def test_a_delivery_key_is_stable_per_event_channel_and_recipient() -> None:
    key = delivery_key("evt", "email", "Ada@Example.com")

    assert key == delivery_key("evt", "email", "ada@example.com")
    assert key != delivery_key("evt", "email", "bob@example.com")
    assert key != delivery_key("evt2", "email", "ada@example.com")
    assert len(key) <= 256


def test_a_masked_webhook_hides_its_token() -> None:
    assert mask_webhook(SLACK_URL) == "https://hooks.slack.com/…CRET"


class Wire:
    """Answers by host; records every request."""

    def __init__(self, answers: dict[str, list[httpx.Response]]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers[request.url.host].pop(0)

    def to(self, host: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host == host]


def channels(wire: Wire, sleeps: Sleeps, **settings: Any) -> Channels:
    values: dict[str, Any] = {"secret_key": KEY, "email_from": "herald <h@herald.test>", **settings}
    http = httpx.AsyncClient(transport=httpx.MockTransport(wire))
    return Channels(Settings(**values), http, sleep=sleeps)


async def test_one_failing_channel_does_not_hold_back_the_others() -> None:
    wire = Wire(
        {
            "api.resend.test": [httpx.Response(200, json={"id": "e1"})],
            "hooks.slack.com": [httpx.Response(404, text="no_service")],
            "discord.com": [
                httpx.Response(
                    429,
                    json={
                        "message": "You are being rate limited.",
                        "retry_after": 0.4,
                        "global": False,
                    },
                ),
                httpx.Response(204),
            ],
        }
    )
    sleeps = Sleeps()
    event = finished(
        recipients=["ada@example.com"],
        slack_webhook_url=encrypt(SLACK_URL, KEY),
        discord_webhook_url=encrypt(DISCORD_URL, KEY),
    )
    notifier = channels(
        wire, sleeps, resend_api_key="re_k", resend_api_url="https://api.resend.test"
    )

    results = {r.channel: r for r in await notifier.deliver(event, "job_failure")}

    assert (results["email"].outcome, results["email"].recipient) == ("SENT", "ada@example.com")
    assert (results["slack"].outcome, results["slack"].error) == ("FAILED", "Slack 404 no_service")
    assert results["slack"].recipient == "https://hooks.slack.com/…CRET"
    assert (results["discord"].outcome, results["discord"].attempts) == ("SENT", 2)
    assert sleeps.waits == [0.4]
    sent = json.loads(wire.to("discord.com")[-1].content)
    assert sent["allowed_mentions"] == {"parse": []}
    email = wire.to("api.resend.test")[0]
    assert email.headers["authorization"] == "Bearer re_k"
    assert email.headers["idempotency-key"] == delivery_key(
        event.event_id, "email", "ada@example.com"
    )


async def test_resend_quota_errors_are_not_retried_but_rate_limits_are() -> None:
    quota = {"statusCode": 429, "message": "quota", "name": "daily_quota_exceeded"}
    limited = {"statusCode": 429, "message": "slow down", "name": "rate_limit_exceeded"}
    wire = Wire(
        {
            "api.resend.test": [
                httpx.Response(
                    429, json=limited, headers={"ratelimit-remaining": "0", "ratelimit-reset": "2"}
                ),
                httpx.Response(200, json={"id": "e1"}),
                httpx.Response(429, json=quota),
            ]
        }
    )
    sleeps = Sleeps()
    notifier = channels(
        wire, sleeps, resend_api_key="re_k", resend_api_url="https://api.resend.test"
    )
    event = finished(recipients=["a@example.com", "b@example.com"])

    results = await notifier.deliver(event, "job_failure")

    assert [(r.recipient, r.outcome, r.attempts) for r in results] == [
        ("a@example.com", "SENT", 2),
        ("b@example.com", "FAILED", 1),
    ]
    assert results[1].error == "Resend 429 daily_quota_exceeded: quota"
    assert sleeps.waits == [2.0]


async def test_without_an_email_transport_email_is_skipped_and_recorded() -> None:
    notifier = channels(Wire({}), Sleeps())
    event = finished(recipients=["a@example.com", "A@example.com"])

    results = await notifier.deliver(event, "job_failure")

    assert notifier.email_transport is None
    assert [(r.channel, r.outcome, r.attempts) for r in results] == [("email", "SKIPPED", 0)]


async def test_email_off_in_the_settings_sends_none() -> None:
    notifier = channels(Wire({}), Sleeps(), resend_api_key="re_k")

    assert (
        await notifier.deliver(
            finished(recipients=["a@x.test"], email_notifications=False), "job_failure"
        )
        == []
    )


async def test_a_webhook_that_cannot_be_decrypted_fails_without_sending() -> None:
    wire = Wire({})
    notifier = channels(wire, Sleeps())
    event = finished(slack_webhook_url=encrypt(SLACK_URL, generate_key()))

    [result] = await notifier.deliver(event, "job_failure")

    assert (result.channel, result.outcome, result.attempts) == ("slack", "FAILED", 1)
    assert result.error is not None
    assert "HERALD_SECRET_KEY" in result.error
    assert wire.requests == []


async def test_a_template_that_fails_to_render_is_a_recorded_permanent_failure() -> None:
    notifier = channels(Wire({}), Sleeps(), resend_api_key="re_k")

    [result] = await notifier.deliver(finished(recipients=["a@x.test"]), "job_unknown")

    assert (result.outcome, result.attempts) == ("FAILED", 1)
    assert result.error is not None
    assert result.error.startswith("email template failed to render")


def question(
    link: str = "https://herald.test/console/recipients/confirm?token=t0k",
) -> RecipientConfirmationRequested:
    return RecipientConfirmationRequested(
        project_id="prj_1",
        user_id="usr_1",
        email="ops@example.com",
        requested_by="Ada <ada@example.com>",
        project_name="acme <b>",
        link=encrypt(link, KEY),
    )


async def test_an_address_is_asked_by_email_once_with_its_link() -> None:
    wire = Wire({"api.resend.test": [httpx.Response(200, json={"id": "e1"})]})
    notifier = channels(
        wire, Sleeps(), resend_api_key="re_k", resend_api_url="https://api.resend.test"
    )
    event = question()

    result = await notifier.ask(event)

    assert (result.channel, result.recipient, result.outcome) == (
        "email",
        "ops@example.com",
        "SENT",
    )
    [sent] = wire.to("api.resend.test")
    body = json.loads(sent.content)
    assert body["to"] == ["ops@example.com"] or body["to"] == "ops@example.com"
    assert "Ada <ada@example.com> would send you alerts" in body["subject"]
    assert "https://herald.test/console/recipients/confirm?token=t0k" in body["text"]
    assert "acme &lt;b&gt;" in body["html"]  # what a user typed is escaped
    assert sent.headers["idempotency-key"] == delivery_key(event.event_id, "email", event.email)


async def test_without_an_email_transport_the_question_is_skipped() -> None:
    result = await channels(Wire({}), Sleeps()).ask(question())

    assert (result.outcome, result.error) == ("SKIPPED", "this server has no email transport")


async def test_a_question_whose_link_cannot_be_opened_fails_without_sending() -> None:
    wire = Wire({})
    event = question().model_copy(update={"link": encrypt("x", generate_key())})
    notifier = channels(
        wire, Sleeps(), resend_api_key="re_k", resend_api_url="https://api.resend.test"
    )

    result = await notifier.ask(event)

    assert result.outcome == "FAILED"
    assert wire.requests == []
