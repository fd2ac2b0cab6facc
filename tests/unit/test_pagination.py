"""Keyset pagination cursors: round trips, rejection of foreign cursors, and the last page."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.api.pagination import decode_cursor, encode_cursor, split
from services.api.problems import Problem

AT = datetime(2025, 6, 1, 12, 30, 45, 123_456, tzinfo=UTC)

instants = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)
# Rows are named by the ids `new_id` makes: a prefix, "_", base32.
row_ids = st.from_regex(r"[a-z]{1,12}_[0-9a-z]{1,40}", fullmatch=True)


def test_a_cursor_round_trips_its_instant_and_row_id() -> None:
    assert decode_cursor(encode_cursor(AT, "exe_01j9")) == (AT, "exe_01j9")


@settings(max_examples=150, deadline=None)
@given(created=instants, row_id=row_ids)
def test_any_cursor_round_trips_exactly(created: datetime, row_id: str) -> None:
    at, decoded_id = decode_cursor(encode_cursor(created, row_id))

    assert decoded_id == row_id
    assert at == created  # the same instant, given back in UTC
    assert at.utcoffset() == timedelta(0)


def test_a_cursor_is_url_safe() -> None:
    cursor = encode_cursor(AT, "id?with/odd+chars>>>")

    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor",
        "abcd",
        "%%%%",
        "é",
        base64.urlsafe_b64encode(b"yesterday|exe_1").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
        base64.urlsafe_b64encode(b"2020-01-01T00:00:00|cron_x").decode(),  # naive
        base64.urlsafe_b64encode(b"0001-01-01T00:00:00+14:00|x").decode(),  # before year 1
        base64.urlsafe_b64encode(b"9999-12-31T23:59:59-14:00|x").decode(),  # after 9999
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|cron_\x00").decode(),  # NUL
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|' OR 1=1").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00").decode(),  # no separator
    ],
)
def test_a_garbage_cursor_is_a_422_problem_naming_the_cursor(cursor: str) -> None:
    with pytest.raises(Problem) as caught:
        decode_cursor(cursor)

    assert caught.value.status == 422
    assert caught.value.errors == [{"field": "cursor", "message": "not a cursor this API issued"}]
    assert caught.value.detail.startswith("cursor:")


def decode_or_problem(cursor: str) -> tuple[datetime, str] | Problem:
    try:
        return decode_cursor(cursor)
    except Problem as problem:
        return problem


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_decoding_arbitrary_text_either_succeeds_or_raises_the_422_problem(cursor: str) -> None:
    outcome = decode_or_problem(cursor)

    if isinstance(outcome, Problem):
        assert outcome.status == 422
        assert outcome.errors == [{"field": "cursor", "message": "not a cursor this API issued"}]
    else:
        at, row_id = outcome
        assert isinstance(at, datetime)
        assert isinstance(row_id, str)


def key(row: tuple[datetime, str]) -> tuple[datetime, str]:
    return row


ROWS = [(AT - timedelta(minutes=n), f"row_{n:02d}") for n in range(5)]


@pytest.mark.parametrize("count", [0, 1, 3])
def test_split_gives_no_cursor_on_the_last_page(count: int) -> None:
    rows, cursor = split(ROWS[:count], 3, key)

    assert rows == ROWS[:count]
    assert cursor is None


def test_split_drops_the_extra_row_and_points_the_cursor_at_the_last_kept_row() -> None:
    rows, cursor = split(ROWS[:4], 3, key)

    assert rows == ROWS[:3]
    assert cursor is not None
    assert decode_cursor(cursor) == ROWS[2]
