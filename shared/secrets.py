"""Per-project secrets (webhook URLs, GitHub tokens) encrypted at rest and on the wire.

They are encrypted with HERALD_SECRET_KEY.

The key is a Fernet key (`generate_key()` makes one). A comma-separated list rotates keys:
the first encrypts, every one of them decrypts, so old values stay readable until re-saved.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.errors import ConfigurationError


class SecretKeyError(ConfigurationError):
    """HERALD_SECRET_KEY is missing, malformed, or cannot decrypt this value."""


def generate_key() -> str:
    """Return a new random key suitable for HERALD_SECRET_KEY."""
    return Fernet.generate_key().decode()


def _fernet(key: str) -> MultiFernet:
    parts = [part.strip() for part in key.split(",") if part.strip()]
    if not parts:
        raise SecretKeyError(
            "HERALD_SECRET_KEY is not set: it is needed to encrypt and decrypt project secrets "
            "(webhook URLs, GitHub tokens)"
        )
    fernets = []
    for n, part in enumerate(parts, start=1):
        try:
            fernets.append(Fernet(part.encode()))
        except ValueError:
            raise SecretKeyError(
                f"HERALD_SECRET_KEY (key {n}) is not a Fernet key: "
                "32 url-safe base64-encoded bytes, as `generate_key()` makes"
            ) from None
    return MultiFernet(fernets)


def encrypt(value: str, key: str) -> str:
    """Encrypt `value` with the first key of `key`; return a URL-safe token."""
    return _fernet(key).encrypt(value.encode()).decode()


def decrypt(token: str, key: str) -> str:
    """Decrypt a token made by `encrypt`, or raise SecretKeyError (never echoing the token)."""
    fernet = _fernet(key)
    try:
        return fernet.decrypt(token.encode()).decode()
    except (InvalidToken, UnicodeError):
        raise SecretKeyError(
            "cannot decrypt a stored secret: HERALD_SECRET_KEY differs from the key it was "
            "encrypted with, or the value is not an encrypted secret"
        ) from None
