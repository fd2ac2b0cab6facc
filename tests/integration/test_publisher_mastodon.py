"""Publishing to a local Mastodon instance that answers as Mastodon does."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.publisher.networks.budget import AccountBudget
from services.publisher.networks.mastodon import (
    LOOKUP_LIMIT,
    LOOKUP_PAGES,
    EarlierStatusUnknownError,
    EarlierStatusUnreachableError,
    InstanceLimitsCache,
    MastodonClient,
)
from services.publisher.networks.published import CredentialsRejectedError
from services.publisher.networks.text import PostTooLongError
from shared.budgets import Budgets
from shared.errors import BudgetExhaustedError, PermanentError, TransientError
from shared.ids import new_id
from shared.outbound import ForbiddenDestinationError, guarded_client, parse_networks
from tests.support.fakes.mastodon import Account, FakeMastodon
from tests.support.fakes.server import ThreadedServer

TOKEN = "mastodon-token-ada"


@pytest.fixture
def fake() -> Iterator[tuple[FakeMastodon, ThreadedServer]]:
    instance = FakeMastodon()
    instance.add_account("ada", TOKEN)
    server = ThreadedServer(instance.asgi).start()
    yield instance, server
    server.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    # The instance is a tenant's URL: the guarded client, with loopback allowed for the test.
    client = guarded_client(parse_networks(["127.0.0.1/32"]), timeout=httpx.Timeout(10.0))
    yield client
    await client.aclose()


def client(
    http: httpx.AsyncClient,
    server: ThreadedServer,
    *,
    token: str = TOKEN,
    budgets: Budgets | None = None,
    limits: InstanceLimitsCache | None = None,
) -> MastodonClient:
    return MastodonClient(
        http,
        instance_url=server.url,
        token=token,
        budget=AccountBudget(budgets or Budgets()),
        limits=limits,
        allow_http=True,  # the local instance answers on http://127.0.0.1
    )


def posted(instance: FakeMastodon) -> list[dict[str, object]]:
    return [r for r in instance.requests if r["path"] == "/api/v1/statuses"]


async def test_a_status_is_published_with_the_token_and_a_key(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    mastodon = client(http, server)
    post_id = new_id("cnt")

    published = await mastodon.publish(post_id=post_id, text="v1.2 is out", language="en")

    status = instance.statuses[0]
    assert published.id == status["id"]
    assert published.url == f"https://mastodon.test/@ada/{status['id']}"
    assert (status["text"], status["language"], status["visibility"]) == (
        "v1.2 is out",
        "en",
        "public",
    )
    headers = posted(instance)[0]["headers"]
    assert isinstance(headers, dict)
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["idempotency-key"] == f"herald-post-{post_id}"


async def test_a_retry_after_a_lost_answer_publishes_once(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    mastodon = client(http, server)
    post_id = new_id("cnt")
    instance.lose_next_answer = True

    with pytest.raises(TransientError, match="Mastodon 502"):
        await mastodon.publish(post_id=post_id, text="once only")
    assert len(instance.statuses) == 1  # it went out; the answer did not come back

    first = await mastodon.publish(post_id=post_id, text="once only")
    again = await mastodon.publish(post_id=post_id, text="once only")

    assert len(instance.statuses) == 1
    assert first.id == again.id == instance.statuses[0]["id"]
    assert first.url == again.url


async def test_the_instances_own_limit_is_read_and_cached(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    instance.max_characters = 120
    instance.characters_reserved_per_url = 30
    mastodon = client(http, server)

    limits = await mastodon.instance_limits()
    assert (limits.max_characters, limits.characters_reserved_per_url) == (120, 30)

    # Four long links count 30 each, and the three spaces between them: 123.
    link = "https://example.com/" + "a" * 100
    with pytest.raises(PostTooLongError) as refused:
        await mastodon.publish(post_id=new_id("cnt"), text=" ".join([link] * 4))
    assert refused.value.message == (
        f"123 characters, over the 120 of the Mastodon instance {server.url} (each link counts 30)"
    )
    assert posted(instance) == []  # refused before a request was spent

    # Three of them fit, though the text is 362 characters long.
    await mastodon.publish(post_id=new_id("cnt"), text=" ".join([link] * 3))
    assert len(instance.statuses) == 1
    fetched = [r for r in instance.requests if r["path"] == "/api/v2/instance"]
    assert len(fetched) == 1


async def test_an_instance_that_lowered_its_limit_refuses_with_its_own_words(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    limits = InstanceLimitsCache()
    mastodon = client(http, server, limits=limits)
    await mastodon.instance_limits()  # 500, cached
    instance.max_characters = 100

    with pytest.raises(PostTooLongError, match="character limit of 100 exceeded"):
        await mastodon.publish(post_id=new_id("cnt"), text="x" * 150)
    assert instance.statuses == []

    # The refusal dropped the stale limit: the next attempt reads the instance's again.
    with pytest.raises(PostTooLongError, match=r"^150 characters, over the 100 of"):
        await mastodon.publish(post_id=new_id("cnt"), text="x" * 150)
    assert len(posted(instance)) == 1


@pytest.mark.parametrize(
    ("claimed", "kept"), [((2**31, 23), (1_000_000, 23)), ((5000, 2**40), (5000, 10_000))]
)
async def test_an_instances_unbounded_limits_are_taken_within_herald_s_bounds(
    fake: tuple[FakeMastodon, ThreadedServer],
    http: httpx.AsyncClient,
    claimed: tuple[int, int],
    kept: tuple[int, int],
) -> None:
    instance, server = fake
    instance.max_characters, instance.characters_reserved_per_url = claimed
    mastodon = client(http, server)

    limits = await mastodon.instance_limits()
    assert (limits.max_characters, limits.characters_reserved_per_url) == kept
    await mastodon.publish(post_id=new_id("cnt"), text="a limit like any other")
    assert len(instance.statuses) == 1


async def test_an_instance_older_than_4_answers_its_limits_at_v1(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    instance.v1_only = True
    instance.max_characters = 1000

    limits = await client(http, server).instance_limits()

    assert limits.max_characters == 1000


async def test_an_invalid_token_is_permanent(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    _, server = fake
    with pytest.raises(CredentialsRejectedError) as refused:
        await client(http, server, token="revoked").publish(post_id=new_id("cnt"), text="hi")
    assert isinstance(refused.value, PermanentError)
    assert "Mastodon 401: The access token is invalid" in refused.value.message
    assert "revoked" not in refused.value.message


async def test_a_token_without_write_statuses_is_permanent(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    instance.add_account("bob", "read-only", scopes=("read",))
    with pytest.raises(CredentialsRejectedError, match=r"403.*write:statuses"):
        await client(http, server, token="read-only").publish(post_id=new_id("cnt"), text="hi")


async def test_a_spent_budget_pauses_the_account_until_mastodons_reset(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    instance.statuses_per_window = 2
    instance.window_seconds = 600
    mastodon = client(http, server)
    await mastodon.publish(post_id=new_id("cnt"), text="one")
    await mastodon.publish(post_id=new_id("cnt"), text="two")  # answers remaining 0

    sent = len(posted(instance))
    with pytest.raises(BudgetExhaustedError) as paused:
        await mastodon.publish(post_id=new_id("cnt"), text="three")
    assert len(posted(instance)) == sent  # the pause spared the instance a refused request
    assert 590 < paused.value.retry_after <= 602


async def test_a_429_is_transient_with_the_wait_mastodon_named(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    instance.statuses_per_window = 1
    instance.window_seconds = 900
    await client(http, server).publish(post_id=new_id("cnt"), text="one")
    # Another process with budgets of its own has not heard: Mastodon answers 429.
    other = client(http, server)

    with pytest.raises(TransientError) as limited:
        await other.publish(post_id=new_id("cnt"), text="two")

    assert isinstance(limited.value, BudgetExhaustedError)
    assert limited.value.retry_after is not None
    assert 890 < limited.value.retry_after <= 900
    assert "429" in limited.value.message
    assert len(instance.statuses) == 1
    # And its own next attempt waits without asking again.
    asked = len(posted(instance))
    with pytest.raises(BudgetExhaustedError):
        await other.publish(post_id=new_id("cnt"), text="three")
    assert len(posted(instance)) == asked


async def test_replicas_share_the_accounts_pause_through_redis(
    fake: tuple[FakeMastodon, ThreadedServer],
    http: httpx.AsyncClient,
    redis_budgets: tuple[str, str],
) -> None:
    instance, server = fake
    instance.statuses_per_window = 1
    redis_url, prefix = redis_budgets
    first, second = Budgets(redis_url, prefix=prefix), Budgets(redis_url, prefix=prefix)
    try:
        await client(http, server, budgets=first).publish(post_id=new_id("cnt"), text="one")
        asked = len(posted(instance))
        with pytest.raises(BudgetExhaustedError):
            await client(http, server, budgets=second).publish(post_id=new_id("cnt"), text="2")
        assert len(posted(instance)) == asked
    finally:
        await first.close()
        await second.close()


async def test_an_instance_url_with_a_path_is_refused(http: httpx.AsyncClient) -> None:
    refusal = "the Mastodon instance must be an origin, with no path"
    with pytest.raises(ForbiddenDestinationError, match=refusal):
        MastodonClient(
            http,
            instance_url="https://m.example/api",
            token=TOKEN,
            budget=AccountBudget(Budgets()),
        )


async def test_a_429_reading_the_instance_waits_for_its_reset_and_a_5xx_is_transient(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    instance.instance_trouble = [429]
    budgets = Budgets()
    mastodon = client(http, server, budgets=budgets)

    with pytest.raises(BudgetExhaustedError) as limited:
        await mastodon.publish(post_id=new_id("cnt"), text="one")
    assert limited.value.retry_after == 300
    # Paused: the next try waits without asking the instance again.
    asked = len(instance.requests)
    with pytest.raises(BudgetExhaustedError):
        await client(http, server, budgets=budgets).publish(post_id=new_id("cnt"), text="one")
    assert len(instance.requests) == asked

    instance.instance_trouble = [503]
    with pytest.raises(TransientError) as trouble:
        await client(http, server).publish(post_id=new_id("cnt"), text="one")
    assert not isinstance(trouble.value, PermanentError)
    assert "Mastodon 503" in trouble.value.message
    assert instance.statuses == []

    published = await client(http, server).publish(post_id=new_id("cnt"), text="one")
    assert [status["id"] for status in instance.statuses] == [published.id]


READER = "mastodon-token-reads"
LOST = "herald 2.0 is out @ada@example.social"


def reading_client(
    instance: FakeMastodon, http: httpx.AsyncClient, server: ThreadedServer
) -> tuple[MastodonClient, Account]:
    account = instance.add_account("herald", READER, scopes=("write:statuses", "read:accounts"))
    return client(http, server, token=READER), account


def pages_read(instance: FakeMastodon) -> int:
    return sum(1 for r in instance.requests if str(r["path"]).endswith("/statuses")) - len(
        posted(instance)
    )


async def test_an_earlier_status_is_found_pages_back_on_a_busy_account(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    mastodon, account = reading_client(instance, http, server)
    now = time.time()
    since = datetime.fromtimestamp(now - 3 * 3600, UTC)
    instance.add_status(account, "a status from before the attempt", at=now - 4 * 3600)
    lost = instance.add_status(account, LOST, at=now - 3 * 3600 + 10)
    for minute in range(100):  # the account kept posting since: two pages and more
        instance.add_status(account, f"status {minute}", at=now - 2 * 3600 + minute * 60)

    found = await mastodon.find_earlier(texts=[LOST], since=since)

    assert found is not None and (found.id, found.earlier) == (lost["id"], True)
    assert pages_read(instance) == 3


async def test_the_lookup_stops_at_the_first_status_older_than_the_attempt(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    mastodon, account = reading_client(instance, http, server)
    now = time.time()
    # Made by hand an hour before the attempt, with the same words: not the attempt's status.
    instance.add_status(account, LOST, at=now - 4 * 3600)
    for minute in range(45):
        instance.add_status(account, f"status {minute}", at=now - 2 * 3600 + minute * 60)

    since = datetime.fromtimestamp(now - 3 * 3600, UTC)
    assert await mastodon.find_earlier(texts=[LOST], since=since) is None
    assert pages_read(instance) == 2


async def test_an_account_too_busy_to_read_back_to_the_attempt_hands_the_question_over(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    mastodon, account = reading_client(instance, http, server)
    now = time.time()
    instance.add_status(account, LOST, at=now - 3 * 3600 + 10)
    for number in range(LOOKUP_PAGES * LOOKUP_LIMIT):
        instance.add_status(account, f"status {number}", at=now - 3600 + number)

    since = datetime.fromtimestamp(now - 3 * 3600, UTC)
    with pytest.raises(EarlierStatusUnknownError, match="more than 400 statuses since"):
        await mastodon.find_earlier(texts=[LOST], since=since)
    assert pages_read(instance) == LOOKUP_PAGES


async def test_a_lookup_the_instance_does_not_answer_now_is_transient(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    mastodon, _ = reading_client(instance, http, server)
    since = datetime.now(UTC) - timedelta(hours=2)
    instance.lookup_trouble = [503]
    with pytest.raises(EarlierStatusUnreachableError, match="Mastodon 503") as raised:
        await mastodon.find_earlier(texts=[LOST], since=since)
    assert isinstance(raised.value, TransientError)
    assert not isinstance(raised.value, PermanentError)
    # Answered again, the question is settled.
    assert await mastodon.find_earlier(texts=[LOST], since=since) is None


async def test_an_earlier_status_is_found_whatever_way_mastodon_wrote_its_mentions(
    fake: tuple[FakeMastodon, ThreadedServer], http: httpx.AsyncClient
) -> None:
    instance, server = fake
    mastodon, account = reading_client(instance, http, server)
    now = time.time()
    since = datetime.fromtimestamp(now - 3 * 3600, UTC)
    typed = "thanks @Jane.Doe@misskey.example and @ada@other.example."
    lost = instance.add_status(account, typed, at=now - 3 * 3600 + 10)
    # As the instance stored it: the first mention resolved in the account's canonical case,
    # the second one left unresolved, as plain text in full.
    lost["content"] = (
        '<p>thanks <span class="h-card" translate="no"><a href="https://misskey.example/@jane.doe"'
        ' class="u-url mention">@<span>jane.doe</span></a></span> and @ada@other.example.</p>'
    )
    instance.add_status(account, "thanks @jane.doe and @bob.", at=now - 2 * 3600)

    found = await mastodon.find_earlier(texts=[typed], since=since)

    assert found is not None and (found.id, found.earlier) == (lost["id"], True)
    other = "thanks @jane@misskey.example and @ada@other.example."
    assert await mastodon.find_earlier(texts=[other], since=since) is None
