"""AI providers: an OpenAI-compatible chat-completions client and an Anthropic Messages client.

Each turns one (system, user) prompt into text and token counts. Errors follow DESIGN.md:
429, 5xx, Anthropic 529, timeouts and connection errors are TransientError (with the server's
`retry-after`); quota and spend-limit errors, bad keys and bad requests are PermanentError.

They speak HTTP through aiohttp, not httpx: a generator holds every platform of hundreds of
executions in flight, each call seconds long, and httpx's connection pool costs time in
proportion to its connections on every request (8.5 ms of CPU a call with 800 in flight,
against 0.3-0.7 ms with aiohttp's; docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from services.generator.budget import ModelBudget, Report
from shared import tracing
from shared.errors import ConfigurationError, PermanentError, TransientError
from shared.metrics import AI_REQUEST_SECONDS, AI_TOKENS
from shared.retry import compute_backoff, wait_from_header
from shared.settings import Settings

ANTHROPIC_VERSION = "2023-06-01"
# Throttles (429, 529) one call waits out before its platform waits on the delay ladder.
MAX_THROTTLED = 10
DEFAULTS = {
    "openai": ("https://api.openai.com", "gpt-4o-mini"),
    "anthropic": ("https://api.anthropic.com", "claude-3-5-haiku-latest"),
}


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    # The answer's headers: the provider's word on what is left of its limits.
    headers: Mapping[str, str] = field(default_factory=dict)


class Provider(Protocol):
    name: str
    model: str

    async def complete(self, system: str, user: str) -> Completion: ...


class QuotaError(PermanentError):
    """The AI provider's quota or spend limit is reached; waiting will not help."""


class ThrottledError(TransientError):
    """The provider asked to slow down (429) or is overloaded (529): every replica waits."""

    def __init__(
        self, message: str, *, retry_after: float | None, headers: Mapping[str, str]
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.headers = headers


@dataclass(frozen=True)
class Answer:
    """A provider's HTTP answer, read whole: status, headers (lower-case names), body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class OpenAIProvider:
    """`POST {base}/v1/chat/completions`: OpenAI, Ollama, vLLM, LM Studio and the like."""

    http: aiohttp.ClientSession
    base_url: str
    model: str
    api_key: str
    max_tokens: int = 1024
    name: str = "openai"

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"

    async def complete(self, system: str, user: str) -> Completion:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "max_completion_tokens": self.max_tokens,
            "temperature": 0.4,
        }
        response = await _post(self.http, self.url, headers, body, provider="OpenAI")
        if response.status >= 400:
            raise _openai_error(response)
        payload = _json(response, "OpenAI")
        try:
            message = payload["choices"][0]["message"]
            text = message.get("content") or ""
            usage = payload.get("usage") or {}
            return Completion(
                text=str(text),
                model=str(payload.get("model") or self.model),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                headers=response.headers,
            )
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise PermanentError("OpenAI returned a response without choices[0].message") from exc


@dataclass
class AnthropicProvider:
    """`POST {base}/v1/messages` with `x-api-key` and `anthropic-version`."""

    http: aiohttp.ClientSession
    base_url: str
    model: str
    api_key: str
    max_tokens: int = 1024
    name: str = "anthropic"

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    async def complete(self, system: str, user: str) -> Completion:
        headers = {
            "x-api-key": self.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }
        body = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": user}],
        }
        response = await _post(self.http, self.url, headers, body, provider="Anthropic")
        if response.status >= 400:
            raise _anthropic_error(response)
        payload = _json(response, "Anthropic")
        try:
            text = "".join(
                block.get("text", "")
                for block in payload["content"]
                if isinstance(block, dict) and block.get("type") == "text"
            )
            usage = payload.get("usage") or {}
            return Completion(
                text=text,
                model=str(payload.get("model") or self.model),
                prompt_tokens=int(usage.get("input_tokens") or 0),
                completion_tokens=int(usage.get("output_tokens") or 0),
                headers=response.headers,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise PermanentError("Anthropic returned a response without content") from exc


def make_provider(settings: Settings, http: aiohttp.ClientSession) -> Provider | None:
    """Build the configured provider; None means the built-in template writer."""
    name = settings.ai_provider
    if name in ("", "template", "none"):
        return None
    default_url, default_model = DEFAULTS[name]
    base_url = settings.ai_base_url or default_url
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"HERALD_AI_BASE_URL {base_url!r} is not an http(s) URL")
    model = settings.ai_model or default_model
    key = settings.ai_api_key.get_secret_value()
    if name == "anthropic":
        if not key:
            raise ConfigurationError("HERALD_AI_API_KEY is required for the anthropic provider")
        return AnthropicProvider(http, base_url, model, key, settings.ai_max_tokens)
    return OpenAIProvider(http, base_url, model, key, settings.ai_max_tokens)


async def complete_with_retries(
    provider: Provider,
    system: str,
    user: str,
    *,
    retries: int,
    max_wait: float,
    budget: ModelBudget | None = None,
    check: Callable[[], None] = lambda: None,
    report: Report | None = None,
) -> Completion:
    """Call the provider within its budget, retrying a transient failure a few times.

    Waiting for the budget, or for the pause a 429 or 529 starts (in every replica), is no
    failure and counts as no try, up to `MAX_THROTTLED` throttles a call. A failure's wait
    longer than `max_wait` is not spent here: the TransientError goes up, and the platform
    stays pending for the step's delay ladder.
    """
    tries = throttles = 0
    holds_budget = False
    while True:
        if budget is not None:
            await budget.acquire(
                _estimate(provider, system, user),
                check=check,
                report=report,
                spend=not holds_budget,
            )
            holds_budget = True
        check()
        try:
            completion = await provider.complete(system, user)
        except TransientError as exc:
            if isinstance(exc, ThrottledError) and budget is not None:
                # Every replica pauses; this call waits out the pause, as no try, and keeps the
                # budget it took (the provider did not count the refused call).
                await budget.throttled(exc.retry_after, exc.headers)
                if throttles < MAX_THROTTLED:
                    throttles += 1
                    continue
            wait = (
                exc.retry_after
                if exc.retry_after is not None
                else compute_backoff(tries + 1, base=0.5, jitter=0.0, floor=0.0)
            )
            if tries == retries or wait > max_wait:
                raise
            tries += 1
            # A failed call counted at the provider: its retry takes budget again.
            holds_budget = False
            await asyncio.sleep(wait)
            continue
        if budget is not None:
            await budget.observe(completion.headers)
        AI_TOKENS.labels(provider.name, "prompt").inc(completion.prompt_tokens)
        AI_TOKENS.labels(provider.name, "completion").inc(completion.completion_tokens)
        return completion


def _estimate(provider: Provider, system: str, user: str) -> int:
    """Tokens a call may spend, as providers count them ahead: the prompt and its ceiling."""
    return (len(system) + len(user)) // 4 + getattr(provider, "max_tokens", 0)


async def _post(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any],
    *,
    provider: str,
) -> Answer:
    started = time.perf_counter()
    try:
        async with http.post(url, headers=headers, json=body, allow_redirects=False) as r:
            raw = await r.read()
            received = {name.lower(): value for name, value in r.headers.items()}
            return Answer(r.status, received, raw)
    except TimeoutError as exc:
        raise TransientError(f"{provider} timed out: {exc.__class__.__name__}") from exc
    except aiohttp.ClientError as exc:
        raise TransientError(f"{provider} unreachable: {exc!r}") from exc
    finally:
        AI_REQUEST_SECONDS.labels(provider.lower()).observe(
            time.perf_counter() - started, exemplar=tracing.exemplar()
        )


def _json(response: Answer, provider: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError as exc:
        raise TransientError(f"{provider} returned a body that is not JSON") from exc
    if not isinstance(payload, dict):
        raise PermanentError(f"{provider} returned a JSON body that is not an object")
    return payload


def _openai_error(response: Answer) -> Exception:
    error = _error_object(response)
    code = str(error.get("code") or error.get("type") or "")
    message = str(error.get("message") or response.text[:200])
    status = response.status
    text = f"OpenAI {status} {code}: {message}".replace(" : ", ": ")
    if code == "insufficient_quota":
        return QuotaError(text)
    if status == 429:
        return ThrottledError(
            text, retry_after=wait_from_header(response.headers), headers=response.headers
        )
    if status >= 500 or status == 408:
        return TransientError(text, retry_after=wait_from_header(response.headers))
    return PermanentError(text)


def _anthropic_error(response: Answer) -> Exception:
    error = _error_object(response)
    kind = str(error.get("type") or "")
    details = error.get("details") if isinstance(error.get("details"), dict) else {}
    code = str((details or {}).get("error_code") or "")
    message = str(error.get("message") or response.text[:200])
    status = response.status
    text = f"Anthropic {status} {code or kind}: {message}"
    if code == "enforced_spend_limit_reached" or kind == "billing_error":
        return QuotaError(text)
    if status in (429, 529):
        return ThrottledError(
            text, retry_after=wait_from_header(response.headers), headers=response.headers
        )
    if status >= 500 or status == 408:
        return TransientError(text, retry_after=wait_from_header(response.headers))
    return PermanentError(text)


def _error_object(response: Answer) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
