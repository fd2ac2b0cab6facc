"""Identifiers: prefixed, ULID-shaped, ordered by creation time; derived ids are stable."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import ids
from shared.ids import derived_event_id, new_event_id, new_id

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def frozen_clock(monkeypatch: pytest.MonkeyPatch, millis: int) -> None:
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: millis * 1_000_000))


def test_an_id_is_the_prefix_and_26_lower_case_crockford_characters() -> None:
    value = new_id("exe")

    assert re.fullmatch(rf"exe_[{CROCKFORD}]{{26}}", value)


def test_the_alphabet_sorts_in_the_order_of_its_digit_values() -> None:
    assert list(CROCKFORD) == sorted(CROCKFORD)
    assert CROCKFORD == ids._ALPHABET


def test_ids_made_in_the_same_millisecond_share_their_time_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen_clock(monkeypatch, 1_735_689_600_000)

    first, second = new_id("exe"), new_id("exe")

    assert first[:14] == second[:14]
    assert first != second


@settings(max_examples=200, deadline=None)
@given(
    earlier=st.integers(0, 2**48 - 2),
    gap=st.integers(1, 10**9),
)
def test_a_later_millisecond_always_sorts_after_an_earlier_one(earlier: int, gap: int) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        frozen_clock(monkeypatch, earlier)
        first = new_id("cron")
        frozen_clock(monkeypatch, earlier + gap)
        second = new_id("cron")

    assert first < second


def test_ids_from_the_real_clock_sort_by_creation_time() -> None:
    made = [new_id("n") for _ in range(50)]

    assert [i[:12] for i in made] == sorted(i[:12] for i in made)


def test_a_derived_event_id_is_stable_for_equal_inputs() -> None:
    assert derived_event_id("evt-1", "retry") == derived_event_id("evt-1", "retry")


def test_a_derived_event_id_differs_by_purpose_and_by_source() -> None:
    derived = {
        derived_event_id("evt-1", "retry"),
        derived_event_id("evt-1", "finished"),
        derived_event_id("evt-2", "retry"),
    }

    assert len(derived) == 3


def test_a_derived_event_id_is_a_uuid_like_a_fresh_one() -> None:
    pattern = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

    assert re.fullmatch(pattern, derived_event_id("evt-1", "retry"))
    assert re.fullmatch(pattern, new_event_id())
    assert new_event_id() != new_event_id()
