"""GitHub's webhook signature, against the test vector GitHub's documentation gives."""

from __future__ import annotations

from shared.signatures import new_webhook_secret, signature_matches, signature_of

SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
EXPECTED = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_the_documented_vector_signs_and_verifies() -> None:
    assert signature_of(SECRET, BODY) == EXPECTED
    assert signature_matches(SECRET, BODY, EXPECTED)


def test_a_changed_body_secret_or_header_does_not_verify() -> None:
    assert not signature_matches(SECRET, BODY + b" ", EXPECTED)
    assert not signature_matches("another secret", BODY, EXPECTED)
    assert not signature_matches(SECRET, BODY, EXPECTED.replace("sha256=", "sha1="))
    assert not signature_matches(SECRET, BODY, EXPECTED[:-1])
    assert not signature_matches(SECRET, BODY, None)
    assert not signature_matches(SECRET, BODY, "")
    # A non-ASCII header must not raise (compare_digest refuses non-ASCII str).
    assert not signature_matches(SECRET, BODY, "sha256=é")


def test_secrets_are_long_and_fresh() -> None:
    first, second = new_webhook_secret(), new_webhook_secret()
    assert first != second
    assert len(first) >= 43
