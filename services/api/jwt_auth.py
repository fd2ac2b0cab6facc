"""JWT bearer tokens verified against a JWKS URL, for deployments behind a gateway.

The key set is fetched with httpx and cached; an unknown `kid` refreshes it at most once per
`REFRESH_MIN_SECONDS`, so a flood of forged tokens cannot hammer the identity provider.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog

log = structlog.get_logger(__name__)

REFRESH_MIN_SECONDS = 30.0
CACHE_SECONDS = 600.0


class InvalidJwt(Exception):  # noqa: N818 - reads as what it is
    """The token is not a valid JWT for this deployment."""


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str | None
    name: str | None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class JwksVerifier:
    """Verify JWTs by signature (keys from a JWKS URL), expiry, audience and issuer."""

    def __init__(
        self,
        jwks_url: str,
        *,
        audience: str = "",
        issuer: str = "",
        algorithms: list[str] | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = jwks_url
        self._audience = audience or None
        self._issuer = issuer or None
        self._algorithms = algorithms or ["RS256", "ES256"]
        self._client = client or httpx.AsyncClient(timeout=5.0)
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._client.aclose()

    async def _refresh(self, *, force: bool) -> None:
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if (force and age < REFRESH_MIN_SECONDS) or (not force and age < CACHE_SECONDS):
                return
            try:
                response = await self._client.get(self._url)
                response.raise_for_status()
                key_set = jwt.PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
                log.warning("JWKS fetch failed", error=str(exc))
                self._fetched_at = time.monotonic()
                return
            self._keys = {key.key_id or "": key for key in key_set.keys}
            self._fetched_at = time.monotonic()

    async def _key_for(self, kid: str) -> Any:
        await self._refresh(force=False)
        if kid not in self._keys:
            await self._refresh(force=True)
        if kid not in self._keys:
            raise InvalidJwt("unknown signing key")
        return self._keys[kid]

    async def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidJwt(str(exc)) from None
        key = await self._key_for(str(header.get("kid") or ""))
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._audience is not None,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidJwt(str(exc)) from None
        subject = str(claims["sub"])
        if not subject or len(subject) > 255:
            raise InvalidJwt("sub claim out of range")
        email = claims.get("email")
        name = claims.get("name")
        return Identity(
            subject=subject,
            email=email if isinstance(email, str) else None,
            name=name if isinstance(name, str) else None,
        )
