"""WEBHOOK deliveries without a network: the signed document, what each answer means, and
how the generator retries only the delivery (its posts kept) or records its end."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime

import httpx
import pytest

from services.generator.delivery import (
    Deliverer,
    delivery_id_of,
    document,
    encode,
    headers_for,
    judge,
)
from services.generator.generate import pending_platforms
from services.generator.handlers import make_handler
from shared.cancellation import CancelledSet
from shared.destinations import webhook_host, webhook_job_refusal
from shared.events import (
    ActivityScanned,
    ContentGenerated,
    JobType,
    PostResult,
    Step,
    StepFailed,
    StepStarted,
    WebhookTarget,
)
from shared.outbound import IPAddress, guarded_client
from shared.secrets import encrypt, generate_key
from shared.settings import Settings
from shared.signatures import signature_matches
from tests.support.bus import RecordingBus, scanned

KEY = generate_key()
SECRET = "s3cret-signing-key"
URL = "https://hooks.example.com/herald/T0K3N"


def settings(**values: object) -> Settings:
    return Settings(secret_key=KEY, **values)  # type: ignore[arg-type]


def webhook_run(
    url: str = URL, *, max_retries: int = 3, execution_id: str = "exe_1"
) -> ActivityScanned:
    event = scanned(["x", "blog"], max_retries=max_retries, execution_id=execution_id)
    return event.model_copy(
        update={
            "job_type": JobType.WEBHOOK,
            "webhook": WebhookTarget(
                url=encrypt(url, KEY),
                secret=encrypt(SECRET, KEY),
                job_name="Weekly digest",
                project_name="Octo",
            ),
        }
    )


POSTS = [PostResult(platform="x", status="GENERATED", title="t", body="b", characters=1)]


def test_the_document_is_signed_over_its_raw_body_with_the_jobs_secret() -> None:
    event = webhook_run()
    sent_at = datetime(2025, 3, 8, 9, 30, tzinfo=UTC)
    body = encode(document(event, POSTS, delivery_id="d-1", sent_at=sent_at))
    headers = headers_for(body, secret=SECRET, delivery_id="d-1")

    assert signature_matches(SECRET, body, headers["X-Herald-Signature-256"])
    assert headers["X-Herald-Signature-256"].startswith("sha256=")
    assert not signature_matches("another secret", body, headers["X-Herald-Signature-256"])
    assert not signature_matches(SECRET, body + b" ", headers["X-Herald-Signature-256"])
    assert headers["X-Herald-Delivery"] == "d-1"
    assert headers["X-Herald-Event"] == "activity"
    assert headers["User-Agent"].startswith("herald")
    assert headers["Content-Type"] == "application/json"


def test_the_document_names_the_run_its_window_activity_and_posts() -> None:
    event = webhook_run()
    sent_at = datetime(2025, 3, 8, 9, 30, tzinfo=UTC)
    sent = json.loads(encode(document(event, POSTS, delivery_id="d-1", sent_at=sent_at)))

    assert sent["event"] == "activity"
    assert sent["deliveryId"] == "d-1"
    assert sent["sentAt"] == "2025-03-08T09:30:00Z"
    assert sent["executionId"] == "exe_1"
    assert sent["job"] == {"id": "cron_1", "name": "Weekly digest", "type": "WEBHOOK"}
    assert sent["project"] == {"id": "prj_1", "name": "Octo"}
    assert sent["repository"] == {"owner": "octo", "name": "repo"}
    assert sent["window"] == {"start": "2025-03-01T00:00:00Z", "end": "2025-03-08T00:00:00Z"}
    assert sent["activity"]["commits"] == 2
    assert sent["activity"]["pullRequests"] == 1
    assert [item["title"] for item in sent["activity"]["items"]] == ["feat: digest", "Fix login"]
    assert "postsDone" not in sent["activity"]
    assert sent["posts"] == [
        {"platform": "x", "status": "GENERATED", "title": "t", "body": "b", "characters": 1,
         "error": None}
    ]  # fmt: skip
    # Nothing secret travels in the document: neither the URL nor the secret.
    assert "T0K3N" not in json.dumps(sent)
    assert SECRET not in json.dumps(sent)


def test_the_delivery_id_is_the_executions_own_whatever_the_attempt() -> None:
    assert delivery_id_of("exe_1") == delivery_id_of("exe_1")
    assert delivery_id_of("exe_1") != delivery_id_of("exe_2")


@pytest.mark.parametrize(
    ("status", "delivered", "retriable"),
    [
        (200, True, False),
        (202, True, False),
        (204, True, False),
        (500, False, True),
        (502, False, True),
        (503, False, True),
        (429, False, True),
        (400, False, False),
        (401, False, False),
        (404, False, False),
        (410, False, False),
        (301, False, False),
        (308, False, False),
    ],
)
def test_what_each_answer_means(status: int, delivered: bool, retriable: bool) -> None:
    answer = judge(status, {})
    assert (answer.delivered, answer.retriable, answer.status_code) == (
        delivered,
        retriable,
        status,
    )


def test_a_429_or_503_is_retried_after_the_receivers_retry_after() -> None:
    assert judge(429, {"retry-after": "120"}).retry_after == 120
    assert judge(503, {"retry-after": "7"}).retry_after == 7
    assert judge(500, {}).retry_after is None


def test_a_redirect_is_refused_and_says_why() -> None:
    assert "does not follow redirects" in (judge(302, {}).error or "")


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://hooks.example.com/x", "must be an https URL"),
        ("https://127.0.0.1/x", "a loopback address"),
        ("https://localhost:8443/x", "a loopback address"),
        ("https://app.localhost/x", "a loopback address"),
        ("https://[::1]/x", "a loopback address"),
        ("https://10.0.0.5/x", "a private address"),
        ("https://192.168.1.20/x", "a private address"),
        ("https://169.254.169.254/latest/meta-data", "a link-local address"),
        ("https://[fd00::1]/x", "a unique-local address"),
        ("https://[::ffff:127.0.0.1]/x", "a loopback address"),
        ("https://user:pw@hooks.example.com/x", "must not carry a user name or password"),
        ("https://hooks.example.com/x#frag", "must not carry a fragment"),
        ("ftp://hooks.example.com/x", "must be an http or https URL"),
        ("https://hooks.example.com/a b", "without spaces"),
        ("not-a-url", "must be an http or https URL"),
    ],
)
def test_a_webhook_url_is_refused_for_its_rule(url: str, rule: str) -> None:
    reason = webhook_job_refusal(url, settings())
    assert reason is not None and rule in reason
    # The reason never quotes the URL: it may embed a token.
    assert url not in reason


def test_what_the_operator_allows_passes() -> None:
    assert webhook_job_refusal(URL, settings()) is None
    assert webhook_job_refusal("https://hooks.example.com/x?token=abc", settings()) is None
    allowing = settings(webhook_allow_http=True, outbound_allow_networks=["127.0.0.1/32"])
    assert webhook_job_refusal("http://127.0.0.1:9000/hook", allowing) is None
    assert webhook_job_refusal("http://10.0.0.5/hook", allowing) is not None


def test_the_host_shown_leaves_out_path_and_query() -> None:
    assert webhook_host("https://hooks.example.com/secret/path?token=1") == "hooks.example.com"
    assert webhook_host("http://127.0.0.1:9000/x") == "127.0.0.1:9000"


class Receiver:
    """A scripted receiver behind httpx's mock transport: nothing leaves the process."""

    def __init__(self, *statuses: int, headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses)
        self.headers = headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status = self.statuses.pop(0) if self.statuses else 200
        return httpx.Response(status, headers=self.headers)

    def deliverer(self, **values: object) -> Deliverer:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return Deliverer(client, settings(**values))


async def handle(event: ActivityScanned, receiver: Receiver, **values: object) -> RecordingBus:
    bus = RecordingBus()
    handler = make_handler(bus, CancelledSet(), None, deliverer=receiver.deliverer(**values))
    await handler(event)
    return bus


async def test_a_500_retries_only_the_delivery_and_the_retry_delivers_the_same_posts() -> None:
    receiver = Receiver(500, 200)
    first = await handle(webhook_run(), receiver)

    assert not first.of(ContentGenerated)
    failed = first.of(StepFailed)
    assert len(failed) == 1 and isinstance(failed[0], StepFailed)
    assert failed[0].step == Step.DELIVER and not failed[0].final
    assert "answered 500" in failed[0].error
    [(retry, _, _)] = first.delayed
    assert isinstance(retry, ActivityScanned)
    assert retry.delivery_attempts == 1 and retry.attempt == 2
    # Every post is finished: the retry writes none again.
    assert pending_platforms(retry) == []
    assert [post.platform for post in retry.summary.posts_done] == ["x", "blog"]

    second = await handle(retry, receiver)
    started = [event.step for event in second.of(StepStarted) if isinstance(event, StepStarted)]
    assert started == [Step.DELIVER]
    [done] = second.of(ContentGenerated)
    assert isinstance(done, ContentGenerated) and done.delivery is not None
    assert done.delivery.outcome == "DELIVERED"
    assert (done.delivery.attempts, done.delivery.status_code) == (2, 200)
    assert done.delivery.host == "hooks.example.com"
    assert done.results == retry.summary.posts_done
    ids = {request.headers["X-Herald-Delivery"] for request in receiver.requests}
    assert ids == {delivery_id_of("exe_1")}
    bodies = [json.loads(request.content) for request in receiver.requests]
    assert bodies[0]["posts"] == bodies[1]["posts"]
    for request in receiver.requests:
        assert signature_matches(SECRET, request.content, request.headers["X-Herald-Signature-256"])


async def test_a_429_waits_at_least_its_retry_after() -> None:
    receiver = Receiver(429, headers={"Retry-After": "600"})
    before = datetime.now(UTC)
    bus = await handle(webhook_run(), receiver)
    [(_, _, not_before)] = bus.delayed
    assert (not_before - before).total_seconds() >= 600


async def test_a_410_fails_the_delivery_at_once_with_the_receivers_status() -> None:
    receiver = Receiver(410)
    bus = await handle(webhook_run(), receiver)

    assert not bus.delayed
    [done] = bus.of(ContentGenerated)
    assert isinstance(done, ContentGenerated) and done.delivery is not None
    assert (done.delivery.outcome, done.delivery.status_code, done.delivery.attempts) == (
        "FAILED",
        410,
        1,
    )
    assert len(receiver.requests) == 1


async def test_a_5xx_past_the_jobs_retries_fails_saying_they_are_spent() -> None:
    receiver = Receiver(503)
    bus = await handle(webhook_run(max_retries=0), receiver)

    assert not bus.delayed
    [done] = bus.of(ContentGenerated)
    assert isinstance(done, ContentGenerated) and done.delivery is not None
    assert done.delivery.outcome == "FAILED" and done.delivery.status_code == 503
    assert "retries exhausted" in (done.delivery.error or "")


async def test_a_private_address_is_never_sent_to() -> None:
    receiver = Receiver()
    bus = await handle(webhook_run("https://10.1.2.3/hook"), receiver)

    assert receiver.requests == []
    assert not bus.delayed
    [done] = bus.of(ContentGenerated)
    assert isinstance(done, ContentGenerated) and done.delivery is not None
    assert done.delivery.outcome == "FAILED" and done.delivery.status_code is None
    assert "a private address" in (done.delivery.error or "")


async def test_a_url_encrypted_with_another_key_fails_without_a_request() -> None:
    receiver = Receiver()
    event = webhook_run()
    other = encrypt(URL, generate_key())
    assert event.webhook is not None
    event = event.model_copy(update={"webhook": event.webhook.model_copy(update={"url": other})})
    bus = await handle(event, receiver)

    assert receiver.requests == []
    [done] = bus.of(ContentGenerated)
    assert isinstance(done, ContentGenerated) and done.delivery is not None
    assert done.delivery.outcome == "FAILED"
    assert "HERALD_SECRET_KEY" in (done.delivery.error or "")


async def test_a_generate_content_job_delivers_nothing() -> None:
    receiver = Receiver()
    bus = await handle(scanned(["x"]), receiver)

    assert receiver.requests == []
    [done] = bus.of(ContentGenerated)
    assert isinstance(done, ContentGenerated) and done.delivery is None


async def test_a_name_resolving_to_a_private_address_is_refused_when_connecting() -> None:
    # The name passes the stored-URL check (names are judged when connecting); the guarded
    # client refuses the address it resolves to before any connection is made.
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("10.0.0.5")]

    client = guarded_client((), timeout=httpx.Timeout(5), resolver=resolve)
    async with client:
        deliverer = Deliverer(client, settings())
        answer, host = await deliverer.deliver(
            webhook_run(), POSTS, delivery_id=delivery_id_of("exe_1")
        )
    assert host == "hooks.example.com"
    assert (answer.delivered, answer.retriable, answer.status_code) == (False, False, None)
    assert "resolves to a private address" in (answer.error or "")
