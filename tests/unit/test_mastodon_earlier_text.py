"""The text an earlier status is recognised by: the post as typed against Mastodon's HTML."""

from __future__ import annotations

import pytest

from services.publisher.networks.mastodon import _comparable, _plain


def card(username: str, domain: str = "example.social") -> str:
    """A resolved mention as Mastodon renders it: the username alone, in the account's case."""
    return (
        f'<span class="h-card" translate="no"><a href="https://{domain}/@{username}" '
        f'class="u-url mention">@<span>{username}</span></a></span>'
    )


def same(post: str, content: str) -> bool:
    return _comparable(post) == _comparable(_plain(content))


@pytest.mark.parametrize(
    ("post", "content"),
    [
        # Resolved: shown as the username.
        ("thanks @ada@other.example", f"<p>thanks {card('ada')}</p>"),
        # Unresolved: kept in full as plain text.
        ("thanks @ada@other.example", "<p>thanks @ada@other.example</p>"),
        # Two accounts share the username: both kept in full.
        (
            "@ada@one.example and @ada@two.example",
            f"<p>{card('ada@one.example')} and {card('ada@two.example')}</p>",
        ),
        # The account's canonical case differs from the typed one.
        ("hello @Alice@x.example", f"<p>hello {card('alice')}</p>"),
        ("hello @ALICE", f"<p>hello {card('alice')}</p>"),
        # Usernames of Misskey, Pleroma and Akkoma hold dots and dashes.
        ("hi @jane.doe@misskey.example", f"<p>hi {card('jane.doe')}</p>"),
        ("hi @jane-doe@akkoma.example", "<p>hi @jane-doe@akkoma.example</p>"),
        # A sentence's full stop is not part of the mention.
        ("thanks to @ada@other.example.", f"<p>thanks to {card('ada')}.</p>"),
        ("thanks to @ada@other.example.", "<p>thanks to @ada@other.example.</p>"),
        ("thanks to @Jane.Doe@misskey.example.", f"<p>thanks to {card('jane.doe')}.</p>"),
    ],
)
def test_a_status_with_the_post_s_mentions_matches(post: str, content: str) -> None:
    assert same(post, content)


@pytest.mark.parametrize(
    ("post", "content"),
    [
        ("thanks @ada@other.example", f"<p>thanks {card('bob')}</p>"),
        ("thanks @ada@other.example", "<p>thanks @bob@other.example</p>"),
        ("hi @jane.doe@misskey.example", f"<p>hi {card('jane')}</p>"),
        ("hi @jane@misskey.example", "<p>hi @jane.doe@misskey.example</p>"),
        # Only mentions are compared without case: the rest of the text keeps it.
        ("Herald is out @ada@other.example", f"<p>herald is out {card('ada')}</p>"),
    ],
)
def test_a_status_with_other_mentions_or_words_does_not_match(post: str, content: str) -> None:
    assert not same(post, content)


def test_an_address_or_a_link_is_not_taken_for_a_mention() -> None:
    assert _comparable("mail Ada@Example.org") == "mail Ada@Example.org"
    assert _comparable("see https://x.example/@Ada/1") == "see https://x.example/@Ada/1"
