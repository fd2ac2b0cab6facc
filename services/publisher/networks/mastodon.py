"""Mastodon: a status through `POST /api/v1/statuses`, once, within the instance's limit.

The instance's limits come from `GET /api/v2/instance` (`configuration.statuses`:
`max_characters`, `characters_reserved_per_url`), cached per instance for an hour; an instance
older than 4.0 answers them at `/api/v1/instance`, and one that says nothing keeps Mastodon's
defaults (500, 23). A status is sent with the account's bearer token (scope `write:statuses`)
and an `Idempotency-Key` derived from the post's id: Mastodon remembers it for an hour per
account and answers a repeat with the status the first request made, so a retry after a
crash publishes once. Refusals map to herald's errors: 401/403 (the token) and 422 (the
status) are permanent, 429 pauses the account for every replica until its reset (a 429 of
the instance's public endpoint pauses reading it), 5xx and silence are transient.

Mastodon keeps the key for an hour only. A post whose earlier attempt's outcome is unknown
and began longer ago than `IDEMPOTENCY_SAFE_AGE` is first looked for on the account
(`find_earlier`: `verify_credentials`, then the account's statuses newest first, 40 a page,
paging back with `max_id` until one older than the attempt, matching the exact text or the
text that attempt sent when the post was edited since, each mention compared by its username
in any case as Mastodon may show it cut short or whole). When that cannot be told (a token
without a read scope, more than `LOOKUP_PAGES` pages made since), the post fails for good with
a reason asking the owner to check the account (`EarlierStatusUnknownError`); an instance that
does not answer the lookup now (a timeout, a 5xx) is asked again on the next attempt
(`EarlierStatusUnreachableError`, transient).

The instance URL is the tenant's: requests go through the caller's `shared.outbound`
guarded client and never follow a redirect.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from services.publisher.networks.budget import AccountBudget, fingerprint, mastodon_rate_limit
from services.publisher.networks.keys import idempotency_key
from services.publisher.networks.published import (
    CredentialsRejectedError,
    NetworkRefusedError,
    Published,
    base_origin,
    excerpt,
    json_body,
    unreachable,
)
from services.publisher.networks.text import PostTooLongError, check_mastodon
from shared.errors import PermanentError, TransientError
from shared.events import MASTODON_MAX_CHARACTERS, MASTODON_RESERVED_PER_URL, clamped
from shared.metrics import NETWORK_REQUESTS
from shared.retry import wait_from_header

NETWORK = "Mastodon"
DEFAULT_MAX_CHARACTERS = 500
DEFAULT_RESERVED_PER_URL = 23
LIMITS_TTL = 3600.0
USER_AGENT = "herald-publisher (+https://github.com/herald)"
VISIBILITIES = frozenset({"public", "unlisted", "private", "direct"})
# Mastodon remembers an Idempotency-Key for an hour. Past 50 minutes after an attempt whose
# outcome is unknown, a repeat may reach the instance after the key is gone (queue delays, a
# slow answer): look for the status first. The margin covers those delays and clock skew.
IDEMPOTENCY_SAFE_AGE = timedelta(minutes=50)
# The statuses `GET /api/v1/accounts/:id/statuses` answers at most.
LOOKUP_LIMIT = 40
# Pages read back (`max_id`) before herald gives the question to the owner: an unknown
# outcome can be days old, but an account this busy since is not one to read in full.
LOOKUP_PAGES = 10
# An earlier status created this long before the attempt still counts (clocks differ).
CLOCK_SKEW = timedelta(minutes=5)
UNDETERMINED = (
    "an earlier attempt may have published this post more than an hour ago (Mastodon forgets "
    "its Idempotency-Key by then) and herald could not look for it"
)
# Mastodon's own pattern: a username may hold `.` and `-` (Misskey, Pleroma, Akkoma) but
# neither ends it, so a sentence's full stop after a mention stays out of the mention.
_USERNAME = r"\w(?:[\w.-]*\w)?"
_MENTION = re.compile(rf"(?<![=/\w])@({_USERNAME})@[\w.-]+\w", re.IGNORECASE)
_HANDLE = re.compile(rf"(?<![=/\w])@{_USERNAME}")
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_PARAGRAPH = re.compile(r"</p>\s*<p[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


class EarlierStatusUnknownError(PermanentError):
    """Whether an earlier attempt published the post cannot be told: the reason hands the
    question to the owner, who checks the account before scheduling the post again."""


class EarlierStatusUnreachableError(TransientError):
    """The instance did not answer the lookup (a timeout, a 5xx): tried again later, and the
    post's unknown outcome is kept, whatever becomes of the chain."""


class LimitLoweredError(PostTooLongError):
    """The instance refused the status as too long within the limits herald had read: they
    are out of date (forgotten here, and to be forgotten by the api)."""


@dataclass(frozen=True)
class InstanceLimits:
    max_characters: int
    characters_reserved_per_url: int


class InstanceLimitsCache:
    """Each instance's limits for an hour, shared by every account on it in this process."""

    def __init__(self, *, ttl: float = LIMITS_TTL, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._limits: dict[str, tuple[float, InstanceLimits]] = {}

    def get(self, instance: str) -> InstanceLimits | None:
        entry = self._limits.get(instance)
        if entry is None or self._clock() - entry[0] >= self._ttl:
            return None
        return entry[1]

    def put(self, instance: str, limits: InstanceLimits) -> None:
        self._limits[instance] = (self._clock(), limits)

    def forget(self, instance: str) -> None:
        self._limits.pop(instance, None)


def _limits_from(body: dict[str, Any]) -> InstanceLimits | None:
    """The instance's limits, within herald's bounds: an instance may claim any number, and a
    limit read is reported after a publication, which must never fail for it."""
    statuses = (body.get("configuration") or {}).get("statuses")
    if not isinstance(statuses, dict):
        return None
    maximum = statuses.get("max_characters")
    reserved = statuses.get("characters_reserved_per_url", DEFAULT_RESERVED_PER_URL)
    if not isinstance(maximum, int) or isinstance(maximum, bool) or maximum <= 0:
        return None
    if not isinstance(reserved, int) or isinstance(reserved, bool):
        reserved = DEFAULT_RESERVED_PER_URL
    return InstanceLimits(
        clamped(maximum, MASTODON_MAX_CHARACTERS), clamped(reserved, MASTODON_RESERVED_PER_URL)
    )


class MastodonClient:
    """One account on one instance."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        instance_url: str,
        token: str,
        budget: AccountBudget,
        limits: InstanceLimitsCache | None = None,
        allow_http: bool = False,
    ) -> None:
        self.instance = base_origin(
            instance_url, what="the Mastodon instance", allow_http=allow_http
        )
        self._http = http
        self._token = token
        self._budget = budget
        self._limits = limits or InstanceLimitsCache()
        self.budget_key = f"mastodon:{self.instance}:{fingerprint(token)}"
        # The instance's public endpoints are limited per address, not per account: one pause
        # for every account herald reads the instance for.
        self.instance_budget_key = f"mastodon:{self.instance}"

    async def instance_limits(self) -> InstanceLimits:
        """The instance's status limits: cached, else asked of v2, then v1, else defaults."""
        known = self._limits.get(self.instance)
        if known is not None:
            return known
        limits: InstanceLimits | None = None
        for path in ("/api/v2/instance", "/api/v1/instance"):
            await self._budget.before_request(self.instance_budget_key, network=NETWORK)
            response = await self._send("GET", path, authorized=False)
            if response.status_code == 404:
                continue
            if response.status_code == 429:
                # A wait for the reset like a status's 429, not a spent try (nor a refusal).
                NETWORK_REQUESTS.labels("mastodon", "rate_limited").inc()
                seen = mastodon_rate_limit(response.headers, now=self._budget.now())
                raise await self._budget.limited(
                    self.instance_budget_key, seen, response.headers, network=NETWORK
                )
            if response.status_code != 200:
                # 5xx and 408/425 are transient there too; only a refusal is final.
                raise self._error(response)
            limits = _limits_from(json_body(response))
            break
        limits = limits or InstanceLimits(DEFAULT_MAX_CHARACTERS, DEFAULT_RESERVED_PER_URL)
        self._limits.put(self.instance, limits)
        return limits

    async def publish(
        self,
        *,
        post_id: str,
        text: str,
        language: str | None = None,
        visibility: str = "public",
        spoiler_text: str = "",
    ) -> Published:
        """Post the status once: a repeat with the same `post_id` answers the first status."""
        if visibility not in VISIBILITIES:
            raise PermanentError(f"visibility must be one of {', '.join(sorted(VISIBILITIES))}")
        limits = await self.instance_limits()
        check_mastodon(
            text,
            spoiler_text=spoiler_text,
            max_characters=limits.max_characters,
            reserved_per_url=limits.characters_reserved_per_url,
            instance=self.instance,
        )
        payload: dict[str, Any] = {"status": text, "visibility": visibility}
        if spoiler_text:
            payload["spoiler_text"] = spoiler_text
        if language:
            payload["language"] = language
        await self._budget.before_request(self.budget_key, network=NETWORK)
        response = await self._send(
            "POST",
            "/api/v1/statuses",
            json=payload,
            headers={"Idempotency-Key": idempotency_key(post_id)},
        )
        seen = mastodon_rate_limit(response.headers, now=self._budget.now())
        await self._budget.observe(self.budget_key, seen)
        if response.status_code == 429:
            NETWORK_REQUESTS.labels("mastodon", "rate_limited").inc()
            raise await self._budget.limited(
                self.budget_key, seen, response.headers, network=NETWORK
            )
        if response.status_code != 200:
            NETWORK_REQUESTS.labels("mastodon", "error").inc()
            raise self._error(response)
        NETWORK_REQUESTS.labels("mastodon", "ok").inc()
        status = json_body(response)
        status_id = str(status.get("id") or "")
        if not status_id:
            raise TransientError("Mastodon answered 200 without a status id")
        url = status.get("url") or status.get("uri") or f"{self.instance}/statuses/{status_id}"
        return Published(network="mastodon", id=status_id, url=str(url))

    async def find_earlier(self, *, texts: Sequence[str], since: datetime) -> Published | None:
        """The status an earlier attempt made with one of `texts` since `since`, or None when
        the account has none; raises EarlierStatusUnknownError when that cannot be told, and
        EarlierStatusUnreachableError when it cannot be told now."""
        await self._budget.before_request(self.budget_key, network=NETWORK)
        me = await self._lookup("/api/v1/accounts/verify_credentials", authorized=True)
        account_id = me.get("id") if isinstance(me, dict) else None
        if not account_id:
            raise EarlierStatusUnknownError(f"{UNDETERMINED}: Mastodon named no account. {_CHECK}")
        wanted = {_comparable(text) for text in texts}
        oldest = since - CLOCK_SKEW
        max_id: str | None = None
        for _ in range(LOOKUP_PAGES):
            page = await self._statuses(str(account_id), max_id=max_id)
            if not page:
                return None  # the account's first status is behind us
            for status in page:
                created = _instant(status.get("created_at"))
                if created is None or created < oldest or status.get("reblog"):
                    continue
                if _comparable(_plain(str(status.get("content") or ""))) in wanted:
                    NETWORK_REQUESTS.labels("mastodon", "found_earlier").inc()
                    return self._earlier(status)
            if any(_older(status, oldest) for status in page):
                return None  # newest first: the rest was made before the attempt
            max_id = str(page[-1].get("id") or "")
            if not max_id:
                raise EarlierStatusUnknownError(
                    f"{UNDETERMINED}: Mastodon listed a status without an id. {_CHECK}"
                )
        raise EarlierStatusUnknownError(
            f"{UNDETERMINED}: the account made more than {LOOKUP_PAGES * LOOKUP_LIMIT} statuses "
            f"since. {_CHECK}"
        )

    async def _statuses(self, account_id: str, *, max_id: str | None) -> list[dict[str, Any]]:
        """One page of the account's statuses, newest first, older than `max_id` if given."""
        query = f"limit={LOOKUP_LIMIT}" + (f"&max_id={quote(max_id)}" if max_id else "")
        # Public statuses need no token (one without read:statuses would be refused).
        statuses = await self._lookup(
            f"/api/v1/accounts/{quote(account_id)}/statuses?{query}", authorized=False
        )
        if not isinstance(statuses, list):
            raise EarlierStatusUnknownError(
                f"{UNDETERMINED}: Mastodon listed no statuses. {_CHECK}"
            )
        return [status for status in statuses if isinstance(status, dict)]

    def _earlier(self, status: dict[str, Any]) -> Published:
        status_id = str(status.get("id") or "")
        url = status.get("url") or status.get("uri") or f"{self.instance}/statuses/{status_id}"
        return Published(network="mastodon", id=status_id, url=str(url), earlier=True)

    async def _lookup(self, path: str, *, authorized: bool) -> Any:
        try:
            response = await self._send("GET", path, authorized=authorized)
        except TransientError as exc:
            raise EarlierStatusUnreachableError(f"{UNDETERMINED} ({exc.message})") from exc
        if response.status_code == 429:
            NETWORK_REQUESTS.labels("mastodon", "rate_limited").inc()
            seen = mastodon_rate_limit(response.headers, now=self._budget.now())
            raise await self._budget.limited(
                self.budget_key, seen, response.headers, network=NETWORK
            )
        if response.status_code != 200:
            status = response.status_code
            said = excerpt(json_body(response).get("error") or response.reason_phrase)
            if status in (408, 425) or status >= 500:
                # The instance may answer later: the next attempt looks again.
                raise EarlierStatusUnreachableError(
                    f"{UNDETERMINED} yet: Mastodon {status}: {said}",
                    retry_after=wait_from_header(response.headers),
                )
            hint = ""
            if status in (401, 403):
                hint = " (a token with the read:accounts scope lets herald look)"
            raise EarlierStatusUnknownError(
                f"{UNDETERMINED}: Mastodon {status}: {said}{hint}. {_CHECK}"
            )
        try:
            return response.json()
        except ValueError:
            raise EarlierStatusUnknownError(
                f"{UNDETERMINED}: Mastodon answered no JSON. {_CHECK}"
            ) from None

    async def _send(
        self,
        method: str,
        path: str,
        *,
        authorized: bool = True,
        json: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        if authorized:
            sent["Authorization"] = f"Bearer {self._token}"
        try:
            return await self._http.request(
                method, f"{self.instance}{path}", json=json, headers=sent
            )
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            NETWORK_REQUESTS.labels("mastodon", "unreachable").inc()
            raise unreachable(NETWORK, exc) from exc

    def _error(self, response: httpx.Response) -> Exception:
        """Mastodon's `{"error": "..."}` as herald's error: permanent or transient."""
        status = response.status_code
        said = excerpt(json_body(response).get("error") or response.reason_phrase)
        message = f"Mastodon {status}: {said}"
        if status == 401:
            return CredentialsRejectedError(f"{message} (the access token must be replaced)")
        if status == 403:
            return CredentialsRejectedError(
                f"{message} (the access token needs the write:statuses scope)"
            )
        if status == 422 and "character limit" in said:
            # The instance lowered its limit since it was read: read it again next time.
            self._limits.forget(self.instance)
            return LimitLoweredError(f"{message} (the instance {self.instance})")
        if status in (408, 425) or status >= 500:
            return TransientError(message, retry_after=wait_from_header(response.headers))
        if 300 <= status < 400:
            return PermanentError(f"{message}: the instance redirects; herald does not follow")
        return NetworkRefusedError(message)


_CHECK = "Check the account for the post before publishing it again."


def _local(mention: re.Match[str]) -> str:
    return "@" + mention.group(1)


def _plain(content: str) -> str:
    """A status's HTML content as the text it was written from: Mastodon writes paragraphs
    and line breaks as tags, links and mentions as anchors whose text is what was typed."""
    text = _PARAGRAPH.sub("\n\n", content)
    text = _BREAK.sub("\n", text)
    return html.unescape(_TAG.sub("", text))


def _comparable(text: str) -> str:
    """The text as both the post and a status's plain text compare: Mastodon shows a
    resolved `@user@domain` as `@user` but keeps it whole when unresolved or when two
    mentioned accounts share the username, and writes the account's canonical case, so
    every mention is cut to its username and lowercased on both sides."""
    text = _MENTION.sub(_local, text)
    text = _HANDLE.sub(lambda handle: handle.group(0).casefold(), text)
    return _SPACE.sub(" ", text).strip()


def _older(status: dict[str, Any], oldest: datetime) -> bool:
    created = _instant(status.get("created_at"))
    return created is not None and created < oldest


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
