"""Per-project secrets: encrypted with HERALD_SECRET_KEY, readable only with it."""

from __future__ import annotations

import pytest

from shared.errors import ConfigurationError
from shared.secrets import SecretKeyError, decrypt, encrypt, generate_key

URL = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"


def test_a_secret_round_trips_and_never_shows_in_its_token() -> None:
    key = generate_key()

    token = encrypt(URL, key)

    assert URL not in token
    assert "hooks.slack.com" not in token
    assert decrypt(token, key) == URL


def test_two_encryptions_of_one_value_differ() -> None:
    key = generate_key()

    assert encrypt(URL, key) != encrypt(URL, key)


def test_a_wrong_key_is_a_clear_configuration_error_without_the_value() -> None:
    token = encrypt(URL, generate_key())

    with pytest.raises(SecretKeyError, match="HERALD_SECRET_KEY differs") as caught:
        decrypt(token, generate_key())

    assert isinstance(caught.value, ConfigurationError)
    assert token not in str(caught.value)


@pytest.mark.parametrize("key", ["", "  ", ","])
def test_a_missing_key_says_so(key: str) -> None:
    with pytest.raises(SecretKeyError, match="not set"):
        encrypt(URL, key)
    with pytest.raises(SecretKeyError, match="not set"):
        decrypt("whatever", key)


def test_a_malformed_key_says_what_a_key_is() -> None:
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        encrypt(URL, "correct horse battery staple")


def test_a_value_that_is_not_a_token_cannot_be_decrypted() -> None:
    with pytest.raises(SecretKeyError, match="not an encrypted secret"):
        decrypt(URL, generate_key())


def test_rotation_encrypts_with_the_first_key_and_decrypts_with_any() -> None:
    old, new = generate_key(), generate_key()
    old_token = encrypt(URL, old)

    rotated = f"{new},{old}"

    assert decrypt(old_token, rotated) == URL
    assert decrypt(encrypt(URL, rotated), new) == URL
