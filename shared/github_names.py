"""What GitHub accepts as an account (owner) and a repository name, checked before any request."""

from __future__ import annotations

import re

# An account: a letter or digit, then letters, digits and hyphens, at most 39 characters
# (GitHub now asks for single inner hyphens; some older accounts have others).
OWNER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$"
# A repository: letters, digits, '.', '_' and '-', at most 100, and never '.' or '..'.
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,100}$"
_OWNER = re.compile(OWNER_PATTERN)
_NAME = re.compile(NAME_PATTERN)


def owner_refusal(owner: str) -> str | None:
    if _OWNER.match(owner):
        return None
    return "must be a GitHub account: a letter or digit, then letters, digits or '-', at most 39"


def name_refusal(name: str) -> str | None:
    if _NAME.match(name) and name not in (".", ".."):
        return None
    return "must be a GitHub repository name: letters, digits, '.', '_' and '-', not '.' or '..'"
