"""The AI provider clients against local servers that speak OpenAI's and Anthropic's protocols."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from pydantic import ValidationError

from services.generator.providers import (
    AnthropicProvider,
    OpenAIProvider,
    QuotaError,
    complete_with_retries,
    make_provider,
)
from shared.errors import ConfigurationError, PermanentError, TransientError
from shared.settings import Settings
from tests.support.fakes import anthropic, openai
from tests.support.fakes.server import ThreadedServer


@pytest.fixture
def fake_openai() -> Iterator[tuple[openai.FakeOpenAI, ThreadedServer]]:
    fake = openai.FakeOpenAI()
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def fake_anthropic() -> Iterator[tuple[anthropic.FakeAnthropic, ThreadedServer]]:
    fake = anthropic.FakeAnthropic()
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        yield client


def gpt(
    http: aiohttp.ClientSession, server: ThreadedServer, key: str = "sk-test"
) -> OpenAIProvider:
    return OpenAIProvider(http, server.url, "gpt-4o-mini", key, max_tokens=300)


def claude(http: aiohttp.ClientSession, server: ThreadedServer) -> AnthropicProvider:
    return AnthropicProvider(http, server.url, "claude-test", "sk-ant-test", max_tokens=300)


async def test_openai_success_returns_text_and_usage(
    fake_openai: tuple[openai.FakeOpenAI, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    fake, server = fake_openai
    fake.script.append('{"body": "hello"}')

    completion = await gpt(http, server).complete("be brief", "facts")

    assert completion.text == '{"body": "hello"}'
    assert completion.model == "gpt-4o-mini"
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    call = fake.calls[0]
    assert call.headers["authorization"] == "Bearer sk-test"
    assert call.body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "facts"},
    ]
    assert call.body["max_completion_tokens"] == 300


async def test_an_openai_base_url_ending_in_v1_is_not_doubled(
    fake_openai: tuple[openai.FakeOpenAI, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    _, server = fake_openai
    provider = OpenAIProvider(http, f"{server.url}/v1/", "llama3", "sk-test")

    assert (await provider.complete("s", "u")).text


async def test_openai_429_is_retried_after_its_retry_after(
    fake_openai: tuple[openai.FakeOpenAI, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    fake, server = fake_openai
    fake.script.append(openai.RATE_LIMITED)
    started = time.monotonic()

    completion = await complete_with_retries(gpt(http, server), "s", "u", retries=2, max_wait=5)

    assert completion.text
    assert len(fake.calls) == 2
    assert time.monotonic() - started >= 1.0


async def test_a_retry_after_longer_than_the_short_wait_leaves_it_to_the_ladder(
    fake_openai: tuple[openai.FakeOpenAI, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    fake, server = fake_openai
    fake.script.append(openai.Failure(429, "rate_limit_exceeded", retry_after=30))

    with pytest.raises(TransientError, match="OpenAI 429 rate_limit_exceeded") as caught:
        await complete_with_retries(gpt(http, server), "s", "u", retries=2, max_wait=5)

    assert caught.value.retry_after == 30
    assert len(fake.calls) == 1


async def test_openai_500_is_transient_and_retried(
    fake_openai: tuple[openai.FakeOpenAI, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    fake, server = fake_openai
    fake.script += [openai.SERVER_ERROR, openai.SERVER_ERROR, openai.SERVER_ERROR]

    with pytest.raises(TransientError, match="OpenAI 500"):
        await complete_with_retries(gpt(http, server), "s", "u", retries=2, max_wait=5)

    assert len(fake.calls) == 3


async def test_openai_insufficient_quota_is_not_retried(
    fake_openai: tuple[openai.FakeOpenAI, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    fake, server = fake_openai
    fake.script.append(openai.INSUFFICIENT_QUOTA)

    with pytest.raises(QuotaError, match="insufficient_quota"):
        await complete_with_retries(gpt(http, server), "s", "u", retries=2, max_wait=5)

    assert len(fake.calls) == 1


async def test_a_wrong_openai_key_is_permanent(
    fake_openai: tuple[openai.FakeOpenAI, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    _, server = fake_openai

    with pytest.raises(PermanentError, match="OpenAI 401 invalid_api_key") as caught:
        await gpt(http, server, key="sk-wrong").complete("s", "u")

    assert not isinstance(caught.value, TransientError)


async def test_anthropic_success_returns_text_and_usage(
    fake_anthropic: tuple[anthropic.FakeAnthropic, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    fake, server = fake_anthropic
    fake.script.append('{"body": "hi"}')

    completion = await claude(http, server).complete("be brief", "facts")

    assert completion.text == '{"body": "hi"}'
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    call = fake.calls[0]
    assert call.headers["x-api-key"] == "sk-ant-test"
    assert call.headers["anthropic-version"] == "2023-06-01"
    assert call.body["system"] == "be brief"
    assert call.body["messages"] == [{"role": "user", "content": "facts"}]
    assert call.body["max_tokens"] == 300


@pytest.mark.parametrize("failure", [anthropic.OVERLOADED, anthropic.SERVER_ERROR])
async def test_anthropic_529_and_500_are_retried(
    fake_anthropic: tuple[anthropic.FakeAnthropic, ThreadedServer],
    http: aiohttp.ClientSession,
    failure: anthropic.Failure,
) -> None:
    fake, server = fake_anthropic
    fake.script.append(failure)

    completion = await complete_with_retries(claude(http, server), "s", "u", retries=2, max_wait=5)

    assert completion.text
    assert len(fake.calls) == 2


async def test_anthropic_429_carries_its_retry_after(
    fake_anthropic: tuple[anthropic.FakeAnthropic, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    fake, server = fake_anthropic
    fake.script.append(anthropic.RATE_LIMITED)

    with pytest.raises(TransientError, match="rate_limit_error") as caught:
        await complete_with_retries(claude(http, server), "s", "u", retries=0, max_wait=5)

    assert caught.value.retry_after == 1


async def test_anthropic_spend_limit_is_not_retried(
    fake_anthropic: tuple[anthropic.FakeAnthropic, ThreadedServer], http: aiohttp.ClientSession
) -> None:
    fake, server = fake_anthropic
    fake.script.append(anthropic.SPEND_LIMIT)

    with pytest.raises(QuotaError, match="enforced_spend_limit_reached"):
        await complete_with_retries(claude(http, server), "s", "u", retries=2, max_wait=5)

    assert len(fake.calls) == 1


async def test_an_unreachable_provider_is_transient(http: aiohttp.ClientSession) -> None:
    provider = OpenAIProvider(http, "http://127.0.0.1:9", "m", "k")

    with pytest.raises(TransientError, match="OpenAI unreachable"):
        await provider.complete("s", "u")


async def test_no_provider_configured_means_the_template_writer(
    http: aiohttp.ClientSession,
) -> None:
    assert make_provider(Settings(ai_provider=""), http) is None


def test_an_unknown_provider_is_refused_when_the_settings_are_read() -> None:
    with pytest.raises(ValidationError, match=r"ai_provider\n.*'openai' or 'anthropic'"):
        Settings(ai_provider="gemini")
    assert Settings(ai_provider=" OpenAI ").ai_provider == "openai"


def test_secrets_never_show_in_the_settings_repr() -> None:
    settings = Settings(ai_api_key="sk-very-secret", github_token="ghp_also_secret")
    assert "very-secret" not in repr(settings) and "also_secret" not in repr(settings)
    assert settings.ai_api_key.get_secret_value() == "sk-very-secret"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(ai_provider="openai", ai_base_url="ftp://x"), "not an http"),
        (Settings(ai_provider="openai", ai_base_url="localhost:11434"), "not an http"),
        (Settings(ai_provider="anthropic"), "HERALD_AI_API_KEY is required"),
    ],
)
async def test_a_bad_provider_configuration_is_a_configuration_error(
    settings: Settings, message: str, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_provider(settings, http)
