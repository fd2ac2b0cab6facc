"""The publisher's handler against local networks: what each outcome publishes, and that a
repeat of a `post.due` is the same publication."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.publisher.handlers import make_handler
from services.publisher.networks.budget import AccountBudget
from services.publisher.publish import Publisher
from shared import topology
from shared.budgets import Budgets
from shared.events import PostDue, PostFailed, PostPublished, PublishingTarget, RetryPolicy
from shared.ids import new_id
from shared.outbound import guarded_client, parse_networks
from shared.secrets import encrypt, generate_key
from shared.signatures import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    new_webhook_secret,
    signature_matches,
)
from tests.support.bus import RecordingBus
from tests.support.fakes.mastodon import FakeMastodon
from tests.support.fakes.server import ThreadedServer

KEY = generate_key()
TOKEN = "mastodon-token-handler"


@pytest.fixture
def mastodon() -> Iterator[tuple[FakeMastodon, ThreadedServer]]:
    instance = FakeMastodon(max_characters=60)
    instance.add_account("herald", TOKEN)
    server = ThreadedServer(instance.asgi).start()
    yield instance, server
    server.close()


@pytest.fixture
async def publisher() -> AsyncIterator[Publisher]:
    http = guarded_client(parse_networks(["127.0.0.1/32"]), timeout=httpx.Timeout(10.0))
    # The local servers answer on http://127.0.0.1: http allowed, as an operator may.
    yield Publisher(http, budget=AccountBudget(Budgets()), secret_key=KEY, allow_http=True)
    await http.aclose()


def due(body: str, target: PublishingTarget | None, **fields: Any) -> PostDue:
    return PostDue(
        execution_id="exe_1",
        job_id="cron_1",
        project_id="prj_1",
        post_id=new_id("cnt"),
        platform=fields.pop("platform", "mastodon"),
        body=body,
        claimed_at=datetime.now(UTC),
        target=target,
        **fields,
    )


def mastodon_target(server: ThreadedServer) -> PublishingTarget:
    return PublishingTarget(
        network="mastodon", settings={"instanceUrl": server.url}, secret=encrypt(TOKEN, KEY)
    )


async def test_a_post_without_a_credential_fails_at_once_saying_so(publisher: Publisher) -> None:
    bus = RecordingBus()
    await make_handler(bus, publisher)(due("hello", None, platform="x"))
    (failed,) = bus.of(PostFailed)
    assert isinstance(failed, PostFailed)
    assert failed.final
    assert "no generic webhook to publish its x posts" in failed.reason
    assert bus.delayed == []


async def test_no_credential_goes_over_plain_http_unless_the_operator_allows_it(
    mastodon: tuple[FakeMastodon, ThreadedServer],
) -> None:
    instance, server = mastodon
    http = guarded_client(parse_networks(["127.0.0.1/32"]), timeout=httpx.Timeout(10.0))
    strict = Publisher(http, budget=AccountBudget(Budgets()), secret_key=KEY)
    hook_secret = new_webhook_secret()
    webhook = PublishingTarget(
        network="webhook",
        settings={"urlHost": server.url.split("://", 1)[1]},
        secret=encrypt(hook_secret, KEY),
        url=encrypt(f"{server.url}/in", KEY),
    )
    bus = RecordingBus()
    try:
        await make_handler(bus, strict)(due("hello", mastodon_target(server)))
        await make_handler(bus, strict)(due("hello", webhook, platform="blog"))
    finally:
        await http.aclose()
    toot, post = bus.of(PostFailed)
    assert isinstance(toot, PostFailed) and isinstance(post, PostFailed)
    assert toot.final and post.final
    assert "the Mastodon instance must be an https URL" in toot.reason
    assert "the webhook must be an https URL" in post.reason
    assert "HERALD_WEBHOOK_ALLOW_HTTP" in toot.reason
    assert instance.statuses == []
    assert bus.delayed == []


async def test_an_instance_that_is_rate_limited_or_failing_is_waited_for_not_given_up(
    publisher: Publisher, mastodon: tuple[FakeMastodon, ThreadedServer]
) -> None:
    instance, server = mastodon
    instance.instance_trouble = [502]
    bus = RecordingBus()
    await make_handler(bus, publisher)(due("hello", mastodon_target(server)))
    (failed,) = bus.of(PostFailed)
    assert isinstance(failed, PostFailed) and not failed.final
    (retry, _, _), *_ = bus.delayed
    assert isinstance(retry, PostDue) and retry.attempt == 2

    instance.instance_trouble = [429]
    bus = RecordingBus()
    await make_handler(bus, publisher)(due("hello", mastodon_target(server)))
    assert all(not failed.final for failed in bus.of(PostFailed))  # type: ignore[attr-defined]
    (later, _, _), *_ = bus.delayed
    assert isinstance(later, PostDue) and later.attempt == 1  # a wait spends no try
    assert instance.statuses == []


async def test_a_status_over_the_instances_own_limit_fails_naming_it(
    publisher: Publisher, mastodon: tuple[FakeMastodon, ThreadedServer]
) -> None:
    instance, server = mastodon
    bus = RecordingBus()
    await make_handler(bus, publisher)(due("x" * 61, mastodon_target(server)))
    (failed,) = bus.of(PostFailed)
    assert isinstance(failed, PostFailed) and failed.final
    assert f"61 characters, over the 60 of the Mastodon instance {server.url}" in failed.reason
    assert instance.statuses == []
    # The limits it read travel with the outcome: the api checks later edits against them.
    assert failed.mastodon_limits is not None
    assert (failed.mastodon_limits.instance_url, failed.mastodon_limits.max_characters) == (
        server.url,
        60,
    )


async def test_a_refusal_carries_no_unknown_outcome_but_keeps_an_earlier_attempts(
    publisher: Publisher, mastodon: tuple[FakeMastodon, ThreadedServer]
) -> None:
    instance, server = mastodon
    bus = RecordingBus()
    handler = make_handler(bus, publisher)
    await handler(due("the limit of 60 is read and kept", mastodon_target(server)))
    # The instance lowers its limit: its own 422 refuses what the kept limit let through.
    instance.max_characters = 10
    await handler(due("x" * 30, mastodon_target(server)))
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    await handler(due("x" * 30, mastodon_target(server), attempt=2, unknown_since=earlier))

    first, retried = bus.of(PostFailed)
    assert isinstance(first, PostFailed) and isinstance(retried, PostFailed)
    assert first.final and retried.final
    assert "character limit of 10 exceeded" in first.reason
    # The 422 answered the attempt: it published nothing, nothing is unknown.
    assert first.unknown_since is None
    # The limits read let the status through: out of date, and said to be, not reported.
    assert (first.mastodon_limits, first.mastodon_limits_outdated) == (None, server.url)
    # The chain's earlier attempt was never answered: it may have published the post.
    assert retried.unknown_since == earlier
    assert len(instance.statuses) == 1


async def test_a_lost_answer_is_tried_again_and_the_repeat_is_the_first_status(
    publisher: Publisher, mastodon: tuple[FakeMastodon, ThreadedServer]
) -> None:
    instance, server = mastodon
    instance.lose_next_answer = True
    bus = RecordingBus()
    handler = make_handler(bus, publisher)
    first = due("herald 2.0 is out", mastodon_target(server))
    await handler(first)
    (failed,) = bus.of(PostFailed)
    assert isinstance(failed, PostFailed) and not failed.final
    (retry, queue, not_before), *_ = bus.delayed
    assert queue == topology.PUBLISHER_QUEUE
    assert isinstance(retry, PostDue) and retry.attempt == 2
    assert failed.next_attempt_at == not_before

    await handler(retry)
    await handler(retry)  # redelivered: the same event, the same status
    published = bus.of(PostPublished)
    assert len(published) == 2
    assert published[0].event_id == published[1].event_id
    assert len(instance.statuses) == 1
    assert isinstance(published[0], PostPublished)
    assert published[0].url == instance.statuses[0]["url"]


class Clock:
    """The local instance's clock, moved by the test (Mastodon's hour passes, nobody sleeps)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_retry_past_mastodons_hour_finds_the_lost_status_instead_of_posting_again(
    publisher: Publisher,
) -> None:
    clock = Clock()
    instance = FakeMastodon(clock=clock)
    instance.add_account("herald", TOKEN, scopes=("write:statuses", "read:accounts"))
    server = ThreadedServer(instance.asgi).start()
    try:
        instance.lose_next_answer = True
        bus = RecordingBus()
        handler = make_handler(bus, publisher)
        text = "herald 2.0 is out @ada@example.social https://example.org/notes\n\nfaster & safer"
        await handler(due(text, mastodon_target(server)))
        (failed,) = bus.of(PostFailed)
        assert isinstance(failed, PostFailed) and not failed.final
        (retry, _, _), *_ = bus.delayed
        assert isinstance(retry, PostDue) and retry.unknown_since is not None
        (status,) = instance.statuses

        # The retry comes more than an hour later (a long Retry-After, a rate-limit wait):
        # Mastodon has forgotten the key, a repeat would make a second status.
        clock.now += 3700
        late = retry.model_copy(
            update={"unknown_since": retry.unknown_since - timedelta(seconds=3700)}
        )
        await handler(late)
    finally:
        server.close()
    assert len(instance.statuses) == 1
    assert [r["path"] for r in instance.requests].count("/api/v1/statuses") == 1
    (published,) = bus.of(PostPublished)
    assert isinstance(published, PostPublished)
    assert (published.url, published.network_post_id) == (status["url"], status["id"])
    assert published.earlier


async def test_a_late_retry_that_cannot_look_fails_asking_to_check_the_account(
    publisher: Publisher, mastodon: tuple[FakeMastodon, ThreadedServer]
) -> None:
    instance, server = mastodon  # its token may post, not read the account
    late = due(
        "herald 2.0 is out",
        mastodon_target(server),
        attempt=2,
        unknown_since=datetime.now(UTC) - timedelta(minutes=61),
    )
    bus = RecordingBus()
    await make_handler(bus, publisher)(late)
    (failed,) = bus.of(PostFailed)
    assert isinstance(failed, PostFailed) and failed.final
    assert "could not look for it" in failed.reason
    assert "Check the account for the post before publishing it again" in failed.reason
    assert "read:accounts" in failed.reason
    # The reason hands the question to the owner: a new schedule after checking sends.
    assert failed.unknown_since is None and failed.owner_checks
    assert instance.statuses == []


async def test_a_lookup_the_instance_does_not_answer_is_retried_and_keeps_the_unknown_outcome(
    publisher: Publisher,
) -> None:
    instance = FakeMastodon()
    instance.add_account("herald", TOKEN, scopes=("write:statuses", "read:accounts"))
    instance.lookup_trouble = [503, 504]
    server = ThreadedServer(instance.asgi).start()
    unknown_since = datetime.now(UTC) - timedelta(minutes=61)
    try:
        late = due(
            "herald 2.0 is out",
            mastodon_target(server),
            unknown_since=unknown_since,
            retry_policy=RetryPolicy(max_retries=1, retry_delay=1),
        )
        bus = RecordingBus()
        handler = make_handler(bus, publisher)
        await handler(late)
        (retry, _, _), *_ = bus.delayed
        assert isinstance(retry, PostDue) and retry.unknown_since == unknown_since
        await handler(retry)
    finally:
        server.close()
    retried, final = bus.of(PostFailed)
    assert isinstance(retried, PostFailed) and isinstance(final, PostFailed)
    assert (retried.final, final.final) == (False, True)
    assert "could not look for it yet: Mastodon 504" in final.reason
    # Nobody looked: the post may be out, and the next schedule must look again.
    assert (final.unknown_since, final.owner_checks) == (unknown_since, False)
    assert instance.statuses == []


async def test_a_late_retry_that_finds_nothing_publishes(
    publisher: Publisher,
) -> None:
    instance = FakeMastodon()
    instance.add_account("herald", TOKEN, scopes=("write", "read"))
    server = ThreadedServer(instance.asgi).start()
    try:
        late = due(
            "herald 2.0 is out",
            mastodon_target(server),
            attempt=2,
            unknown_since=datetime.now(UTC) - timedelta(minutes=61),
        )
        bus = RecordingBus()
        await make_handler(bus, publisher)(late)
    finally:
        server.close()
    (published,) = bus.of(PostPublished)
    assert isinstance(published, PostPublished) and not published.earlier
    assert published.url == instance.statuses[0]["url"]


async def test_a_status_with_any_text_an_unknown_attempt_sent_is_the_publication(
    publisher: Publisher,
) -> None:
    instance = FakeMastodon()
    account = instance.add_account("herald", TOKEN, scopes=("write", "read"))
    server = ThreadedServer(instance.asgi).start()
    # Two chains sent two texts without an answer; the one that went out was the second.
    status = instance.add_status(account, "herald 2.0 is out, second wording", at=time.time() - 600)
    try:
        late = due(
            "herald 2.0 is out, third wording",
            mastodon_target(server),
            unknown_since=datetime.now(UTC) - timedelta(hours=3),
            unknown_texts=["herald 2.0 is out, first wording", "herald 2.0 is out, second wording"],
        )
        bus = RecordingBus()
        await make_handler(bus, publisher)(late)
    finally:
        server.close()
    assert len(instance.statuses) == 1
    (published,) = bus.of(PostPublished)
    assert isinstance(published, PostPublished) and published.earlier
    assert published.network_post_id == status["id"]


async def test_a_spent_rate_limit_waits_without_spending_a_try(
    publisher: Publisher, mastodon: tuple[FakeMastodon, ThreadedServer]
) -> None:
    instance, server = mastodon
    instance.statuses_per_window = 1
    bus = RecordingBus()
    handler = make_handler(bus, publisher)
    await handler(due("one", mastodon_target(server)))
    waiting = due("two", mastodon_target(server))
    await handler(waiting)
    assert len(bus.of(PostPublished)) == 1
    (later, queue, not_before), *_ = bus.delayed
    assert isinstance(later, PostDue)
    assert (later.post_id, later.attempt, queue) == (waiting.post_id, 1, topology.PUBLISHER_QUEUE)
    assert not_before > datetime.now(UTC)
    # Announced, not final: the api moves the claim to the end of the wait.
    (announced,) = bus.of(PostFailed)
    assert isinstance(announced, PostFailed) and not announced.final
    assert announced.next_attempt_at == not_before


class Receiver:
    """A generic webhook receiver that fails its first delivery with a 503."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.seen: list[tuple[bool, str | None, dict[str, Any]]] = []
        self.asgi = Starlette(routes=[Route("/in", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> JSONResponse:
        raw = await request.body()
        signed = signature_matches(self.secret, raw, request.headers.get(SIGNATURE_HEADER))
        self.seen.append((signed, request.headers.get(DELIVERY_HEADER), json.loads(raw)))
        if len(self.seen) == 1:
            return JSONResponse({"error": "busy"}, status_code=503, headers={"Retry-After": "7"})
        return JSONResponse({"url": "https://blog.example/herald-2"})


async def test_the_generic_webhook_gets_a_signed_post_with_one_delivery_id_per_post(
    publisher: Publisher,
) -> None:
    secret = new_webhook_secret()
    receiver = Receiver(secret)
    server = ThreadedServer(receiver.asgi).start()
    try:
        target = PublishingTarget(
            network="webhook",
            settings={"urlHost": server.url.split("://", 1)[1]},
            secret=encrypt(secret, KEY),
            url=encrypt(f"{server.url}/in", KEY),
        )
        bus = RecordingBus()
        handler = make_handler(bus, publisher)
        post = due("# herald 2.0", target, platform="blog", title="herald 2.0")
        await handler(post)
        (failed,) = bus.of(PostFailed)
        assert isinstance(failed, PostFailed) and not failed.final
        assert failed.reason == 'the webhook answered 503: {"error":"busy"}'
        (retry, _, not_before), *_ = bus.delayed
        # The receiver's Retry-After is longer than the first wait: it wins.
        assert (not_before - failed.occurred_at).total_seconds() >= 6
        await handler(retry)
    finally:
        server.close()
    (published,) = bus.of(PostPublished)
    assert isinstance(published, PostPublished)
    assert published.url == "https://blog.example/herald-2"
    assert [(signed, delivery) for signed, delivery, _ in receiver.seen] == [
        (True, f"herald-post-{post.post_id}"),
        (True, f"herald-post-{post.post_id}"),
    ]
    body = receiver.seen[-1][2]
    assert (body["platform"], body["title"], body["body"]) == ("blog", "herald 2.0", "# herald 2.0")
