"""GitHub App authentication for the local GitHub server, as PROTOCOLS.md §6 describes it.

The App JWT is checked against the App's public key: a wrong key or a malformed token, an
`exp` over ten minutes ahead, an `iat` in the future and an `exp` already past each answer
the 401 message GitHub answers them with. `POST /app/installations/{id}/access_tokens` mints
a `ghs_` token that expires (one hour by default; `token_lifetime` shortens it), 403 for a
suspended installation, 404 for a removed one; `GET /repos/{owner}/{repo}/installation`
finds the installation that holds a repository. Each installation has a rate budget of its
own, and its tokens read only its repositories.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt

BAD_JWT = "A JSON web token could not be decoded"
EXP_TOO_FAR = "'Expiration time' claim ('exp') is too far in the future"
IAT_FUTURE = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion "
    "was issued"
)
EXP_PAST = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at "
    "which the assertion expires"
)
SUSPENDED = "This installation has been suspended"
TOKENS_DOCS = (
    "https://docs.github.com/rest/reference/apps#create-an-installation-access-token-for-an-app"
)
MAX_JWT_SECONDS = 600


@dataclass
class RateBudget:
    """One credential's hourly budget, as GitHub's `x-ratelimit-*` headers report it."""

    limit: int = 5000
    remaining: int = 5000
    reset: int = field(default_factory=lambda: int(time.time()) + 3600)


@dataclass
class Installation:
    id: int
    account: str
    repository_ids: set[int]
    budget: RateBudget
    suspended: bool = False


@dataclass(frozen=True)
class IssuedToken:
    token: str
    installation_id: int
    expires_at: float


class FakeApp:
    """One GitHub App: its public key, installations and the tokens minted for them."""

    def __init__(
        self,
        app_id: str,
        public_key_pem: bytes,
        *,
        token_lifetime: float = 3600.0,
        long_tokens: bool = False,
    ) -> None:
        self.app_id = app_id
        self.public_key_pem = public_key_pem
        self.token_lifetime = token_lifetime
        # GitHub's stateless `ghs_APPID_JWT` tokens, about 520 characters.
        self.long_tokens = long_tokens
        self.installations: dict[int, Installation] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.minted: list[int] = []  # the installation of every token minted, in order
        self.jwts: list[dict[str, Any]] = []  # the claims of every JWT accepted

    def install(self, account: str, repository_ids: set[int], *, limit: int = 5000) -> Installation:
        installation = Installation(
            id=40_000 + len(self.installations) + 1,
            account=account,
            repository_ids=set(repository_ids),
            budget=RateBudget(limit=limit, remaining=limit),
        )
        self.installations[installation.id] = installation
        return installation

    def expire_tokens(self) -> None:
        """Every token minted so far expires now (GitHub answers them 401 from here on)."""
        past = time.time() - 1
        self.tokens = {
            token: IssuedToken(token, issued.installation_id, past)
            for token, issued in self.tokens.items()
        }

    def uninstall(self, installation_id: int) -> None:
        """Remove an installation: its id answers 404, its tokens stop working."""
        self.installations.pop(installation_id, None)

    def jwt_problem(self, authorization: str | None, *, now: float | None = None) -> str | None:
        """GitHub's 401 message for the request's App JWT, or None when it is accepted."""
        now = time.time() if now is None else now
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return BAD_JWT
        try:
            claims = jwt.decode(
                token,
                self.public_key_pem,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError:
            return BAD_JWT
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or iat > now:
            return IAT_FUTURE
        if not isinstance(exp, int | float) or exp <= now:
            return EXP_PAST
        if exp > now + MAX_JWT_SECONDS or exp - iat > MAX_JWT_SECONDS:
            return EXP_TOO_FAR
        if claims.get("iss") != self.app_id:  # a string, never a number
            return BAD_JWT
        self.jwts.append(claims)
        return None

    def mint(self, installation_id: int) -> tuple[int, dict[str, Any]]:
        """`POST /app/installations/{id}/access_tokens`: a status and its JSON body."""
        installation = self.installations.get(installation_id)
        if installation is None:
            return 404, {"message": "Not Found", "documentation_url": TOKENS_DOCS}
        if installation.suspended:
            return 403, {"message": SUSPENDED, "documentation_url": TOKENS_DOCS, "status": "403"}
        if self.long_tokens:
            token = f"ghs_{self.app_id}_{secrets.token_urlsafe(380)}"
        else:
            token = "ghs_" + secrets.token_hex(18)
        expires_at = time.time() + self.token_lifetime
        self.tokens[token] = IssuedToken(token, installation_id, expires_at)
        self.minted.append(installation_id)
        return 201, {
            "token": token,
            "expires_at": datetime.fromtimestamp(int(expires_at), UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "permissions": {"contents": "read", "issues": "read", "pull_requests": "read"},
            "repository_selection": "selected",
        }

    def installation_of_token(self, token: str) -> Installation | bool | None:
        """The installation a token reads as; False when it is not one of this App's."""
        issued = self.tokens.get(token)
        if issued is None:
            return False
        installation = self.installations.get(issued.installation_id)
        if installation is None or time.time() >= issued.expires_at:
            return None  # removed or expired: GitHub answers "Bad credentials"
        return installation

    def installation_for(self, repository_id: int) -> Installation | None:
        return next(
            (i for i in self.installations.values() if repository_id in i.repository_ids), None
        )

    def installation_object(self, installation: Installation) -> dict[str, Any]:
        return {
            "id": installation.id,
            "account": {"login": installation.account, "type": "Organization"},
            "app_id": int(self.app_id) if self.app_id.isdigit() else 1,
            "app_slug": "herald",
            "target_type": "Organization",
            "repository_selection": "selected",
            "access_tokens_url": f"/app/installations/{installation.id}/access_tokens",
            "permissions": {"contents": "read", "issues": "read", "pull_requests": "read"},
            "suspended_at": "2025-01-01T00:00:00Z" if installation.suspended else None,
        }
