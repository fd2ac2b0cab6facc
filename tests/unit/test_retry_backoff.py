"""Retry timing: exponential backoff with bounded jitter, a cap and the remote's Retry-After."""

from __future__ import annotations

import email.utils
import random

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.retry import MAX_BACKOFF_SECONDS, compute_backoff, wait_from_header


def no_jitter(attempt: int, **kwargs: float) -> float:
    return compute_backoff(attempt, jitter=0.0, **kwargs)


@pytest.mark.parametrize(("attempt", "expected"), [(1, 300), (2, 600), (3, 1200), (4, 2400)])
def test_backoff_doubles_from_the_base_with_each_attempt(attempt: int, expected: float) -> None:
    assert no_jitter(attempt, base=300) == expected


def test_backoff_grows_by_the_given_factor() -> None:
    assert [no_jitter(n, base=10, factor=3) for n in (1, 2, 3)] == [10, 30, 90]


@settings(max_examples=200, deadline=None)
@given(
    attempt=st.integers(1, 12),
    base=st.floats(10, 3600),
    seed=st.integers(0, 2**32),
)
def test_jitter_stays_within_ten_percent_of_the_unjittered_delay(
    attempt: int, base: float, seed: int
) -> None:
    exact = no_jitter(attempt, base=base)

    jittered = compute_backoff(attempt, base=base, rng=random.Random(seed))

    assert exact * 0.9 <= jittered <= exact * 1.1


def test_jitter_actually_spreads_the_delays() -> None:
    rng = random.Random(7)

    delays = {compute_backoff(1, base=100, rng=rng) for _ in range(20)}

    assert len(delays) > 1


def test_backoff_is_capped_at_the_maximum() -> None:
    assert no_jitter(10, base=86_400) == MAX_BACKOFF_SECONDS
    assert no_jitter(5, base=100, max_backoff=500) == 500


@settings(max_examples=100, deadline=None)
@given(attempt=st.integers(1, 30), seed=st.integers(0, 2**32))
def test_a_capped_delay_is_only_spread_by_the_jitter(attempt: int, seed: int) -> None:
    delay = compute_backoff(attempt, base=60, max_backoff=1000, rng=random.Random(seed))

    assert delay <= 1000 * 1.1


def test_backoff_is_never_under_one_second() -> None:
    assert no_jitter(1, base=0.01) == 1.0


def test_a_longer_retry_after_wins() -> None:
    assert no_jitter(1, base=10, retry_after=90) == 90


def test_a_shorter_retry_after_does_not_shorten_the_backoff() -> None:
    assert no_jitter(3, base=10, retry_after=5) == 40


def test_retry_after_beyond_the_cap_still_wins() -> None:
    assert no_jitter(1, base=10, max_backoff=60, retry_after=3600) == 3600


@pytest.mark.parametrize("attempt", [0, -1])
def test_an_attempt_below_one_is_rejected(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt starts at 1"):
        compute_backoff(attempt, base=10)


@settings(max_examples=50, deadline=None)
@given(attempt=st.integers(1, 10), seed=st.integers(0, 2**32))
def test_equal_seeds_give_equal_delays(attempt: int, seed: int) -> None:
    first = compute_backoff(attempt, base=300, rng=random.Random(seed))
    second = compute_backoff(attempt, base=300, rng=random.Random(seed))

    assert first == second


NOW = 1_792_000_000.0  # a fixed clock for the HTTP dates below


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0.25", 0.25),  # Discord's and Resend's fractions
        ("0", 0.0),
        ("-3", 0.0),  # no wait, never a negative one
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),  # a date already past
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),  # RFC 9110's own example
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # the obsolete RFC 850 form
        ("soon", None),
        ("", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_a_servers_wait_is_read_from_seconds_or_an_http_date(
    value: str, expected: float | None
) -> None:
    got = wait_from_header({"retry-after": value}, now=lambda: NOW)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_an_absent_header_is_no_wait_and_names_are_looked_up_as_the_headers_do() -> None:
    assert wait_from_header({}) is None
    # httpx's headers ignore case, as HTTP does; so does the reader through them.
    assert wait_from_header(httpx.Headers({"Retry-After": "5"})) == 5.0
    assert wait_from_header({"ratelimit-reset": "2"}, "ratelimit-reset") == 2.0


def test_jitter_leaves_the_processs_shared_random_state_alone() -> None:
    # A retry in a background task must not move the sequence of another user of `random`
    # (hypothesis refuses strategies during which the shared state changed).
    state = random.getstate()
    delays = {compute_backoff(3, base=10.0) for _ in range(20)}
    assert random.getstate() == state
    assert len(delays) > 1  # jittered all the same
    random.random()
    assert random.getstate() != state  # the same check sees a draw from `random`
