"""The model's budget is the fleet's: two generator replicas share it through real Redis.

Each "replica" here is a budget, an HTTP session and a provider of its own over the same Redis
key prefix, as two generator processes are; the model server enforces the same limit OpenAI
does (a moving minute, 429 with its headers beyond).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest

from services.generator.budget import ModelBudget
from services.generator.handlers import make_handler
from services.generator.providers import OpenAIProvider, complete_with_retries
from shared.budgets import Budgets
from shared.cancellation import CancelledSet, ExecutionCancelledError
from shared.events import ContentGenerated, StepFailed, StepWaiting
from tests.support.bus import RecordingBus, scanned
from tests.support.fakes import openai
from tests.support.fakes.server import ThreadedServer

RPM = 10


@dataclass
class Replica:
    budgets: Budgets
    budget: ModelBudget
    provider: OpenAIProvider


@pytest.fixture
def model() -> Iterator[tuple[openai.FakeOpenAI, ThreadedServer]]:
    fake = openai.FakeOpenAI(requests_per_minute=RPM)
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
async def replicas(
    model: tuple[openai.FakeOpenAI, ThreadedServer], redis_budgets: tuple[str, str]
) -> AsyncIterator[list[Replica]]:
    redis_url, prefix = redis_budgets
    opened = []
    for _ in range(2):
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        budgets = Budgets(redis_url, prefix=prefix)
        provider = OpenAIProvider(http, model[1].url, "gpt-test", "sk-test", max_tokens=50)
        budget = ModelBudget(budgets, provider="openai", model="gpt-test", requests_per_minute=RPM)
        opened.append((http, Replica(budgets, budget, provider)))
    yield [replica for _, replica in opened]
    for http, replica in opened:
        await http.close()
        await replica.budgets.close()


async def call(replica: Replica, cancelled: CancelledSet, execution_id: str) -> str:
    completion = await complete_with_retries(
        replica.provider,
        "system",
        "Platform: x\nProject: octo/repo",
        retries=0,
        max_wait=0,
        budget=replica.budget,
        check=lambda: cancelled.check(execution_id),
    )
    return completion.text


async def test_two_replicas_never_exceed_the_budget_together_and_cancelled_waits_call_nothing(
    model: tuple[openai.FakeOpenAI, ThreadedServer], replicas: list[Replica]
) -> None:
    fake, _ = model
    cancelled = CancelledSet()
    calls = [asyncio.create_task(call(replicas[n % 2], cancelled, f"exe_{n}")) for n in range(24)]

    # The budget lets ten through at once (the control: calls flow while it allows them) ...
    deadline = time.monotonic() + 10
    while len(fake.accepted) < RPM and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)
    assert len(fake.accepted) == RPM
    assert fake.rejected == 0
    # ... and the other fourteen wait. Cancelled while waiting, they make no call at all.
    for n in range(24):
        cancelled.add(f"exe_{n}")
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    await asyncio.sleep(0.5)
    assert sum(isinstance(o, ExecutionCancelledError) for o in outcomes) == 24 - RPM
    assert sum(isinstance(o, str) for o in outcomes) == RPM
    assert len(fake.calls) == RPM and fake.rejected == 0


async def test_a_429_seen_by_one_replica_pauses_the_other(
    model: tuple[openai.FakeOpenAI, ThreadedServer], replicas: list[Replica]
) -> None:
    fake, _ = model
    fake.requests_per_minute = None
    fake.script.append(openai.Failure(429, "rate_limit_exceeded", retry_after=2, message="slow"))
    cancelled = CancelledSet()

    first = asyncio.create_task(call(replicas[0], cancelled, "exe_a"))
    while not fake.calls:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the 429 is in, and its pause written
    limited_at = time.monotonic()
    second = await call(replicas[1], cancelled, "exe_b")

    assert await first and second
    # The other replica's call waited out the pause the first one's 429 started.
    assert time.monotonic() - limited_at >= 1.5
    assert len(fake.calls) == 3  # the 429, the first's call again, the second's


async def test_a_budget_wait_is_no_retry_and_shows_on_the_timeline(
    model: tuple[openai.FakeOpenAI, ThreadedServer], replicas: list[Replica]
) -> None:
    fake, _ = model
    replica = replicas[0]
    await replica.budgets.pause(replica.budget.key, 2.0)
    bus = RecordingBus()
    handler = make_handler(
        bus, CancelledSet(), replica.provider, call_retries=1, max_wait=0, budget=replica.budget
    )

    await handler(scanned(["x", "mastodon"], max_retries=0))

    [content] = bus.of(ContentGenerated)
    assert isinstance(content, ContentGenerated)
    assert content.attempt == 1
    assert {post.status for post in content.results} == {"GENERATED"}
    assert bus.of(StepFailed) == [] and bus.delayed == []
    waits = bus.of(StepWaiting)
    assert len(waits) == 1  # two platforms waited; the api hears of it once
    assert "asked every replica to wait" in waits[0].reason  # type: ignore[attr-defined]
    assert len(fake.calls) == 2


async def test_the_tokens_budget_holds_calls_back_too(
    model: tuple[openai.FakeOpenAI, ThreadedServer], redis_budgets: tuple[str, str]
) -> None:
    fake, server = model
    fake.requests_per_minute, fake.tokens_per_minute = None, 120
    redis_url, prefix = redis_budgets
    budgets = Budgets(redis_url, prefix=prefix)
    budget = ModelBudget(budgets, provider="openai", model="gpt-test", tokens_per_minute=120)
    async with aiohttp.ClientSession() as http:
        provider = OpenAIProvider(http, server.url, "gpt-test", "sk-test", max_tokens=50)
        replica = Replica(budgets, budget, provider)
        cancelled = CancelledSet()
        calls = [asyncio.create_task(call(replica, cancelled, f"exe_{n}")) for n in range(4)]
        await asyncio.sleep(1.5)
        # Each call may spend its prompt and 50 tokens: two fit in 120 a minute.
        assert len(fake.accepted) == 2 and fake.rejected == 0
        for n in range(4):
            cancelled.add(f"exe_{n}")
        await asyncio.gather(*calls, return_exceptions=True)
    await budgets.close()
    assert len(fake.calls) == 2
