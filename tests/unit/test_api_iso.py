"""How the REST API renders instants: UTC, a trailing `Z`, milliseconds only when present."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.api.views import iso


def test_none_renders_as_none() -> None:
    assert iso(None) is None


def test_a_whole_second_has_no_fraction() -> None:
    assert iso(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2025-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("microsecond", "fraction"), [(1_000, ".001"), (123_456, ".123"), (999_999, ".999")]
)
def test_a_fraction_renders_as_truncated_milliseconds(microsecond: int, fraction: str) -> None:
    value = datetime(2025, 1, 2, 3, 4, 5, microsecond, tzinfo=UTC)

    assert iso(value) == f"2025-01-02T03:04:05{fraction}Z"


@settings(max_examples=150, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 1), timezones=st.just(UTC)))
def test_a_utc_instant_parses_back_to_itself_at_millisecond_precision(value: datetime) -> None:
    text = iso(value)

    assert text is not None
    assert text.endswith("Z")
    parsed = datetime.fromisoformat(text.removesuffix("Z") + "+00:00")
    assert parsed == value.replace(microsecond=value.microsecond // 1000 * 1000)


def test_an_aware_non_utc_instant_is_converted_to_utc() -> None:
    paris_summer = timezone(timedelta(hours=2))

    assert iso(datetime(2025, 7, 1, 14, 0, tzinfo=paris_summer)) == "2025-07-01T12:00:00Z"
