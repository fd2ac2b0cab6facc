"""The model budget reads providers' rate-limit headers as they send them."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.generator.budget import ModelBudget, _limits, _reset
from shared.budgets import Budgets

FIFTEENTH = datetime.fromisoformat("2027-01-15T08:00:00+00:00").timestamp()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("12ms", 0.012),
        ("1s", 1.0),
        ("1.5s", 1.5),
        ("6m0s", 360.0),
        ("14h29m11.04s", 14 * 3600 + 29 * 60 + 11.04),
        ("2027-01-15T08:00:30Z", 30.0),  # Anthropic's RFC 3339 instant, 30 s after NOW
        ("", None),
        ("soon", None),
    ],
)
def test_resets_are_read_as_durations_or_instants(value: str, seconds: float | None) -> None:
    got = _reset(value, now=FIFTEENTH)
    if seconds is None:
        assert got is None
    else:
        assert got == pytest.approx(seconds)


def test_openai_and_anthropic_headers_give_remaining_limit_and_reset() -> None:
    openai = {
        "x-ratelimit-limit-requests": "600",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "58s",
    }
    anthropic = {
        "anthropic-ratelimit-tokens-limit": "96000",
        "anthropic-ratelimit-tokens-remaining": "120",
        "anthropic-ratelimit-tokens-reset": "2027-01-15T08:00:10Z",
    }
    assert _limits(openai, "requests", now=FIFTEENTH) == (0, 600, 58.0)
    assert _limits(anthropic, "tokens", now=FIFTEENTH) == (120, 96000, pytest.approx(10.0))
    assert _limits(openai, "tokens", now=FIFTEENTH) == (None, None, None)


async def test_nothing_left_pauses_until_one_unit_is_back_and_a_429_until_its_word() -> None:
    budgets = Budgets()
    budget = ModelBudget(budgets, provider="openai", model="m")

    await budget.observe(
        {
            "x-ratelimit-limit-requests": "600",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1m0s",
        }
    )
    # 600 a minute: one is back after 0.1 s (not the minute a full reset takes), and a margin.
    assert await budgets.paused_for(budget.key) == pytest.approx(0.35, abs=0.05)

    await budget.throttled(7.0, {})
    assert await budgets.paused_for(budget.key) == pytest.approx(7.25, abs=0.05)
    # A shorter word later never shortens a pause another replica started.
    await budget.throttled(1.0, {})
    assert await budgets.paused_for(budget.key) == pytest.approx(7.25, abs=0.05)
