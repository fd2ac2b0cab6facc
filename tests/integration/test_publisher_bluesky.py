"""Publishing to a local Bluesky PDS that answers as the PDS does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from services.publisher.networks.bluesky import BlueskyClient, Session
from services.publisher.networks.budget import AccountBudget
from services.publisher.networks.keys import record_key
from services.publisher.networks.published import CredentialsRejectedError
from services.publisher.networks.text import PostTooLongError
from shared.budgets import Budgets
from shared.errors import BudgetExhaustedError, TransientError
from shared.ids import new_id
from shared.outbound import guarded_client, parse_networks
from tests.support.fakes.bluesky import FakeBluesky
from tests.support.fakes.server import ThreadedServer

HANDLE = "ada.bsky.test"
PASSWORD = "abcd-efgh-ijkl-mnop"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"
CREATE = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"
RECORD = "com.atproto.repo.createRecord"


class Clock:
    """The PDS's clock, moved by the test: tokens expire without waiting."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[tuple[FakeBluesky, ThreadedServer]]:
    pds = FakeBluesky(access_lifetime=60, refresh_lifetime=3600, clock=clock)
    pds.add_account(HANDLE, PASSWORD)
    server = ThreadedServer(pds.asgi).start()
    yield pds, server
    server.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # The PDS is a tenant's URL: the guarded client, with loopback allowed for the test.
    client = guarded_client(parse_networks(["127.0.0.1/32"]), timeout=httpx.Timeout(10.0))
    yield client
    await client.aclose()


def client(
    http: httpx.AsyncClient,
    server: ThreadedServer,
    *,
    password: str = PASSWORD,
    budgets: Budgets | None = None,
    session: Session | None = None,
    sessions: list[Session] | None = None,
) -> BlueskyClient:
    async def keep(session: Session) -> None:
        if sessions is not None:
            sessions.append(session)

    return BlueskyClient(
        http,
        service_url=server.url,
        identifier=HANDLE,
        app_password=password,
        budget=AccountBudget(budgets or Budgets()),
        session=session,
        on_session=keep,
        allow_http=True,  # the local PDS answers on http://127.0.0.1
    )


async def test_a_post_is_published_with_one_session_reused(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    pds, server = fake
    bluesky = client(http, server)
    did = pds.accounts[0].did
    first_id, second_id = new_id("cnt"), new_id("cnt")
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    first = await bluesky.publish(post_id=first_id, text="v1.2 is out", langs=["en"], created_at=at)
    second = await bluesky.publish(post_id=second_id, text="and v1.3")

    assert pds.count(CREATE) == 1
    rkey = record_key(first_id)
    assert first.id == f"at://{did}/app.bsky.feed.post/{rkey}"
    assert first.url == f"https://bsky.app/profile/{did}/post/{rkey}"
    assert first.cid and not first.earlier
    assert second.url.endswith(record_key(second_id))
    record = pds.records[(did, "app.bsky.feed.post", rkey)]["value"]
    assert record == {
        "$type": "app.bsky.feed.post",
        "text": "v1.2 is out",
        "createdAt": "2026-05-01T12:00:00.000Z",
        "langs": ["en"],
    }


async def test_an_expired_session_is_refreshed_once_and_the_post_goes_out(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient, clock: Clock
) -> None:
    pds, server = fake
    sessions: list[Session] = []
    bluesky = client(http, server, sessions=sessions)
    await bluesky.publish(post_id=new_id("cnt"), text="before")
    clock.now += 61  # the access token lived 60 s

    published = await bluesky.publish(post_id=new_id("cnt"), text="after")

    assert pds.count(CREATE) == 1
    assert pds.count(REFRESH) == 1
    assert pds.count(RECORD) == 3  # refused as expired once, then sent again
    assert len(pds.posts(pds.accounts[0].did)) == 2
    assert not published.earlier
    # The refresh token rotated: the new session was handed over to be kept.
    assert len(sessions) == 2
    assert sessions[1].refresh_jwt != sessions[0].refresh_jwt
    assert bluesky.session == sessions[1]


async def test_a_spent_refresh_token_signs_in_again_once(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient, clock: Clock
) -> None:
    pds, server = fake
    bluesky = client(http, server)
    await bluesky.publish(post_id=new_id("cnt"), text="before")
    clock.now += 3601  # both tokens expired

    await bluesky.publish(post_id=new_id("cnt"), text="after")

    assert (pds.count(CREATE), pds.count(REFRESH)) == (2, 1)
    assert len(pds.posts(pds.accounts[0].did)) == 2


async def test_a_retry_with_the_same_key_finds_the_first_record(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    pds, server = fake
    post_id = new_id("cnt")
    first = await client(http, server).publish(post_id=post_id, text="once only")
    # A new process (no session in memory) retries the same post.
    again = await client(http, server).publish(post_id=post_id, text="once only")

    assert len(pds.posts(pds.accounts[0].did)) == 1
    assert again.earlier
    assert (again.id, again.cid, again.url) == (first.id, first.cid, first.url)


async def test_a_lost_answer_is_resolved_by_reading_the_record(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    pds, server = fake
    pds.lose_next_answer = True
    post_id = new_id("cnt")

    published = await client(http, server).publish(post_id=post_id, text="once only")

    assert published.earlier
    assert published.url.endswith(record_key(post_id))
    assert len(pds.posts(pds.accounts[0].did)) == 1


async def test_no_answer_at_all_is_resolved_by_reading_the_record(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    pds, server = fake
    signed_in = client(http, server)
    await signed_in.publish(post_id=new_id("cnt"), text="first")
    # The record is committed, but its answer comes long after the client stopped waiting.
    pds.delay_next_answer = 4.0
    post_id = new_id("cnt")
    impatient = guarded_client(
        parse_networks(["127.0.0.1/32"]), timeout=httpx.Timeout(10.0, read=1.0)
    )
    try:
        published = await client(impatient, server, session=signed_in.session).publish(
            post_id=post_id, text="once"
        )
    finally:
        await impatient.aclose()

    assert published.earlier
    assert published.url.endswith(record_key(post_id))
    assert pds.count(RECORD) == 2
    assert len(pds.posts(pds.accounts[0].did)) == 2


async def test_an_over_length_post_is_refused_naming_300_graphemes(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    pds, server = fake
    with pytest.raises(PostTooLongError, match=r"^312 graphemes, over Bluesky's 300$"):
        await client(http, server).publish(post_id=new_id("cnt"), text="ü" * 312)
    assert pds.calls == []


async def test_link_facets_hold_after_emoji(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    pds, server = fake
    text = f"{FAMILY} Ünïcödé release 🎉 notes: https://example.com/notes/v1.2. Enjoy!"

    await client(http, server).publish(post_id=new_id("cnt"), text=text)

    (record,) = pds.posts(pds.accounts[0].did)
    (facet,) = record["facets"]
    assert facet["features"] == [
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/notes/v1.2"}
    ]
    index = facet["index"]
    linked = text.encode("utf-8")[index["byteStart"] : index["byteEnd"]].decode("utf-8")
    assert linked == "https://example.com/notes/v1.2"
    assert index["byteStart"] > text.index("https")  # bytes, not characters


async def test_a_wrong_app_password_is_permanent(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    _, server = fake
    with pytest.raises(CredentialsRejectedError) as refused:
        await client(http, server, password="wrong").publish(post_id=new_id("cnt"), text="x")
    assert "Invalid identifier or password" in refused.value.message
    assert "wrong" not in refused.value.message


async def test_a_token_that_does_not_verify_is_permanent(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    pds, server = fake
    forged = Session(pds.accounts[0].did, HANDLE, "not-a-jwt", "not-a-jwt")
    with pytest.raises(CredentialsRejectedError, match="400 InvalidToken"):
        await client(http, server, session=forged).publish(post_id=new_id("cnt"), text="x")
    assert pds.posts(pds.accounts[0].did) == []


async def test_spent_write_points_pause_the_account(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    pds, server = fake
    pds.write_points, pds.write_window = 6, 600  # two posts at 3 points each
    bluesky = client(http, server)
    await bluesky.publish(post_id=new_id("cnt"), text="one")
    await bluesky.publish(post_id=new_id("cnt"), text="two")  # answers remaining 0

    with pytest.raises(BudgetExhaustedError) as paused:
        await bluesky.publish(post_id=new_id("cnt"), text="three")
    assert pds.count(RECORD) == 2
    assert 590 < paused.value.retry_after <= 602


async def test_a_429_is_transient_with_the_pds_reset(
    fake: tuple[FakeBluesky, ThreadedServer], http: httpx.AsyncClient
) -> None:
    pds, server = fake
    pds.write_points, pds.write_window = 3, 900
    await client(http, server).publish(post_id=new_id("cnt"), text="one")
    other = client(http, server)  # budgets of its own: it has not heard

    with pytest.raises(TransientError) as limited:
        await other.publish(post_id=new_id("cnt"), text="two")

    assert isinstance(limited.value, BudgetExhaustedError)
    assert 890 < limited.value.retry_after <= 901
    assert len(pds.posts(pds.accounts[0].did)) == 1
