"""A GitHub REST client for the activity of one repository in a window.

Commits on the default branch, pull requests merged and issues closed in (start, end]. Pages
follow the `Link: rel="next"` URL verbatim (it may switch to `/repositories/{id}/...`), and
redirects (a renamed or moved repository) are followed, both only on the origin the scan
started from; conditional requests reuse an in-process ETag cache, so an unchanged page answers
304 and costs no rate limit. Rate limits are the fleet's to keep (`services/scanner/budget.py`):
what GitHub reports of a credential's budget pauses every replica's requests with it before a
limit is hit, and a limit GitHub answers pauses them until its `retry-after` or reset. An
error quotes no more of GitHub's answer than a short, cleaned excerpt of its JSON `message`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx

from services.scanner.budget import GitHubBudget, Report, credential_key
from services.scanner.window import in_window
from shared.budgets import Budgets
from shared.errors import BudgetExhaustedError, PermanentError, TransientError
from shared.events import ActivityItem, GitHubRelease, RateLimitSeen
from shared.metrics import GITHUB_RATE_LIMIT_REMAINING, GITHUB_REQUESTS
from shared.outbound import origin_of, same_origin
from shared.retry import wait_from_header

USER_AGENT = "herald-scanner (+https://github.com/herald)"
API_VERSION = "2022-11-28"
PER_PAGE = 100
DEFAULT_LIMIT_WAIT = 60.0
MAX_REDIRECTS = 5
MESSAGE_EXCERPT = 200
# Commits whose changed files a scan asks for, one request each, when a job filters by path:
# at most this many per scan (newest first), a few at a time.
MAX_PATH_LOOKUPS = 100
PATH_LOOKUPS_AT_ONCE = 8
# Pages of releases read looking for the one before a release (newest first, 100 a page).
MAX_RELEASE_PAGES = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Where GitHub sends a renamed or transferred repository: its id, which never changes.
_BY_ID = re.compile(r"^/repositories/(\d+)(?:/|$)")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\uffff]+")


def transport_error(exc: httpx.TimeoutException | httpx.TransportError) -> TransientError:
    """GitHub not answering: worth trying again later."""
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"GitHub timed out: {exc.__class__.__name__}")
    return TransientError(f"GitHub unreachable: {exc!r}")


async def follow_on_origin(
    send: Callable[[httpx.URL], Awaitable[httpx.Response]],
    url: httpx.URL,
    *,
    origin: httpx.URL | str,
    followed: Callable[[httpx.URL], None] = lambda _target: None,
) -> httpx.Response:
    """`send(url)`, then each redirect's target while it stays on `origin`'s origin: a
    credential never follows a redirect anywhere else (a moved repository stays on it)."""
    for _ in range(MAX_REDIRECTS + 1):
        response = await send(url)
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location:
            return response
        target = url.join(location)
        if not same_origin(target, origin):
            raise PermanentError(
                f"GitHub {response.status_code}: redirected to another origin "
                f"({_origin_text(target)}); herald follows redirects only on "
                f"{origin_of(origin)}"
            )
        followed(target)
        url = target
    raise PermanentError(f"GitHub redirected more than {MAX_REDIRECTS} times")


@dataclass(frozen=True)
class CachedPage:
    etag: str
    body: Any
    next_url: str | None


class ETagCache:
    """The last ETag and body per URL, bounded, shared by every scan of this process."""

    def __init__(self, capacity: int = 2048) -> None:
        self._pages: OrderedDict[str, CachedPage] = OrderedDict()
        self._capacity = capacity

    def get(self, url: str) -> CachedPage | None:
        page = self._pages.get(url)
        if page is not None:
            self._pages.move_to_end(url)
        return page

    def put(self, url: str, page: CachedPage) -> None:
        self._pages[url] = page
        self._pages.move_to_end(url)
        while len(self._pages) > self._capacity:
            self._pages.popitem(last=False)


@dataclass
class GitHubClient:
    http: httpx.AsyncClient
    # Checked by the caller against the origins the operator allows; every page and redirect
    # stays on its origin.
    base_url: str
    # Sent only when the caller decided this base URL is where the token belongs.
    token: str
    etags: ETagCache = field(default_factory=ETagCache)
    calls: int = 0
    not_modified: int = 0
    # The credential's budget as every replica keeps it; a process of its own by default.
    budget: GitHubBudget = field(default_factory=lambda: GitHubBudget(Budgets(), reserve=0))
    # Called before every request: raises when the execution was cancelled meanwhile.
    before_request: Callable[[], None] | None = None
    # Tells the api a scan waits in place for the credential's budget.
    report: Report | None = None
    # Requests this process may have in flight to GitHub, shared by every scan: GitHub's
    # secondary limits allow about 100 at once per credential. Waiting here costs nothing;
    # waiting in httpx's pool costs CPU per waiting request on every request.
    slots: asyncio.Semaphore | None = None

    # Set when GitHub answered that the repository moved (renamed or transferred): its id,
    # which the rest of the scan asks by, and `moved_to` resolves into the new owner/name.
    moved_id: int | None = None
    # The credential's secret-free name (its budget, its cached pages); by default the
    # token's fingerprint. An installation's tokens change hourly; its key does not.
    key: str | None = None
    # Mints a fresh token when GitHub answers 401 (an installation token that expired).
    renew: Callable[[], Awaitable[str]] | None = None
    # The credential's hourly budget as GitHub's latest answer reported it.
    rate_limit: RateLimitSeen | None = None

    def __post_init__(self) -> None:
        self._budget_key = self.key or credential_key(self.token)
        # A cached page is served only to the credential that fetched it.
        self._cache_scope = hashlib.sha256(self._budget_key.encode()).hexdigest()[:16]
        self._base_path = httpx.URL(self.base_url).path.rstrip("/")
        self._renewed = False

    def _headers(self) -> dict[str, str]:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def _get(self, url: httpx.URL) -> tuple[Any, str | None] | None:
        """GET one page: its JSON and next URL, or None for an empty repository (409)."""
        check = self.before_request or (lambda: None)
        check()
        # Waits out a short pause on the credential (checking for cancellation as it goes).
        await self.budget.before_request(self._budget_key, check=check, report=self.report)
        headers = self._headers()
        key = f"{self._cache_scope} {url}"
        cached = self.etags.get(key)
        if cached is not None:
            headers["If-None-Match"] = cached.etag
        response = await self._send(url, headers)
        if response.status_code == 401 and self.renew is not None and not self._renewed:
            # An installation token that expired (or was revoked) early: minted again, once.
            self._renewed = True
            self.token = await self.renew()
            response = await self._send(url, {**headers, **self._headers()})
        await self.budget.observe(self._budget_key, response.headers, ok=response.status_code < 400)
        self._note_rate_limit(response.headers)
        remaining = response.headers.get("x-ratelimit-remaining", "")
        if remaining.isdigit():
            GITHUB_RATE_LIMIT_REMAINING.set(int(remaining))
        if response.status_code == 304 and cached is not None:
            GITHUB_REQUESTS.labels("not_modified").inc()
            self.not_modified += 1
            return cached.body, cached.next_url
        if response.status_code == 409:
            GITHUB_REQUESTS.labels("empty").inc()
            return None
        GITHUB_REQUESTS.labels("ok" if response.status_code < 400 else "error").inc()
        try:
            raise_for_github(response)
        except RateLimitedError as exc:
            # Every replica's requests with this credential wait; so does this scan, as no try.
            if exc.unsaid:
                wait = self.budget.secondary_backoff(self._budget_key)
            else:
                wait = exc.retry_after if exc.retry_after is not None else DEFAULT_LIMIT_WAIT
            await self.budget.limited(self._budget_key, wait)
            raise BudgetExhaustedError(exc.message, retry_after=wait) from None
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(f"GitHub returned a body that is not JSON from {url}") from exc
        next_url = response.links.get("next", {}).get("url")
        if next_url is not None and not same_origin(next_url, self.base_url):
            raise PermanentError(
                f"GitHub's next page is on another origin ({_origin_text(next_url)}); "
                f"herald follows pages only on {origin_of(self.base_url)}"
            )
        etag = response.headers.get("etag")
        if etag:
            self.etags.put(key, CachedPage(etag, body, next_url))
        return body, next_url

    async def _send(self, url: httpx.URL, headers: dict[str, str]) -> httpx.Response:
        """GET `url`, following redirects that stay on the base URL's origin."""

        async def get(target: httpx.URL) -> httpx.Response:
            try:
                async with self.slots or contextlib.nullcontext():
                    response = await self.http.get(target, headers=headers)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                GITHUB_REQUESTS.labels("error").inc()
                raise transport_error(exc) from exc
            self.calls += 1
            return response

        def followed(target: httpx.URL) -> None:
            GITHUB_REQUESTS.labels("redirect").inc()
            self._note_move(target)

        try:
            return await follow_on_origin(get, url, origin=self.base_url, followed=followed)
        except PermanentError:
            GITHUB_REQUESTS.labels("error").inc()
            raise

    def _note_rate_limit(self, headers: httpx.Headers) -> None:
        try:
            limit, remaining = (
                int(headers["x-ratelimit-limit"]),
                int(headers["x-ratelimit-remaining"]),
            )
            reset = datetime.fromtimestamp(float(headers["x-ratelimit-reset"]), UTC)
        except (KeyError, ValueError, OverflowError, OSError):
            return
        if headers.get("x-ratelimit-resource", "core") == "core":
            self.rate_limit = RateLimitSeen(limit=limit, remaining=remaining, reset_at=reset)

    def _note_move(self, target: httpx.URL) -> None:
        """Remember the repository's id when a redirect names it (a move, as GitHub says it)."""
        path = target.path
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :]
        match = _BY_ID.match(path)
        if match and self.moved_id is None:
            self.moved_id = int(match.group(1))

    def repo_path(self, owner: str, name: str) -> str:
        """The repository's API path: by id once GitHub said it moved, saving a redirect each."""
        if self.moved_id is not None:
            return f"/repositories/{self.moved_id}"
        return f"/repos/{owner}/{name}"

    async def repository(self, path: str) -> dict[str, Any]:
        """GET one repository object (`/repos/{owner}/{repo}` or `/repositories/{id}`)."""
        page = await self._get(httpx.URL(f"{self.base_url}{path}"))
        body = page[0] if page is not None else None
        if not isinstance(body, dict):
            raise TransientError(f"GitHub returned an unexpected repository shape from {path}")
        return body

    async def moved_to(self) -> tuple[str, str] | None:
        """The repository's new owner and name, if GitHub answered during the scan that it moved.

        Read from `GET /repositories/{id}` (`owner.login` and `name`, else `full_name`), so
        the project can be told its new name once instead of following a redirect each run.
        """
        if self.moved_id is None:
            return None
        body = await self.repository(f"/repositories/{self.moved_id}")
        owner = (body.get("owner") or {}).get("login")
        name = body.get("name")
        if not (isinstance(owner, str) and isinstance(name, str)):
            full_name = str(body.get("full_name") or "")
            owner, _, name = full_name.partition("/")
        if not (owner and name):
            raise TransientError("GitHub named no owner and name for a moved repository")
        return owner, name

    async def _pages(self, path: str, params: dict[str, Any]) -> AsyncIterator[list[Any]]:
        """Yield each page's items, following the `Link: rel="next"` URL verbatim."""
        # A URL object, not its text: the client would parse the text again per request.
        url: httpx.URL | None = httpx.URL(
            f"{self.base_url}{path}", params={**params, "per_page": PER_PAGE}
        )
        while url is not None:
            page = await self._get(url)
            if page is None:
                return  # an empty repository: no activity
            body, next_url = page
            url = httpx.URL(next_url) if next_url is not None else None
            if not isinstance(body, list):
                raise TransientError(f"GitHub returned an unexpected page shape from {path}")
            yield body

    async def commits(
        self,
        owner: str,
        name: str,
        start: datetime | None,
        end: datetime,
        *,
        sha: str | None = None,
    ) -> list[ActivityItem]:
        """Commits committed in (start, end]: on the default branch, or reachable from `sha`."""
        params: dict[str, Any] = {"until": _iso(end)}
        if start is not None:
            params["since"] = _iso(start)
        if sha is not None:
            params["sha"] = sha
        items = []
        async for page in self._pages(f"{self.repo_path(owner, name)}/commits", params):
            for commit in page:
                item = _commit_item(commit)
                if item.at is not None and not in_window(item.at, start, end):
                    continue
                items.append(item)
        return items

    async def previous_release(
        self, owner: str, name: str, release: GitHubRelease
    ) -> tuple[str, datetime] | None:
        """The tag and publication of the published release before `release`, or None.

        Drafts were never published and are skipped; so are pre-releases when `release` is
        a full one (the last full release is what it follows, as GitHub's generated notes
        say), while a pre-release follows whichever release came last. GitHub lists newest
        first, so the first page holding a candidate ends the search, at most
        `MAX_RELEASE_PAGES` pages.
        """
        found: tuple[datetime, dict[str, Any]] | None = None
        pages = 0
        async for page in self._pages(f"{self.repo_path(owner, name)}/releases", {}):
            pages += 1
            for listed in page:
                if not (isinstance(listed, dict) and _precedes(listed, release)):
                    continue
                published = _published(listed)
                if published is not None and (found is None or published > found[0]):
                    found = (published, listed)
            if found is not None or pages >= MAX_RELEASE_PAGES:
                break
        if found is None:
            return None
        return str(found[1]["tag_name"]), found[0]

    async def compared(
        self, owner: str, name: str, base: str, head: str
    ) -> tuple[list[ActivityItem], str | None]:
        """The commits reachable from `head` and not from `base`, and GitHub's page of them.

        `GET /compare/{base}...{head}` lists them oldest first; its pages (`per_page`,
        `Link: rel="next"`) go past the 250 an unpaged answer stops at.
        """
        basehead = f"{quote(base, safe='/')}...{quote(head, safe='/')}"
        url: httpx.URL | None = httpx.URL(
            f"{self.base_url}{self.repo_path(owner, name)}/compare/{basehead}",
            params={"per_page": PER_PAGE},
        )
        items: list[ActivityItem] = []
        page_url: str | None = None
        while url is not None:
            page = await self._get(url)
            if page is None:
                break
            body, next_url = page
            url = httpx.URL(next_url) if next_url is not None else None
            commits = body.get("commits") if isinstance(body, dict) else None
            if not isinstance(commits, list):
                raise TransientError(f"GitHub returned an unexpected comparison of {basehead}")
            if page_url is None and isinstance(body.get("html_url"), str):
                page_url = body["html_url"]
            items += [_commit_item(commit) for commit in commits if isinstance(commit, dict)]
        return items, page_url

    async def changed_paths(self, owner: str, name: str, shas: list[str]) -> dict[str, list[str]]:
        """Per commit, the paths it changed (`GET /commits/{sha}`, its first page of `files`).

        The listing of commits names no files: one request per commit, so at most
        `MAX_PATH_LOOKUPS` of them, the first in `shas`; the others stay unknown. A commit
        never changes, so a page asked again answers 304 from the ETag cache at no cost.
        """
        wanted = list(dict.fromkeys(sha for sha in shas if sha))[:MAX_PATH_LOOKUPS]
        found: dict[str, list[str]] = {}

        async def look_up(sha: str) -> None:
            page = await self._get(
                httpx.URL(f"{self.base_url}{self.repo_path(owner, name)}/commits/{sha}")
            )
            body = page[0] if page is not None else None
            if not isinstance(body, dict):
                raise TransientError(f"GitHub returned an unexpected commit shape for {sha}")
            files = body.get("files") or []
            found[sha] = [
                str(entry["filename"])
                for entry in files
                if isinstance(entry, dict) and entry.get("filename")
            ]

        for first in range(0, len(wanted), PATH_LOOKUPS_AT_ONCE):
            chunk = wanted[first : first + PATH_LOOKUPS_AT_ONCE]
            await asyncio.gather(*(look_up(sha) for sha in chunk))
        return found

    async def merged_pulls(
        self, owner: str, name: str, start: datetime | None, end: datetime
    ) -> list[ActivityItem]:
        """Pull requests merged in (start, end]: closed pulls by update, newest first."""
        params = {"state": "closed", "sort": "updated", "direction": "desc"}
        items = []
        async for page in self._pages(f"{self.repo_path(owner, name)}/pulls", params):
            for pull in page:
                merged = _parse(pull.get("merged_at"))
                if merged is not None and in_window(merged, start, end):
                    items.append(_issue_item("pull_request", pull, merged))
            oldest = _parse(page[-1].get("updated_at")) if page else None
            if not page or (start is not None and oldest is not None and oldest <= start):
                break  # every later page was last updated before the window
        return items

    async def closed_issues(
        self, owner: str, name: str, start: datetime | None, end: datetime
    ) -> list[ActivityItem]:
        """Issues (not pull requests) closed in (start, end]."""
        issues, _ = await self.closed_issues_and_merged_pulls(owner, name, start, end)
        return issues

    async def closed_issues_and_merged_pulls(
        self, owner: str, name: str, start: datetime | None, end: datetime
    ) -> tuple[list[ActivityItem], list[ActivityItem] | None]:
        """Issues closed and pull requests merged in (start, end], from the issues list alone.

        GitHub lists every pull request as an issue too, and its `pull_request` object says
        when it merged: one listing serves both, a request per scan fewer than asking for
        pull requests apart. The pull requests come back None when the server does not say
        (an older GitHub Enterprise Server): then ask `merged_pulls`.
        """
        params = {"state": "closed", "sort": "updated", "direction": "desc"}
        if start is not None:
            params["since"] = _iso(start)
        issues: list[ActivityItem] = []
        pulls: list[ActivityItem] | None = []
        async for page in self._pages(f"{self.repo_path(owner, name)}/issues", params):
            for issue in page:
                pull = issue.get("pull_request")
                if isinstance(pull, dict):
                    if "merged_at" not in pull:
                        pulls = None
                    merged = _parse(pull.get("merged_at"))
                    if pulls is not None and merged is not None and in_window(merged, start, end):
                        pulls.append(_issue_item("pull_request", issue, merged))
                    continue
                if pull is not None:
                    continue
                closed = _parse(issue.get("closed_at"))
                if closed is not None and in_window(closed, start, end):
                    issues.append(_issue_item("issue", issue, closed))
        return issues, pulls


def _commit_item(commit: dict[str, Any]) -> ActivityItem:
    """A commit as the listing and the comparison both show it."""
    detail = commit.get("commit") or {}
    author = (commit.get("author") or {}).get("login") or (detail.get("author") or {}).get("name")
    at = _parse((detail.get("committer") or detail.get("author") or {}).get("date"))
    message = detail.get("message") or ""
    return ActivityItem(
        kind="commit",
        title=message.splitlines()[0] if message else commit.get("sha", ""),
        url=commit.get("html_url"),
        author=author,
        sha=commit.get("sha"),
        at=at,
        change_type=change_type(message, []),
    )


def _published(listed: dict[str, Any]) -> datetime | None:
    return _parse(listed.get("published_at"))


def _precedes(listed: dict[str, Any], release: GitHubRelease) -> bool:
    """Whether a listed release is a published one `release` may follow."""
    published = _published(listed)
    tag = listed.get("tag_name")
    if listed.get("draft") is True or published is None or not isinstance(tag, str) or not tag:
        return False
    if tag == release.tag:
        return False
    if listed.get("prerelease") is True and not release.prerelease:
        return False
    return release.published_at is None or published < release.published_at


def _issue_item(
    kind: Literal["pull_request", "issue"], payload: dict[str, Any], at: datetime
) -> ActivityItem:
    labels = [
        str(label.get("name")) for label in payload.get("labels") or [] if isinstance(label, dict)
    ]
    title = str(payload.get("title") or f"#{payload.get('number')}")
    return ActivityItem(
        kind=kind,
        title=title,
        url=payload.get("html_url"),
        author=(payload.get("user") or {}).get("login"),
        number=payload.get("number"),
        at=at,
        labels=labels,
        change_type=change_type(f"{title}\n{payload.get('body') or ''}", labels),
    )


def change_type(message: str, labels: list[str]) -> str:
    """Classify a change for a changelog from its conventional-commit prefix or labels."""
    lowered = [label.lower() for label in labels]
    first, _, rest = message.partition("\n")
    head = first.strip().lower()
    prefix = head.split(":", 1)[0] if ":" in head else ""
    if "breaking" in " ".join(lowered) or prefix.endswith("!") or "breaking change" in rest.lower():
        return "breaking"
    kind = prefix.split("(", 1)[0]
    if kind in ("feat", "feature") or any(lab in ("enhancement", "feature") for lab in lowered):
        return "feature"
    if kind in ("fix", "bugfix") or any(lab in ("bug", "fix", "bugfix") for lab in lowered):
        return "fix"
    if kind == "docs" or "documentation" in lowered:
        return "docs"
    return "other"


class RateLimitedError(TransientError):
    """GitHub answered a primary or secondary rate limit for this credential."""

    def __init__(self, message: str, *, retry_after: float | None, unsaid: bool = False) -> None:
        super().__init__(message, retry_after=retry_after)
        # A secondary limit that said neither how long (`retry-after`) nor until when (an
        # exhausted primary budget's reset): the caller backs off, a minute at least.
        self.unsaid = unsaid


# How GitHub words a secondary limit: "You have exceeded a secondary rate limit" (since 2021)
# and "You have triggered an abuse detection mechanism" (2015-2021, and older GHES).
_SECONDARY = ("rate limit", "abuse detection")


def is_secondary_limit(message: str) -> bool:
    lowered = message.lower()
    return any(phrase in lowered for phrase in _SECONDARY)


def raise_for_github(response: httpx.Response) -> None:
    """Map an error response to a transient or permanent error (rate limits are transient)."""
    status = response.status_code
    if status < 300 or status == 304:
        return
    message = github_message(response)
    retry_after = _retry_after(response)
    exhausted = response.headers.get("x-ratelimit-remaining") == "0"
    said = "retry-after" in response.headers
    if status in (403, 429) and (exhausted or said or is_secondary_limit(message)):
        raise RateLimitedError(
            f"GitHub rate limit: {message}",
            retry_after=retry_after,
            unsaid=not (exhausted or said),
        )
    if status == 429 or status >= 500:
        raise TransientError(f"GitHub {status}: {message}", retry_after=retry_after)
    raise PermanentError(f"GitHub {status}: {message}")


def _retry_after(response: httpx.Response) -> float | None:
    """`retry-after`; else, when exhausted, until the reset; else at least a minute."""
    if "retry-after" in response.headers:
        wait = wait_from_header(response.headers)
        return DEFAULT_LIMIT_WAIT if wait is None else wait
    if response.headers.get("x-ratelimit-remaining") == "0":
        try:
            reset = float(response.headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return DEFAULT_LIMIT_WAIT
        return max(1.0, reset - datetime.now(UTC).timestamp())
    if response.status_code in (403, 429):
        return DEFAULT_LIMIT_WAIT
    return None


def github_message(response: httpx.Response) -> str:
    """A short, printable excerpt of GitHub's JSON `message`, or the status's reason phrase.

    Nothing else of the body is quoted: it reaches the execution's error, the owner's alert
    and the logs, and a body that is not GitHub's JSON error has no business there.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        return response.reason_phrase or "no message"
    text = " ".join(_UNPRINTABLE.sub(" ", message).split())
    if len(text) > MESSAGE_EXCERPT:
        text = text[: MESSAGE_EXCERPT - 1].rstrip() + "…"
    return text


def _origin_text(url: str | httpx.URL) -> str:
    try:
        return str(origin_of(url))
    except PermanentError:
        return "not an http(s) URL"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None
