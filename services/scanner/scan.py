"""Scan one execution's activity window and summarise it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import httpx

from services.scanner import conditions as run_conditions
from services.scanner import localgit
from services.scanner.budget import GitHubBudget, Report
from services.scanner.credentials import (
    Credential,
    GitHubApp,
    Kind,
    gone_error,
    suspended_error,
    token_credential,
)
from services.scanner.github import ETagCache, GitHubClient
from shared.budgets import Budgets
from shared.compare import compare_url
from shared.destinations import github_origins
from shared.errors import ConfigurationError, TransientError
from shared.events import (
    ActivityItem,
    ActivitySummary,
    GitHubCredential,
    GitHubRelease,
    JobDue,
    RateLimitSeen,
    Repository,
    RunConditions,
)
from shared.github_names import name_refusal, owner_refusal
from shared.outbound import OriginAllowList, same_origin
from shared.secrets import decrypt
from shared.settings import Settings

MAX_ITEMS = 200
MAX_NOTABLE = 5

_VERSION = re.compile(r"\bv?\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z.-]+)?\b")
_RELEASE_TITLE = re.compile(r"^(?:chore\(release\)|(?:chore:\s*)?(?:release|bump version)\b)", re.I)
_NOTABLE_RANK = {"breaking": 0, "feature": 1, "fix": 2, "docs": 4, "other": 3}


@dataclass(frozen=True)
class ScanResult:
    summary: ActivitySummary
    github_api_calls: int
    # The repository's new owner and name when GitHub answered that it moved.
    moved_to: Repository | None = None
    # The credential the scan read with, and its budget as GitHub last reported it.
    credential: Kind | None = None
    rate_limit: RateLimitSeen | None = None
    # Why the job's conditions were not met by the activity; None: the run goes on.
    skip_reason: str | None = None
    # The window the scan covered when it is not the event's: a release run's, from the
    # previous release to this one.
    window: tuple[datetime | None, datetime] | None = None


@dataclass(frozen=True)
class ReleaseSpan:
    """What a release run covers: the release (with the one before it) and its commits."""

    release: GitHubRelease
    start: datetime | None
    end: datetime
    commits: list[ActivityItem]
    # GitHub's page comparing the previous release with this one.
    compare_page: str | None


def validate_repository(owner: str, name: str) -> None:
    """Refuse an owner/name GitHub could never have issued, before any request."""
    if owner_refusal(owner) or name_refusal(name):
        raise ConfigurationError(f"repository {owner!r}/{name!r} is not of the form owner/name")


@dataclass(frozen=True)
class GitHubAccess:
    """Which GitHub APIs a project may name, and which credential goes where.

    The server's token and its GitHub App belong to `api_url` alone; a project's own token
    goes to the base URL the project names, once that passed the operator's origin list.
    """

    api_url: str
    token: str
    origins: OriginAllowList
    app: GitHubApp | None = None
    # Decrypts a project's own token (HERALD_SECRET_KEY); "" when none is configured.
    secret_key: str = ""

    @classmethod
    def from_settings(
        cls, settings: Settings, http: httpx.AsyncClient | None = None
    ) -> GitHubAccess:
        api_url = settings.github_api_url.rstrip("/")
        key = settings.github_app_private_key.get_secret_value()
        app = None
        if settings.github_app_id and key and http is not None:
            app = GitHubApp(
                app_id=settings.github_app_id, private_key=key, api_url=api_url, http=http
            )
        return cls(
            api_url,
            settings.github_token.get_secret_value(),
            github_origins(settings),
            app,
            settings.secret_key.get_secret_value(),
        )

    @classmethod
    def of(
        cls,
        api_url: str,
        token: str,
        enterprise: list[str] | None = None,
        *,
        app: GitHubApp | None = None,
        secret_key: str = "",
    ) -> GitHubAccess:
        origins = OriginAllowList([api_url, *(enterprise or [])])
        return cls(api_url.rstrip("/"), token, origins, app, secret_key)

    def base_for(self, base_url: str | None) -> str:
        """The checked base URL to scan."""
        return self.origins.check_base(base_url or self.api_url, what="the GitHub base URL")

    async def credential_for(self, base: str, given: GitHubCredential | None) -> Credential:
        """The first credential that applies: the App's installation the project names, the
        project's token, the server's token (on its own GitHub only), else none.

        The App's installation is never looked up for a project that names none: GitHub
        would name whoever installed the App on the repository, not the project's owner,
        and the api lets a project name only an installation granted to its owner.
        """
        on_server = same_origin(base, self.api_url)
        installation_id = given.installation_id if given else None
        if installation_id is not None:
            if not on_server:
                raise ConfigurationError(
                    f"the project names GitHub App installation {installation_id}, but "
                    f"herald's GitHub App reads only {self.api_url}, not {base}"
                )
            if given is not None and given.installation_status == "suspended":
                raise suspended_error(installation_id, "GitHub said so in an installation event")
            if given is not None and given.installation_status == "removed":
                raise gone_error(installation_id, "was removed from its account, GitHub said")
            if self.app is None:
                raise ConfigurationError(
                    f"the project names GitHub App installation {installation_id}, but this "
                    "server has no GitHub App: set HERALD_GITHUB_APP_ID and "
                    "HERALD_GITHUB_APP_PRIVATE_KEY, or clear the project's githubInstallationId"
                )
            # Its failures (removed, suspended, the App's key refused) fail the scan: reading
            # with another credential would hide them and spend another budget.
            return await self.app.credential(installation_id)
        if given is not None and given.token:
            if not self.secret_key:
                raise ConfigurationError(
                    "the project's GitHub token cannot be read: HERALD_SECRET_KEY is not set "
                    "on the scanner"
                )
            return token_credential("token", decrypt(given.token, self.secret_key))
        if on_server and self.token:
            return token_credential("global", self.token)
        return token_credential("none", "")


async def scan(
    event: JobDue,
    *,
    http: httpx.AsyncClient,
    github: GitHubAccess,
    local_repos_root: str,
    etags: ETagCache | None = None,
    scan_seconds: float = 300.0,
    before_request: Callable[[], None] | None = None,
    slots: asyncio.Semaphore | None = None,
    budget: GitHubBudget | None = None,
    report: Report | None = None,
    now: datetime | None = None,
) -> ScanResult:
    """Collect the activity of the event's repository in (windowStart, windowEnd]."""
    repo = event.repository
    start, end = event.window_start, event.window_end
    if repo.local_path:
        path = localgit.resolve_repository(repo.local_path, local_repos_root)
        items = await localgit.commits(path, start, end) + await localgit.tags(path, start, end)
        if event.conditions is not None and event.conditions.filters_paths:
            paths = await localgit.changed_paths(path, start, end)
            items = run_conditions.keep(items, event.conditions, paths)
        return judged(items, event.conditions, github_api_calls=0)
    if not (repo.owner and repo.name):
        raise ConfigurationError("no repository configured for this project")
    validate_repository(repo.owner, repo.name)
    base_url = github.base_for(repo.base_url)
    credential = await github.credential_for(base_url, event.github_credential)
    client = GitHubClient(
        http=http,
        base_url=base_url,
        token=credential.token,
        key=credential.key,
        renew=credential.renew,
        etags=etags if etags is not None else ETagCache(),
        before_request=before_request,
        slots=slots,
        report=report,
        budget=budget or GitHubBudget(Budgets(), reserve=0),
    )
    # A total deadline per scan, never past the attempt's own deadline.
    remaining = (event.deadline - (now or datetime.now(UTC))).total_seconds()
    seconds = max(0.1, min(scan_seconds, remaining))
    try:
        async with asyncio.timeout(seconds):
            span = None
            if event.github_release is None:
                items = await client.commits(repo.owner, repo.name, start, end)
            else:
                span = await release_span(
                    client, repo.owner, repo.name, event.github_release, start, end
                )
                start, end, items = span.start, span.end, list(span.commits)
            issues, pulls = await client.closed_issues_and_merged_pulls(
                repo.owner, repo.name, start, end
            )
            if pulls is None:
                pulls = await client.merged_pulls(repo.owner, repo.name, start, end)
            items += pulls + issues
            if event.conditions is not None:
                # Filtered before looking up paths: no request for a bot's commit.
                items = run_conditions.keep(items, event.conditions)
                if event.conditions.filters_paths:
                    shas = [item.sha or "" for item in items if item.kind == "commit"]
                    paths = await client.changed_paths(repo.owner, repo.name, shas)
                    items = run_conditions.keep(items, event.conditions, paths)
            moved = await client.moved_to()
    except TimeoutError:
        raise TransientError(f"GitHub scan exceeded its {seconds:.0f} s deadline") from None
    moved_to = None
    if moved is not None and moved != (repo.owner, repo.name):
        moved_to = repo.model_copy(update={"owner": moved[0], "name": moved[1]})
    result = judged(
        items,
        event.conditions,
        github_api_calls=client.calls,
        moved_to=moved_to,
        credential=credential.kind,
        rate_limit=client.rate_limit,
    )
    return result if span is None else announcing(result, span)


async def release_span(
    client: GitHubClient,
    owner: str,
    name: str,
    release: GitHubRelease,
    start: datetime | None,
    end: datetime,
) -> ReleaseSpan:
    """The commits a release brings: those between the previous published release's tag
    and its own (GitHub's comparison), and the time between their publications.

    A first release has no comparison: the commits reachable from its tag in the run's own
    window, which then ends at the release's publication.
    """
    published = release.published_at
    previous = await client.previous_release(owner, name, release)
    if previous is None:
        if published is not None and published <= end and (start is None or start < published):
            end = published
        commits = await client.commits(owner, name, start, end, sha=release.tag)
        return ReleaseSpan(release, start, end, commits, None)
    previous_tag, previous_at = previous
    commits, page = await client.compared(owner, name, previous_tag, release.tag)
    told = release.model_copy(
        update={"previous_tag": previous_tag, "previous_published_at": previous_at}
    )
    # A publication GitHub stamped after the delivery arrived (clocks apart) ends at it.
    ends = min(published, end) if published is not None else end
    return ReleaseSpan(told, previous_at, ends, commits, page)


def announcing(result: ScanResult, span: ReleaseSpan) -> ScanResult:
    """A release run's result: the summary names that release alone, and its window is the
    span since the previous release."""
    summary = result.summary.model_copy(
        update={
            "release": span.release,
            "releases": [span.release.tag],
            "compare_url": span.compare_page or result.summary.compare_url,
        }
    )
    return replace(result, summary=summary, window=(span.start, span.end))


def judged(
    items: list[ActivityItem],
    conditions: RunConditions | None,
    *,
    github_api_calls: int,
    moved_to: Repository | None = None,
    credential: Kind | None = None,
    rate_limit: RateLimitSeen | None = None,
) -> ScanResult:
    """The scan's result: the items the conditions keep, summarised, and whether they suffice."""
    if conditions is not None:
        items = run_conditions.keep(items, conditions)
    summary = summarise(items)
    return ScanResult(
        summary,
        github_api_calls,
        moved_to,
        credential=credential,
        rate_limit=rate_limit,
        skip_reason=run_conditions.unmet(summary, conditions) if conditions else None,
    )


def summarise(items: list[ActivityItem]) -> ActivitySummary:
    """Count the items by kind and keep the newest few, the notable ones and releases."""
    ordered = sorted(items, key=lambda item: item.at.timestamp() if item.at else 0, reverse=True)
    contributors = sorted({item.author for item in items if item.author})
    return ActivitySummary(
        commits=sum(item.kind == "commit" for item in items),
        pull_requests=sum(item.kind == "pull_request" for item in items),
        issues=sum(item.kind == "issue" for item in items),
        tags=sum(item.kind == "tag" for item in items),
        contributors=contributors,
        items=ordered[:MAX_ITEMS],
        notable=notable(ordered),
        breaking_changes=_unique(i.title for i in ordered if i.change_type == "breaking"),
        releases=releases(ordered),
        # From every commit, not only the items kept: the comparison spans the whole window.
        compare_url=compare_url([item for item in items if item.kind == "commit"]),
    )


def notable(items: list[ActivityItem]) -> list[ActivityItem]:
    """The merged pull requests and closed issues worth naming first: breaking, features, fixes."""
    candidates = [item for item in items if item.kind in ("pull_request", "issue")]
    ranked = sorted(
        candidates,
        key=lambda item: (
            _NOTABLE_RANK.get(item.change_type or "other", 3),
            item.kind != "pull_request",
        ),
    )
    return ranked[:MAX_NOTABLE]


def releases(items: list[ActivityItem]) -> list[str]:
    """Version bumps where visible: tags, and release commits or pull requests naming a version."""
    found = [item.title for item in items if item.kind == "tag"]
    for item in items:
        if item.kind != "tag" and _RELEASE_TITLE.match(item.title):
            match = _VERSION.search(item.title)
            if match:
                found.append(match.group(0))
    return _unique(found)[:20]


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value, None)
    return list(seen)[:20]
