"""How each network measures a post, its link facets, and the keys that make a retry safe."""

from __future__ import annotations

import pytest

from services.publisher.networks.budget import bluesky_rate_limit, mastodon_rate_limit
from services.publisher.networks.keys import TID_PATTERN, encode_tid, idempotency_key, record_key
from services.publisher.networks.text import (
    PostTooLongError,
    check_bluesky,
    check_mastodon,
    link_facets,
)
from shared.ids import new_id
from shared.post_length import clusters, find_links, graphemes, mastodon_characters

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # man, woman, girl, boy
RAINBOW_FLAG = "\U0001f3f3\ufe0f\u200d\U0001f308"
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("herald", 6),
        ("e\u0301", 1),  # e + combining acute
        ("a\u0308\u0323", 1),  # two combining marks on one letter
        (FAMILY, 1),  # a ZWJ sequence is one
        (RAINBOW_FLAG, 1),
        ("\U0001f44d\U0001f3fd", 1),  # skin tone modifier
        ("\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea", 2),  # two flags, four regional indicators
        ("\U0001f1eb\U0001f1f7\U0001f1e9", 2),  # a lone indicator stands alone
        (SCOTLAND, 1),  # tag sequence
        ("日本語のテキスト", 8),  # CJK: one per character
        ("\u1100\u1161\u11a8", 1),  # conjoining jamo make one syllable
        ("한국어", 3),
        ("a\r\nb", 3),  # CR LF is one
        ("\u0915\u093f", 1),  # Devanagari KA + vowel sign I (a spacing mark)
        ("\u0600\u0661", 1),  # Arabic number sign prepends
        ("\u0e01\u0e33", 1),  # Thai SARA AM joins
        ("\u200d\U0001f308", 2),  # a ZWJ with no pictograph before it joins nothing after
    ],
)
def test_grapheme_clusters_follow_uax29(text: str, count: int) -> None:
    assert graphemes(text) == count
    assert "".join(clusters(text)) == text


def test_mastodon_counts_every_url_as_the_reserved_length() -> None:
    long_url = "https://example.com/" + "a" * 200
    assert mastodon_characters(f"see {long_url}") == 4 + 23
    assert mastodon_characters("see https://x.io", per_url=30) == 4 + 30
    # A URL without a scheme is text, counted as it is.
    assert mastodon_characters("see example.com/abc") == len("see example.com/abc")


def test_mastodon_counts_a_remote_mention_as_its_local_part() -> None:
    assert mastodon_characters("hi @ada@mastodon.social") == len("hi @ada")
    assert mastodon_characters("hi @ada") == len("hi @ada")
    assert mastodon_characters("mail ada@example.com") == len("mail ada@example.com")


def test_mastodon_counts_the_content_warning_and_graphemes() -> None:
    assert mastodon_characters(f"{FAMILY} ok", spoiler_text="cw") == 2 + 4
    assert mastodon_characters("日本語 https://例え.jp/パス") == 4 + 23


def test_a_trailing_full_stop_is_not_part_of_a_link() -> None:
    links = find_links("Read https://example.com/notes. And (https://example.com/a_(b)).")
    assert [link.url for link in links] == [
        "https://example.com/notes",
        "https://example.com/a_(b)",
    ]


def test_an_over_length_status_names_the_instances_limit() -> None:
    with pytest.raises(PostTooLongError) as refused:
        check_mastodon(
            "x" * 501, max_characters=500, reserved_per_url=23, instance="https://m.example"
        )
    assert refused.value.message.startswith("501 characters, over the 500 of the Mastodon")
    assert "https://m.example" in refused.value.message
    check_mastodon("x" * 500, max_characters=500, reserved_per_url=23, instance="https://m.test")


def test_bluesky_refuses_past_300_graphemes_naming_the_limit() -> None:
    check_bluesky("é" * 300)
    check_bluesky(FAMILY * 120)  # 120 graphemes of 25 bytes: 3,000 bytes
    with pytest.raises(PostTooLongError, match=r"^312 graphemes, over Bluesky's 300$"):
        check_bluesky("é" * 312)


def test_bluesky_refuses_past_3000_bytes_within_300_graphemes() -> None:
    with pytest.raises(PostTooLongError, match=r"^3025 bytes, over Bluesky's 3000$"):
        check_bluesky(FAMILY * 121)


def test_link_facets_count_utf8_bytes_before_the_link() -> None:
    text = f"{FAMILY} café → https://example.com/ünï and https://b.example"
    facets = link_facets(text)
    encoded = text.encode("utf-8")
    assert [facet["features"][0]["uri"] for facet in facets] == [
        "https://example.com/ünï",
        "https://b.example",
    ]
    for facet in facets:
        index = facet["index"]
        assert facet["features"][0]["$type"] == "app.bsky.richtext.facet#link"
        sliced = encoded[index["byteStart"] : index["byteEnd"]].decode("utf-8")
        assert sliced == facet["features"][0]["uri"]
    # 25 bytes of emoji, a space, "café" (5), " → " (5): the link starts at byte 36.
    assert facets[0]["index"] == {
        "byteStart": 36,
        "byteEnd": 36 + len("https://example.com/ünï".encode()),
    }
    assert link_facets("no links here") == []


def test_record_key_is_a_stable_tid_of_the_posts_time() -> None:
    post_id = new_id("cnt")
    key = record_key(post_id)
    assert TID_PATTERN.match(key)
    assert record_key(post_id) == key
    assert record_key(new_id("cnt")) != key
    # The TID's time is the id's: decoding it gives the id's millisecond.
    value = 0
    for char in key:
        value = value * 32 + "234567abcdefghijklmnopqrstuvwxyz".index(char)
    millis = 0
    for char in post_id.split("_")[1][:10]:
        millis = millis * 32 + "0123456789abcdefghjkmnpqrstvwxyz".index(char)
    assert (value >> 10) // 1000 == millis


def test_tids_sort_as_their_times() -> None:
    assert encode_tid(0, 0) == "2222222222222"
    keys = [encode_tid(micros, 5) for micros in (1, 2**20, 2**40, 2**52)]
    assert keys == sorted(keys)
    with pytest.raises(ValueError, match="53 bits"):
        encode_tid(2**53, 0)


def test_record_key_refuses_an_id_that_is_not_herald_s() -> None:
    with pytest.raises(ValueError, match="not a herald post id"):
        record_key("12345")


def test_the_idempotency_key_is_the_posts() -> None:
    assert idempotency_key("cnt_1") == idempotency_key("cnt_1") != idempotency_key("cnt_2")


def test_rate_limit_headers_of_each_network() -> None:
    now = 1_700_000_000.0
    mastodon = mastodon_rate_limit(
        {
            "x-ratelimit-limit": "300",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": "2023-11-14T22:23:20.000000Z",
        },
        now=now,
    )
    assert (mastodon.limit, mastodon.remaining, mastodon.reset_in) == (300, 0, 600.0)
    bluesky = bluesky_rate_limit(
        {"ratelimit-limit": "5000", "ratelimit-remaining": "12", "ratelimit-reset": str(now + 90)},
        now=now,
    )
    assert (bluesky.limit, bluesky.remaining, bluesky.reset_in) == (5000, 12, 90.0)
    unreadable = mastodon_rate_limit({"x-ratelimit-reset": "soon"}, now=now)
    assert (unreadable.remaining, unreadable.reset_in) == (None, None)
