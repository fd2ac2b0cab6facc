"""A Mastodon post across the api, the scheduler's claim and the publisher, against a local
instance: published once though an attempt's answer was lost, the post failed and was
scheduled again after Mastodon forgot the key; and the instance's own limits learned from a
publication, kept on the project's credential while it names that instance."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.batch import apply_events
from services.api.post_actions import UNKNOWN_BODIES_KEPT
from services.publisher.handlers import make_handler
from services.publisher.networks.budget import AccountBudget
from services.publisher.publish import Publisher
from services.scheduler.due_posts import claim_due_posts
from shared.budgets import Budgets
from shared.db.schema import Content, OutboxMessage, PublishingCredential
from shared.events import (
    MastodonLimits,
    PostDue,
    PostFailed,
    PostPublished,
    RetryPolicy,
    decode_event,
)
from shared.outbound import guarded_client, parse_networks
from shared.secrets import generate_key
from shared.settings import Settings
from tests.support.api import api_client
from tests.support.bus import RecordingBus
from tests.support.fakes.mastodon import IDEMPOTENCY_SECONDS, FakeMastodon
from tests.support.fakes.server import ThreadedServer
from tests.support.posts import generated_posts, with_credentials

PUBLIC = "http://herald.test"
KEY = generate_key()
TOKEN = "mastodon-token-once"
LEASE = timedelta(minutes=30)
# One retry: a second lost answer ends the chain FAILED.
POLICY = RetryPolicy(max_retries=1, retry_delay=1)
Sessions = async_sessionmaker[AsyncSession]


class InstanceClock:
    """The local instance's clock, which the test sets back and forth (nobody sleeps an hour)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def database_url(fresh_database_url: str) -> str:
    """A database of each test's own: the scheduler's claim takes every due post it finds,
    and other tests leave theirs behind."""
    return fresh_database_url


@pytest.fixture
def clock() -> InstanceClock:
    return InstanceClock()


@pytest.fixture
def mastodon(clock: InstanceClock) -> Iterator[tuple[FakeMastodon, ThreadedServer]]:
    instance = FakeMastodon(clock=clock, max_characters=1000)
    # read:accounts lets the publisher look for a status it may have made.
    instance.add_account("herald", TOKEN, scopes=("write:statuses", "read:accounts"))
    server = ThreadedServer(instance.asgi).start()
    yield instance, server
    server.close()


@pytest.fixture
async def api(api_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    # The local instance listens on http://127.0.0.1: both allowed, as an operator may.
    settings = api_settings(
        secret_key=KEY, webhook_allow_http=True, outbound_allow_networks=["127.0.0.1/32"]
    )
    async for client in api_client(settings):
        yield client


@pytest.fixture
async def publisher() -> AsyncIterator[Publisher]:
    http = guarded_client(parse_networks(["127.0.0.1/32"]), timeout=httpx.Timeout(10.0))
    # The local instance answers on http://127.0.0.1: http allowed, as an operator may.
    yield Publisher(http, budget=AccountBudget(Budgets()), secret_key=KEY, allow_http=True)
    await http.aclose()


async def mastodon_post(
    sessions: Sessions, api: httpx.AsyncClient, server: ThreadedServer
) -> tuple[dict[str, str], str, str]:
    """A generated Mastodon post of a project publishing to the local instance."""
    _, headers, ids = await generated_posts(sessions, publishing=False)
    post_id = ids["mastodon"]
    project_id = (await api.get(f"/api/posts/{post_id}", headers=headers)).json()["data"][
        "projectId"
    ]
    await with_credentials(
        sessions,
        project_id,
        secret_key=KEY,
        settings={"mastodon": {"instanceUrl": server.url}},
        secrets={"mastodon": TOKEN},
    )
    return headers, post_id, project_id


async def claimed(sessions: Sessions, post_id: str) -> PostDue:
    """The scheduler claims the due post; its newest `post.due`, as the publisher gets it."""
    result = await claim_due_posts(
        sessions, now=datetime.now(UTC), batch=10, lease=LEASE, retry_policy=POLICY
    )
    assert result.claimed == 1
    async with sessions() as session:
        payload = await session.scalar(
            select(OutboxMessage.payload)
            .where(OutboxMessage.routing_key == "post.due")
            .where(OutboxMessage.payload.contains(post_id))
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
    assert payload is not None
    due = decode_event("post.due", payload.encode())
    assert isinstance(due, PostDue)
    return due


async def stored(sessions: Sessions, post_id: str) -> Content:
    async with sessions() as session:
        row = await session.get(Content, post_id)
    assert row is not None
    return row


async def test_a_post_failed_after_a_lost_answer_and_scheduled_again_past_the_hour_goes_out_once(
    api: httpx.AsyncClient,
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
    clock: InstanceClock,
    publisher: Publisher,
) -> None:
    instance, server = mastodon
    headers, post_id, _ = await mastodon_post(sessions, api, server)
    schedule = await api.post(f"/api/posts/{post_id}/schedule", headers=headers)
    assert schedule.status_code == 200, schedule.text

    bus, retry = await lose_a_chain(sessions, instance, clock, publisher, post_id)
    assert retry.unknown_since is not None
    (status,) = instance.statuses
    failures = bus.of(PostFailed)
    assert [failed.final for failed in failures] == [False, True]  # type: ignore[attr-defined]
    final = failures[-1]
    assert isinstance(final, PostFailed)
    assert final.unknown_since == retry.unknown_since
    failed = await stored(sessions, post_id)
    assert (failed.state, failed.publish_claimed_at) == ("FAILED", None)
    assert failed.publish_unknown_since == retry.unknown_since

    began = await an_hour_ago(sessions, clock, post_id)
    again = await api.post(f"/api/posts/{post_id}/schedule", headers=headers)
    assert again.status_code == 200, again.text
    assert (await stored(sessions, post_id)).publish_unknown_since == began

    bus = RecordingBus()
    due = await claimed(sessions, post_id)
    assert (due.attempt, due.unknown_since) == (1, began)
    await make_handler(bus, publisher)(due)
    await apply_events(sessions, bus.published, public_url=PUBLIC)

    assert len(instance.statuses) == 1
    sent = [r for r in instance.requests if r["path"] == "/api/v1/statuses"]
    assert len(sent) == 2  # the first chain's two attempts; the second chain looked instead
    (published,) = bus.of(PostPublished)
    assert isinstance(published, PostPublished) and published.earlier
    shown = (await api.get(f"/api/posts/{post_id}", headers=headers)).json()["data"]
    assert (shown["publishStatus"], shown["publishedUrl"]) == ("PUBLISHED", status["url"])
    assert (await stored(sessions, post_id)).publish_unknown_since is None


async def test_a_publication_teaches_the_api_the_instances_limits(
    api: httpx.AsyncClient,
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
    publisher: Publisher,
) -> None:
    instance, server = mastodon
    instance.characters_reserved_per_url = 30
    headers, post_id, project_id = await mastodon_post(sessions, api, server)
    # Before herald has published there, Mastodon's default holds, and the refusal says so.
    refused = await api.patch(f"/api/posts/{post_id}", headers=headers, json={"body": "a" * 700})
    assert refused.status_code == 422
    assert "over Mastodon's default 500" in refused.json()["errors"][0]["message"]
    shown = (await api.get(f"/api/projects/{project_id}", headers=headers)).json()["data"]
    assert "maxCharacters" not in shown["publishing"]["mastodon"]

    assert (await api.post(f"/api/posts/{post_id}/schedule", headers=headers)).status_code == 200
    bus = RecordingBus()
    await make_handler(bus, publisher)(await claimed(sessions, post_id))
    (published,) = bus.of(PostPublished)
    assert isinstance(published, PostPublished) and published.mastodon_limits is not None
    assert published.mastodon_limits.max_characters == 1000
    await apply_events(sessions, bus.published, public_url=PUBLIC)

    shown = (await api.get(f"/api/projects/{project_id}", headers=headers)).json()["data"]
    mastodon_view = shown["publishing"]["mastodon"]
    assert (mastodon_view["maxCharacters"], mastodon_view["charactersReservedPerUrl"]) == (
        1000,
        30,
    )
    # Saved again for the same instance (a new token): the limits stay; another instance's
    # are its own, unknown until herald publishes there.
    for instance_url, expected in ((server.url, 1000), ("https://other.example", None)):
        saved = await api.put(
            f"/api/projects/{project_id}/publishing/mastodon",
            headers=headers,
            json={"instanceUrl": instance_url, "accessToken": "a-new-token"},
        )
        assert saved.status_code == 200, saved.text
        assert saved.json()["data"].get("maxCharacters") == expected
    # A late outcome of a post published through the instance saved before names that one:
    # its limits are not taken for the new instance's.
    late = published.model_copy(update={"event_id": "evt-late-outcome"})
    await apply_events(sessions, [late], public_url=PUBLIC)
    shown = (await api.get(f"/api/projects/{project_id}", headers=headers)).json()["data"]
    assert "maxCharacters" not in shown["publishing"]["mastodon"]


async def lose_a_chain(
    sessions: Sessions,
    instance: FakeMastodon,
    clock: InstanceClock,
    publisher: Publisher,
    post_id: str,
) -> tuple[RecordingBus, PostDue]:
    """A chain an hour and more ago, as the instance's clock says, whose two answers were
    lost (the status is made, the answer a 502): its recorded events, applied, and its retry."""
    clock.offset = -(IDEMPOTENCY_SECONDS + 100)
    bus = RecordingBus()
    handler = make_handler(bus, publisher)
    instance.lose_next_answer = True
    await handler(await claimed(sessions, post_id))
    (retry, _, _), *_ = bus.delayed
    assert isinstance(retry, PostDue)
    instance.lose_next_answer = True  # the retry's key answers the status; lost again
    await handler(retry)
    await apply_events(sessions, bus.published, public_url=PUBLIC)
    return bus, retry


async def an_hour_ago(sessions: Sessions, clock: InstanceClock, post_id: str) -> datetime:
    """The herald side of that hour: the lost attempt began then, and the instance has
    forgotten its key since (a status sent again would be a second one)."""
    began = datetime.now(UTC) - timedelta(seconds=IDEMPOTENCY_SECONDS + 100)
    async with sessions() as session, session.begin():
        await session.execute(
            update(Content).where(Content.id == post_id).values(publish_unknown_since=began)
        )
    clock.offset = 0.0
    return began


async def lost_twice(
    sessions: Sessions,
    instance: FakeMastodon,
    clock: InstanceClock,
    publisher: Publisher,
    post_id: str,
) -> datetime:
    """A chain an hour and more ago whose two answers were lost: the post FAILED, and the
    time its unknown attempt began, as herald keeps it; the instance forgot the key since."""
    await lose_a_chain(sessions, instance, clock, publisher, post_id)
    return await an_hour_ago(sessions, clock, post_id)


async def test_an_edited_post_is_looked_for_with_the_text_its_unknown_attempt_sent(
    api: httpx.AsyncClient,
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
    clock: InstanceClock,
    publisher: Publisher,
) -> None:
    instance, server = mastodon
    headers, post_id, _ = await mastodon_post(sessions, api, server)
    assert (await api.post(f"/api/posts/{post_id}/schedule", headers=headers)).status_code == 200
    sent = (await stored(sessions, post_id)).body
    await lost_twice(sessions, instance, clock, publisher, post_id)
    (status,) = instance.statuses

    # The owner edits the failed post twice: each replaced text is kept once, the one the
    # unknown attempt sent first (an edit cannot tell whether a chain sent the other).
    for body in ("a first rewording", "a first rewording", "herald 2.0 is out, reworded"):
        edited = await api.patch(f"/api/posts/{post_id}", headers=headers, json={"body": body})
        assert edited.status_code == 200, edited.text
    assert (await stored(sessions, post_id)).publish_unknown_bodies == [sent, "a first rewording"]
    assert (await api.post(f"/api/posts/{post_id}/schedule", headers=headers)).status_code == 200

    due = await claimed(sessions, post_id)
    assert (due.body, due.unknown_texts) == (
        "herald 2.0 is out, reworded",
        [sent, "a first rewording"],
    )
    bus = RecordingBus()
    await make_handler(bus, publisher)(due)
    await apply_events(sessions, bus.published, public_url=PUBLIC)

    assert len(instance.statuses) == 1  # found, not posted again with the new text
    (published,) = bus.of(PostPublished)
    assert isinstance(published, PostPublished) and published.earlier
    assert published.network_post_id == status["id"]
    after = await stored(sessions, post_id)
    assert (after.state, after.publish_unknown_since, after.publish_unknown_bodies) == (
        "PUBLISHED",
        None,
        None,
    )


async def fail(sessions: Sessions, due: PostDue, **fields: object) -> Content:
    failed = PostFailed(
        **due.envelope(),
        post_id=due.post_id,
        platform=due.platform,
        network="mastodon",
        reason="Mastodon 422: Validation failed",
        final=True,
        **fields,  # type: ignore[arg-type]
    )
    await apply_events(sessions, [failed], public_url=PUBLIC)
    return await stored(sessions, due.post_id)


async def test_a_failure_never_erases_an_unknown_outcome_unless_it_hands_it_to_the_owner(
    api: httpx.AsyncClient,
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
) -> None:
    _, server = mastodon
    headers, post_id, _ = await mastodon_post(sessions, api, server)
    began = datetime.now(UTC) - timedelta(days=2)

    async def scheduled_and_claimed() -> PostDue:
        schedule = await api.post(f"/api/posts/{post_id}/schedule", headers=headers)
        assert schedule.status_code == 200, schedule.text
        return await claimed(sessions, post_id)

    due = await scheduled_and_claimed()
    async with sessions() as session, session.begin():
        await session.execute(
            update(Content).where(Content.id == post_id).values(publish_unknown_since=began)
        )
    # A stale chain, started before the post knew, fails late with nothing unknown of its own.
    assert (await fail(sessions, due)).publish_unknown_since == began
    # One that knew of a later unknown attempt leaves the earliest.
    due = await scheduled_and_claimed()
    later = began + timedelta(hours=1)
    assert (await fail(sessions, due, unknown_since=later)).publish_unknown_since == began
    due = await scheduled_and_claimed()
    earlier = began - timedelta(hours=1)
    assert (await fail(sessions, due, unknown_since=earlier)).publish_unknown_since == earlier

    # Edited, the post keeps the text sent; a failure asking the owner to check forgets both.
    sent = due.body
    edited = await api.patch(f"/api/posts/{post_id}", headers=headers, json={"body": "new words"})
    assert edited.status_code == 200, edited.text
    due = await scheduled_and_claimed()
    assert (due.unknown_since, due.unknown_texts) == (earlier, [sent])
    after = await fail(sessions, due, owner_checks=True)
    assert (after.state, after.publish_unknown_since, after.publish_unknown_bodies) == (
        "FAILED",
        None,
        None,
    )


async def test_a_text_each_unanswered_chain_sent_is_kept_through_the_edits_after_it(
    api: httpx.AsyncClient,
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
    publisher: Publisher,
) -> None:
    instance, server = mastodon
    headers, post_id, _ = await mastodon_post(sessions, api, server)
    began = datetime.now(UTC) - timedelta(hours=3)

    async def chain_without_answer() -> str:
        """A chain claims the post, sends its text, hears nothing and ends FAILED."""
        schedule = await api.post(f"/api/posts/{post_id}/schedule", headers=headers)
        assert schedule.status_code == 200, schedule.text
        due = await claimed(sessions, post_id)
        assert (await fail(sessions, due, unknown_since=began)).state == "FAILED"
        return due.body

    async def edited(body: str) -> None:
        answer = await api.patch(f"/api/posts/{post_id}", headers=headers, json={"body": body})
        assert answer.status_code == 200, answer.text

    first = await chain_without_answer()
    await edited("herald 2.0 is out, second wording")
    second = await chain_without_answer()  # past Mastodon's hour: the key no longer helps
    await edited("herald 2.0 is out, third wording")
    assert (await stored(sessions, post_id)).publish_unknown_bodies == [first, second]

    assert (await api.post(f"/api/posts/{post_id}/schedule", headers=headers)).status_code == 200
    due = await claimed(sessions, post_id)
    assert (due.body, due.unknown_texts) == ("herald 2.0 is out, third wording", [first, second])
    # The second chain's status is the one that went out: it is found, nothing is posted.
    status = instance.add_status(instance.accounts[TOKEN], second, at=time.time() - 600)
    bus = RecordingBus()
    await make_handler(bus, publisher)(due)
    await apply_events(sessions, bus.published, public_url=PUBLIC)
    assert len(instance.statuses) == 1
    (published,) = bus.of(PostPublished)
    assert isinstance(published, PostPublished) and published.earlier
    assert published.network_post_id == status["id"]
    assert (await stored(sessions, post_id)).state == "PUBLISHED"


async def test_edits_past_the_texts_kept_are_refused_rather_than_one_forgotten(
    api: httpx.AsyncClient,
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
) -> None:
    _, server = mastodon
    headers, post_id, _ = await mastodon_post(sessions, api, server)
    schedule = await api.post(f"/api/posts/{post_id}/schedule", headers=headers)
    assert schedule.status_code == 200, schedule.text
    await fail(
        sessions, await claimed(sessions, post_id), unknown_since=datetime.now(UTC) - timedelta(1)
    )

    async def edit(body: str) -> httpx.Response:
        return await api.patch(f"/api/posts/{post_id}", headers=headers, json={"body": body})

    for n in range(UNKNOWN_BODIES_KEPT):
        assert (await edit(f"wording {n}")).status_code == 200
    kept = (await stored(sessions, post_id)).publish_unknown_bodies
    assert kept is not None and len(kept) == UNKNOWN_BODIES_KEPT
    refused = await edit("one wording too many")
    assert refused.status_code == 409, refused.text
    assert "may have published this post" in refused.text
    assert "check the account" in refused.text
    after = await stored(sessions, post_id)
    assert (after.body, after.publish_unknown_bodies) == (
        f"wording {UNKNOWN_BODIES_KEPT - 1}",
        kept,
    )


async def test_limits_a_column_cannot_hold_never_cost_the_outcome_they_ride_on(
    api: httpx.AsyncClient,
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
) -> None:
    _, server = mastodon
    headers, post_id, project_id = await mastodon_post(sessions, api, server)
    assert (await api.post(f"/api/posts/{post_id}/schedule", headers=headers)).status_code == 200
    due = await claimed(sessions, post_id)
    # Built past the event's own bounds, as a sender that skipped them would.
    unbounded = MastodonLimits.model_construct(
        instance_url=server.url, max_characters=2**64, characters_reserved_per_url=23
    )
    published = PostPublished(
        **due.envelope(),
        post_id=post_id,
        network="mastodon",
        network_post_id="109",
        published_at=datetime.now(UTC),
        mastodon_limits=unbounded,
    )
    await apply_events(sessions, [published], public_url=PUBLIC)

    after = await stored(sessions, post_id)
    assert (after.state, after.network_post_id) == ("PUBLISHED", "109")
    shown = (await api.get(f"/api/projects/{project_id}", headers=headers)).json()["data"]
    assert "maxCharacters" not in shown["publishing"]["mastodon"]


async def test_a_too_long_refusal_forgets_the_limits_kept_for_that_instance(
    api: httpx.AsyncClient,
    sessions: Sessions,
    mastodon: tuple[FakeMastodon, ThreadedServer],
) -> None:
    _, server = mastodon
    headers, post_id, project_id = await mastodon_post(sessions, api, server)
    async with sessions() as session, session.begin():
        await session.execute(
            update(PublishingCredential)
            .where(PublishingCredential.project_id == project_id)
            .where(PublishingCredential.network == "mastodon")
            .values(max_characters=1000, characters_reserved_per_url=23)
        )

    async def limits_shown() -> int | None:
        shown = (await api.get(f"/api/projects/{project_id}", headers=headers)).json()["data"]
        maximum = shown["publishing"]["mastodon"].get("maxCharacters")
        return int(maximum) if maximum is not None else None

    for instance_url, expected in (("https://other.example", 1000), (server.url, None)):
        assert (
            await api.post(f"/api/posts/{post_id}/schedule", headers=headers)
        ).status_code == 200
        due = await claimed(sessions, post_id)
        await fail(sessions, due, mastodon_limits_outdated=instance_url)
        assert await limits_shown() == expected
    # Mastodon's default applies again, as the refusal of a longer edit says.
    refused = await api.patch(f"/api/posts/{post_id}", headers=headers, json={"body": "a" * 700})
    assert "over Mastodon's default 500" in refused.json()["errors"][0]["message"]
