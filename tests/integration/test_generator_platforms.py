"""The generator's handler with a model behind a local OpenAI-compatible server.

Per-platform outcomes: success, failure, and the retry that reruns only the platforms still
pending. The bus is a recording fake at the port; HTTP goes to the local server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from services.generator.handlers import make_handler
from services.generator.providers import OpenAIProvider, Provider
from shared import topology
from shared.cancellation import CancelledSet
from shared.errors import ConfigurationError
from shared.events import (
    ActivityScanned,
    ContentGenerated,
    StepFailed,
    StepStarted,
)
from tests.support.bus import RecordingBus, scanned
from tests.support.fakes import openai
from tests.support.fakes.server import ThreadedServer

END = datetime(2025, 3, 8, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[tuple[openai.FakeOpenAI, ThreadedServer]]:
    model = openai.FakeOpenAI()
    server = model.serve()
    yield model, server
    server.close()


@pytest.fixture
async def provider(
    fake: tuple[openai.FakeOpenAI, ThreadedServer],
) -> AsyncIterator[OpenAIProvider]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        yield OpenAIProvider(http, fake[1].url, "gpt-test", "sk-test")


async def run(
    event: ActivityScanned,
    provider: Provider | ConfigurationError | None,
    *,
    max_wait: float = 0.0,
) -> RecordingBus:
    bus = RecordingBus()
    handler = make_handler(bus, CancelledSet(), provider, call_retries=1, max_wait=max_wait)
    await handler(event)
    return bus


def post(body: str, title: str | None = None) -> str:
    return json.dumps({"body": body} | ({"title": title} if title else {}))


async def test_every_platform_gets_a_model_post_with_tokens_and_timing(
    fake: tuple[openai.FakeOpenAI, ThreadedServer], provider: OpenAIProvider
) -> None:
    bus = await run(scanned(["x", "blog", "changelog"]), provider)

    assert len(bus.of(StepStarted)) == 1
    [content] = bus.of(ContentGenerated)
    assert isinstance(content, ContentGenerated)
    assert [r.platform for r in content.results] == ["x", "blog", "changelog"]
    assert {r.status for r in content.results} == {"GENERATED"}
    assert all(
        r.model == "gpt-test" and r.prompt_tokens and r.completion_tokens for r in content.results
    )
    assert content.results[1].title == "octo/repo update"
    prompt = fake[0].calls[0].body["messages"][1]["content"]
    assert "Project: octo/repo" in prompt and "feat: digest" in prompt


async def test_one_platform_failing_permanently_leaves_the_others_generated(
    fake: tuple[openai.FakeOpenAI, ThreadedServer], provider: OpenAIProvider
) -> None:
    fake[0].scripts.update(
        x=[post("short")],
        mastodon=[openai.INSUFFICIENT_QUOTA],
        bluesky=["not json at all"],
        linkedin=[post("")],
    )

    bus = await run(scanned(["x", "mastodon", "bluesky", "linkedin"]), provider)

    [content] = bus.of(ContentGenerated)
    assert isinstance(content, ContentGenerated)
    results = {r.platform: r for r in content.results}
    assert results["x"].status == "GENERATED"
    assert results["mastodon"].status == "FAILED"
    assert "insufficient_quota" in (results["mastodon"].error or "")
    assert "malformed JSON" in (results["bluesky"].error or "")
    assert results["bluesky"].prompt_tokens > 0  # the tokens were spent all the same
    assert results["linkedin"].error == "openai: the model returned an empty post"
    assert bus.delayed == []


async def test_an_over_limit_post_is_trimmed_to_the_platform_limit(
    fake: tuple[openai.FakeOpenAI, ThreadedServer], provider: OpenAIProvider
) -> None:
    fake[0].script.append(post("word " * 200))

    bus = await run(scanned(["x"]), provider)

    [content] = bus.of(ContentGenerated)
    assert isinstance(content, ContentGenerated)
    body = content.results[0].body or ""
    assert len(body) <= 280 and body.endswith("…")


async def test_a_retry_reruns_only_the_pending_platforms(
    fake: tuple[openai.FakeOpenAI, ThreadedServer], provider: OpenAIProvider
) -> None:
    limited = openai.Failure(429, "rate_limit_exceeded", retry_after=30, message="slow down")
    fake[0].scripts.update(
        x=[post("x post")], blog=[limited], changelog=[post("# Changes\n\nAll of them")]
    )

    first = await run(scanned(["x", "blog", "changelog"]), provider)

    assert first.of(ContentGenerated) == []
    [failed] = first.of(StepFailed)
    assert isinstance(failed, StepFailed)
    assert (failed.final, failed.retriable) == (False, True)
    assert "blog" in failed.error
    [(retry, queue, not_before)] = first.delayed
    assert isinstance(retry, ActivityScanned)
    assert queue == topology.GENERATOR_QUEUE
    assert retry.attempt == 2
    assert not_before >= datetime.now(UTC) + timedelta(seconds=25)
    assert [p.platform for p in retry.summary.posts_done] == ["x", "changelog"]

    calls_before = len(fake[0].calls)
    second = await run(ActivityScanned.model_validate_json(retry.to_json()), provider)

    assert len(fake[0].calls) == calls_before + 1  # the blog post only
    [content] = second.of(ContentGenerated)
    assert isinstance(content, ContentGenerated)
    assert [r.platform for r in content.results] == ["x", "blog", "changelog"]
    assert [r.status for r in content.results] == ["GENERATED"] * 3
    assert content.results[0].body == "x post"


async def test_a_platform_whose_retries_are_exhausted_counts_as_failed(
    fake: tuple[openai.FakeOpenAI, ThreadedServer], provider: OpenAIProvider
) -> None:
    fake[0].scripts.update(x=[post("x post")], mastodon=[openai.Failure(503, None, message="busy")])

    bus = await run(scanned(["x", "mastodon"], max_retries=0), provider)

    [content] = bus.of(ContentGenerated)
    assert isinstance(content, ContentGenerated)
    assert content.results[1].status == "FAILED"
    assert (content.results[1].error or "").startswith("retries exhausted: OpenAI 503")


async def test_no_post_at_all_fails_the_step_with_every_platforms_error(
    fake: tuple[openai.FakeOpenAI, ThreadedServer], provider: OpenAIProvider
) -> None:
    fake[0].script += [openai.INSUFFICIENT_QUOTA, openai.INSUFFICIENT_QUOTA]

    bus = await run(scanned(["x", "blog"]), provider)

    assert bus.of(ContentGenerated) == []
    [failed] = bus.of(StepFailed)
    assert isinstance(failed, StepFailed)
    assert failed.final and not failed.retriable
    assert failed.error.startswith("no post generated: x: OpenAI 429 insufficient_quota")


async def test_without_a_provider_the_template_writer_writes_every_post() -> None:
    bus = await run(scanned(["x", "blog", "myspace"]), None)

    [content] = bus.of(ContentGenerated)
    assert isinstance(content, ContentGenerated)
    assert [r.status for r in content.results] == ["GENERATED", "GENERATED", "FAILED"]
    assert content.results[0].model == "herald-template-writer"


async def test_a_misconfigured_provider_fails_the_step_with_a_clear_error() -> None:
    bad = ConfigurationError("HERALD_AI_BASE_URL 'ftp://x' is not an http(s) URL")

    bus = await run(scanned(["x"]), bad)

    [failed] = bus.of(StepFailed)
    assert isinstance(failed, StepFailed)
    assert failed.final
    assert "HERALD_AI_BASE_URL" in failed.error
