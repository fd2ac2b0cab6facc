"""A GitHub REST client for the activity of one repository in a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from services.scanner.window import in_window
from shared.errors import PermanentError, TransientError
from shared.events import ActivityItem

USER_AGENT = "herald-scanner"
API_VERSION = "2022-11-28"


@dataclass
class GitHubClient:
    http: httpx.AsyncClient
    base_url: str
    token: str
    calls: int = 0

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def _pages(self, url: str, params: dict[str, Any] | None) -> Any:
        """Yield each page's JSON, following the `Link: rel="next"` URL verbatim."""
        next_url: str | None = url
        while next_url is not None:
            try:
                response = await self.http.get(next_url, params=params, headers=self._headers())
            except httpx.TimeoutException as exc:
                raise TransientError(f"GitHub timed out: {exc.__class__.__name__}") from exc
            except httpx.TransportError as exc:
                raise TransientError(f"GitHub unreachable: {exc}") from exc
            self.calls += 1
            params = None  # the next URL already carries them
            if response.status_code == 409:
                return  # an empty repository: no activity
            raise_for_github(response)
            yield response.json()
            next_url = response.links.get("next", {}).get("url")

    async def commits(
        self, owner: str, name: str, start: datetime | None, end: datetime
    ) -> list[ActivityItem]:
        params: dict[str, Any] = {"until": _iso(end), "per_page": 100}
        if start is not None:
            params["since"] = _iso(start)
        items = []
        async for page in self._pages(f"{self.base_url}/repos/{owner}/{name}/commits", params):
            for commit in page:
                detail = commit.get("commit", {})
                author = (commit.get("author") or {}).get("login") or (
                    detail.get("author") or {}
                ).get("name")
                date = (detail.get("committer") or detail.get("author") or {}).get("date")
                at = _parse(date)
                if at is not None and not in_window(at, start, end):
                    continue
                message = detail.get("message", "")
                items.append(
                    ActivityItem(
                        kind="commit",
                        title=message.splitlines()[0] if message else commit.get("sha", ""),
                        url=commit.get("html_url"),
                        author=author,
                        sha=commit.get("sha"),
                        at=at,
                    )
                )
        return items


def raise_for_github(response: httpx.Response) -> None:
    """Map an error response to a transient or permanent error (rate limits are transient)."""
    status = response.status_code
    if status < 400:
        return
    message = _message(response)
    retry_after = _retry_after(response)
    if status in (403, 429) and (
        response.headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in response.headers
        or "rate limit" in message.lower()
    ):
        raise TransientError(f"GitHub rate limit: {message}", retry_after=retry_after)
    if status == 429 or status >= 500:
        raise TransientError(f"GitHub {status}: {message}", retry_after=retry_after)
    raise PermanentError(f"GitHub {status}: {message}")


def _retry_after(response: httpx.Response) -> float | None:
    if "retry-after" in response.headers:
        try:
            return float(response.headers["retry-after"])
        except ValueError:
            return None
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            reset = float(response.headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return 60.0
        return max(1.0, reset - datetime.now(UTC).timestamp())
    if response.status_code in (403, 429):
        return 60.0
    return None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message", "")) if isinstance(body, dict) else ""


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
