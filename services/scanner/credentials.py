"""Which GitHub credential a scan reads with, and herald's GitHub App's installation tokens.

A project on the server's GitHub is read, first that applies, through herald's GitHub App
(the installation the project names, which the api accepts only when an operator granted it
to the project's owner), with the project's own token, or with the server's token. The App's
installation is never looked up for a project that names none: GitHub would answer whoever
installed the App on the repository, who need not be the project's owner. A project on an
Enterprise server brings its own token or is read anonymously: no server credential ever
leaves the server's GitHub, and a project's own token goes only to the base URL the project
names (its origin checked against the operator's list, every page and redirect kept on it).

The App signs a short JWT (RS256, `iat` a minute back for clock drift, `exp` nine minutes
ahead, `iss` the app ID as a string) to mint installation tokens. Tokens are minted on
demand, kept in this process until five minutes before their `expires_at` (one mint at a
time per installation), and never logged, stored or put in an event. Each credential is
named by a key that holds no secret (`github:installation:{id}`, or a token's SHA-256
prefix): its rate budget and its cached pages go by that key. An installation's pages are
thus shared only by projects whose owners were granted it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx
import jwt

from services.scanner.budget import credential_key
from services.scanner.github import (
    API_VERSION,
    USER_AGENT,
    follow_on_origin,
    github_message,
    raise_for_github,
    transport_error,
)
from shared.errors import ConfigurationError, PermanentError, TransientError

Kind = Literal["app", "token", "global", "none"]

JWT_BACKDATE = 60  # seconds: GitHub's advice against clock drift
JWT_LIFETIME = 540  # seconds after now: under GitHub's ten-minute ceiling, with room
RENEW_BEFORE = 300.0  # an installation token is minted again this long before it expires


@dataclass(frozen=True)
class Credential:
    """A token to send, what kind it is, and the secret-free key of its budget."""

    kind: Kind
    token: str
    key: str
    # Mints a fresh token when GitHub answers 401 to this one (installation tokens only).
    renew: Callable[[], Awaitable[str]] | None = None


def token_credential(kind: Kind, token: str) -> Credential:
    return Credential(kind, token, credential_key(token))


def app_jwt(app_id: str, private_key: str, *, now: float) -> str:
    """The App's JWT: RS256, issued a minute back, expiring nine minutes ahead."""
    claims = {"iat": int(now) - JWT_BACKDATE, "exp": int(now) + JWT_LIFETIME, "iss": app_id}
    return jwt.encode(claims, private_key, algorithm="RS256")


def pem(value: str) -> str:
    """A PEM key as an environment variable may carry it (`\\n` written out) made whole."""
    text = value.strip()
    if "\\n" in text and "\n" not in text:
        text = text.replace("\\n", "\n")
    return text


class InstallationGoneError(PermanentError):
    """The GitHub App installation was removed (or never existed)."""


def suspended_error(installation_id: int, message: str) -> PermanentError:
    """A suspended installation: nothing to retry until its owner unsuspends it."""
    return PermanentError(
        f"GitHub App installation {installation_id} is suspended ({message}): the "
        "account's owner can unsuspend it in GitHub (Settings, GitHub Apps, "
        "Configure), or the project can drop githubInstallationId and read with a "
        "token of its own"
    )


def gone_error(installation_id: int, what: str) -> InstallationGoneError:
    """A removed installation: it never comes back (a new one has a new id)."""
    return InstallationGoneError(
        f"GitHub App installation {installation_id} {what}. Install herald's GitHub App on "
        "the repository again and set the project's githubInstallationId to the new "
        "installation (granted to its owner with `herald installations grant`), or "
        "clear it to read with a token"
    )


class GitHubApp:
    """herald's GitHub App on the server's GitHub: JWTs, installations, their tokens."""

    def __init__(
        self,
        *,
        app_id: str,
        private_key: str,
        api_url: str,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._app_id = app_id
        self._private_key = pem(private_key)
        self.api_url = api_url.rstrip("/")
        self._http = http
        self._clock = clock
        self._tokens: dict[int, tuple[str, float]] = {}
        self._minting: dict[int, asyncio.Lock] = {}
        self.mints = 0

    async def credential(self, installation_id: int) -> Credential:
        """The installation's token (minted if need be), renewable once on a 401."""
        token = await self.installation_token(installation_id)

        async def renew() -> str:
            return await self.installation_token(installation_id, fresh=True)

        return Credential("app", token, f"github:installation:{installation_id}", renew)

    async def installation_token(self, installation_id: int, *, fresh: bool = False) -> str:
        """A token of the installation valid for five minutes more at least."""
        lock = self._minting.setdefault(installation_id, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(installation_id)
            if not fresh and cached is not None and cached[1] - RENEW_BEFORE > self._clock():
                return cached[0]
            token, expires_at = await self._mint(installation_id)
            self._tokens[installation_id] = (token, expires_at)
            return token

    async def _mint(self, installation_id: int) -> tuple[str, float]:
        path = f"/app/installations/{installation_id}/access_tokens"
        response = await self._request("POST", path)
        if response.status_code == 201:
            self.mints += 1
            try:
                body = response.json()
                expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
                token = body["token"]
            except (ValueError, KeyError, TypeError, AttributeError):
                token = None
            if not isinstance(token, str) or not token:
                raise TransientError("GitHub answered an installation token it did not name")
            return token, expires_at.timestamp()
        message = github_message(response)
        if response.status_code == 403 and "suspended" in message.lower():
            raise suspended_error(installation_id, message)
        if response.status_code == 404:
            self._tokens.pop(installation_id, None)
            raise gone_error(
                installation_id, "was not found: it was removed from the account, or never existed"
            )
        _raise_for_app(response, message)
        raise PermanentError(f"GitHub {response.status_code} minting a token: {message}")

    async def _request(self, method: str, path: str) -> httpx.Response:
        """A request with the App's JWT to the server's GitHub, redirects kept on its origin."""

        async def send(url: httpx.URL) -> httpx.Response:
            signed = app_jwt(self._app_id, self._private_key, now=self._clock())
            headers = {
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": USER_AGENT,
                "Authorization": f"Bearer {signed}",
            }
            try:
                return await self._http.request(method, url, headers=headers)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise transport_error(exc) from exc

        return await follow_on_origin(send, httpx.URL(f"{self.api_url}{path}"), origin=self.api_url)


def _raise_for_app(response: httpx.Response, message: str) -> None:
    """The App's JWT refused (401): a configuration error; else GitHub's usual mapping."""
    if response.status_code == 401:
        raise ConfigurationError(
            f"GitHub refused herald's GitHub App credentials ({message}): check "
            "HERALD_GITHUB_APP_ID, HERALD_GITHUB_APP_PRIVATE_KEY and this server's clock"
        )
    raise_for_github(response)
