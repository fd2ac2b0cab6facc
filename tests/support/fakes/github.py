"""A local GitHub REST server that behaves as PROTOCOLS.md §1 describes.

Repositories hold commits, pull requests and issues; the server pages with `Link` headers whose
next URL switches to `/repositories/{id}/...`, caps `per_page` at 100, filters `since`/`until`
as GitHub does (issues by `updated_at`), lists pull requests inside the issues, answers 409 for
an empty repository, sends rate-limit headers on every response, honours `If-None-Match` with a
304 that costs nothing, and can be told to rate-limit (primary/secondary, 403/429, with or
without `retry-after`), fail, be slow or hang. A private repository answers 404 to a
credential that may not read it. A renamed or moved repository answers its old
name with `301 Moved Permanently` to `/repositories/{id}/...`, as GitHub does. Paths work with
or without the GHES `/api/v3`. For hostile tests, `link_origin` and `redirect_origin` make the
next-page links and the moved answers point at another origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.fakes.github_app import FakeApp, Installation, RateBudget
from tests.support.fakes.server import ThreadedServer

DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
PRIMARY_MESSAGE = "API rate limit exceeded for user ID 1."
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)
# GitHub's wording of a secondary limit from 2015 to 2021, still answered by older GHES.
ABUSE_MESSAGE = (
    "You have triggered an abuse detection mechanism. "
    "Please wait a few minutes before you try again."
)


def _app_route(method: str, parts: list[str]) -> bool:
    """`POST /app/installations/{id}/access_tokens` or `GET /repos/{o}/{r}/installation`."""
    if method == "POST":
        return (
            len(parts) == 4
            and parts[:2] == ["app", "installations"]
            and parts[2].isdigit()
            and parts[3] == "access_tokens"
        )
    if len(parts) == 3 and parts[0] == "repositories" and parts[1].isdigit():
        return parts[2] == "installation"  # where a moved repository's lookup is sent
    return len(parts) == 4 and parts[0] == "repos" and parts[3] == "installation"


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def commit(
    sha: str,
    message: str,
    at: datetime,
    login: str | None = "ada",
    *,
    files: list[str] | None = None,
) -> dict[str, Any]:
    """A commit as GitHub lists it; `files` (the paths it changed) only its own page shows."""
    person = {"name": (login or "Anonymous").title(), "email": "dev@example.test", "date": iso(at)}
    return {
        "sha": sha,
        "node_id": f"C_{sha}",
        "commit": {
            "author": person,
            "committer": person,
            "message": message,
            "tree": {"sha": "0" * 40, "url": ""},
            "verification": {"verified": False, "reason": "unsigned", "signature": None},
        },
        "author": {"login": login, "id": 1} if login else None,
        "committer": {"login": login, "id": 1} if login else None,
        "parents": [],
        "html_url": f"https://github.com/octo/repo/commit/{sha}",
        "url": f"https://api.github.com/repos/octo/repo/commits/{sha}",
        "files": [
            {"sha": "1" * 40, "filename": path, "status": "modified", "additions": 1}
            for path in files or ["README.md"]
        ],
    }


def pull(
    number: int,
    title: str,
    *,
    updated: datetime,
    merged: datetime | None,
    login: str = "ada",
    labels: tuple[str, ...] = (),
    body: str = "",
) -> dict[str, Any]:
    return {
        "number": number,
        "title": title,
        "state": "closed",
        "body": body,
        "user": {"login": login, "id": 1},
        "labels": [{"name": name} for name in labels],
        "created_at": iso(updated),
        "updated_at": iso(updated),
        "closed_at": iso(merged or updated),
        "merged_at": iso(merged) if merged else None,
        "html_url": f"https://github.com/octo/repo/pull/{number}",
    }


def issue(
    number: int,
    title: str,
    *,
    closed: datetime,
    updated: datetime | None = None,
    login: str = "bob",
    labels: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "number": number,
        "title": title,
        "state": "closed",
        "state_reason": "completed",
        "body": "",
        "user": {"login": login, "id": 2},
        "labels": [{"name": name} for name in labels],
        "comments": 0,
        "created_at": iso(closed),
        "updated_at": iso(updated or closed),
        "closed_at": iso(closed),
        "html_url": f"https://github.com/octo/repo/issues/{number}",
    }


def release(
    tag: str,
    published: datetime | None,
    *,
    name: str = "",
    body: str = "",
    draft: bool = False,
    prerelease: bool = False,
    created: datetime | None = None,
) -> dict[str, Any]:
    """A release as `GET /releases` lists it (a draft was never published: no `published_at`)."""
    made = created or published or datetime.now(UTC)
    return {
        "id": abs(hash(tag)) % 10**8,
        "node_id": f"RE_{tag}",
        "tag_name": tag,
        "target_commitish": "main",
        "name": name,
        "body": body,
        "draft": draft,
        "prerelease": prerelease,
        "created_at": iso(made),
        "published_at": None if draft or published is None else iso(published),
        "html_url": f"https://github.com/octo/repo/releases/tag/{tag}",
        "author": {"login": "ada", "id": 1},
        "assets": [],
    }


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    commits: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    empty: bool = False
    # Releases as `release()` builds them, and tags: name -> commit sha. History is linear:
    # `commits` in commit order, so a comparison is the commits after its base up to its head.
    releases: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    # A private repository answers 404 to every credential but an installation holding it
    # and the tokens named here, as GitHub hides what a credential may not see.
    private: bool = False
    readers: set[str] = field(default_factory=set)


def repository_object(repo: Repo) -> dict[str, Any]:
    """The fields of GitHub's repository object a client reads, with a few around them."""
    return {
        "id": repo.id,
        "node_id": f"R_{repo.id}",
        "name": repo.name,
        "full_name": f"{repo.owner}/{repo.name}",
        "owner": {"login": repo.owner, "id": 1, "type": "Organization"},
        "private": repo.private,
        "html_url": f"https://github.com/{repo.owner}/{repo.name}",
        "default_branch": "main",
        "url": f"https://api.github.com/repos/{repo.owner}/{repo.name}",
    }


@dataclass
class Limited:
    """One rate-limited answer: status 403 or 429, primary (remaining 0) or secondary."""

    status: int = 403
    secondary: bool = False
    retry_after: int | None = None
    # A secondary limit's wording: today's by default, `ABUSE_MESSAGE` for an older server.
    message: str = SECONDARY_MESSAGE


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int


class FakeGitHub:
    """The state and behaviour of the fake; `app` is its ASGI application."""

    def __init__(self, *, token: str | None = None, limit: int = 5000) -> None:
        self.token = token
        self.repos: dict[int, Repo] = {}
        # The budget of `token` (and of anonymous requests); other credentials have their own.
        self.core = RateBudget(limit=limit, remaining=limit, reset=int(time.time()) + 3600)
        # Further tokens GitHub accepts (a project's own), each with a budget of its own.
        self.tokens: dict[str, RateBudget] = {}
        self.app: FakeApp | None = None
        # The budget and installation of the request being answered (set before any await
        # that could let another request in is done with).
        self._budget = self.core
        self._installation: Installation | None = None
        self._token = ""
        self.requests: list[Seen] = []
        self.limited: list[Limited] = []  # answered in order, one per request
        self.failures: list[int] = []  # statuses answered in order, one per request
        self.delay = 0.0  # seconds before every answer ("slow")
        self.hang = False  # never answer until closed
        self.moved: dict[tuple[str, str], int] = {}  # old owner/name -> repository id
        self.link_origin: str | None = None  # next-page links on this origin instead
        self.redirect_origin: str | None = None  # moved answers point at this origin instead
        # An older GitHub Enterprise Server: pull requests listed as issues say not when they
        # merged (no `pull_request.merged_at`).
        self.issues_without_merged_at = False
        self._closing = False
        self.asgi = Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    # The default credential's budget, as tests set and read it.
    @property
    def limit(self) -> int:
        return self.core.limit

    @limit.setter
    def limit(self, value: int) -> None:
        self.core.limit = value

    @property
    def remaining(self) -> int:
        return self.core.remaining

    @remaining.setter
    def remaining(self, value: int) -> None:
        self.core.remaining = value

    @property
    def reset(self) -> int:
        return self.core.reset

    @reset.setter
    def reset(self, value: int) -> None:
        self.core.reset = value

    def add_repo(self, owner: str, name: str, **data: Any) -> Repo:
        repo = Repo(id=1000 + len(self.repos), owner=owner, name=name, **data)
        self.repos[repo.id] = repo
        return repo

    def move(self, repo: Repo, owner: str, name: str) -> None:
        """Rename or transfer `repo`: its old owner/name answers 301 from now on."""
        self.moved[(repo.owner, repo.name)] = repo.id
        repo.owner, repo.name = owner, name

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    # -- protocol -------------------------------------------------------------------------

    def _rate_headers(self) -> dict[str, str]:
        budget = self._budget
        return {
            "x-ratelimit-limit": str(budget.limit),
            "x-ratelimit-remaining": str(budget.remaining),
            "x-ratelimit-used": str(budget.limit - budget.remaining),
            "x-ratelimit-reset": str(budget.reset),
            "x-ratelimit-resource": "core",
            "x-github-api-version-selected": "2022-11-28",
        }

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(
            json.dumps(body),
            status_code=status,
            media_type="application/json; charset=utf-8",
            headers={**self._rate_headers(), **(headers or {})},
        )

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        body = {"message": message, "documentation_url": DOCS, "status": str(status)}
        return self._json(status, body, headers)

    async def _handle(self, request: Request) -> Response:
        response = await self._answer(request)
        self.requests.append(
            Seen(
                request.method,
                request.url.path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
                response.status_code,
            )
        )
        return response

    async def _answer(self, request: Request) -> Response:
        waited = 0.0
        while self.hang and not self._closing and waited < 120:
            await asyncio.sleep(0.05)
            waited += 0.05
        if self.delay:
            await asyncio.sleep(self.delay)
        self._budget, self._installation, self._token = self.core, None, ""
        if not request.headers.get("user-agent"):
            return self._error(
                403,
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header",
            )
        path = request.url.path.removeprefix("/api/v3")
        parts = path.strip("/").split("/")
        if self.app is not None and _app_route(request.method, parts):
            return self._app_answer(request, parts)
        if request.method != "GET":
            return self._error(404, "Not Found")
        if not self._authenticate(request.headers.get("authorization")):
            return self._error(401, "Bad credentials")
        if self.failures:
            status = self.failures.pop(0)
            return self._error(status, "Server Error" if status >= 500 else "Failure")
        if self.limited:
            return self._limited(self.limited.pop(0))
        if self._budget.remaining <= 0:
            return self._error(403, PRIMARY_MESSAGE)
        repo: Repo | None = None
        if len(parts) in (3, 4) and parts[0] == "repos" and (parts[1], parts[2]) in self.moved:
            return self._moved(request, self.moved[(parts[1], parts[2])], "/".join(parts[3:]))
        if len(parts) == 3 and parts[0] == "repos":
            return self._repository(self._readable(self._named(parts[1], parts[2])))
        if len(parts) == 2 and parts[0] == "repositories" and parts[1].isdigit():
            return self._repository(self._readable(self.repos.get(int(parts[1]))))
        if len(parts) >= 5 and parts[0] == "repos" and parts[3] == "compare":
            found = self._readable(self._named(parts[1], parts[2]))
            return self._compare(request, found, "/".join(parts[4:]))
        if len(parts) >= 4 and parts[0] == "repositories" and parts[2] == "compare":
            found = self.repos.get(int(parts[1])) if parts[1].isdigit() else None
            return self._compare(request, self._readable(found), "/".join(parts[3:]))
        if len(parts) == 5 and parts[0] == "repos" and parts[3] == "commits":
            return self._commit(self._readable(self._named(parts[1], parts[2])), parts[4])
        if len(parts) == 4 and parts[0] == "repositories" and parts[2] == "commits":
            found = self.repos.get(int(parts[1])) if parts[1].isdigit() else None
            return self._commit(self._readable(found), parts[3])
        if len(parts) == 4 and parts[0] == "repos":
            repo = self._named(parts[1], parts[2])
            resource = parts[3]
        elif len(parts) == 3 and parts[0] == "repositories" and parts[1].isdigit():
            repo = self.repos.get(int(parts[1]))
            resource = parts[2]
        else:
            return self._error(404, "Not Found")
        repo = self._readable(repo)
        if repo is None or resource not in ("commits", "pulls", "issues", "releases"):
            return self._error(404, "Not Found")
        if repo.empty and resource == "commits":
            self._budget.remaining -= 1
            return self._error(409, "Git Repository is empty.")
        items = self._select(repo, resource, request.query_params)
        return self._page(request, repo, resource, items)

    def _authenticate(self, authorization: str | None) -> bool:
        """Pick the request's budget (and installation) by its credential; False: refused."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token:
            return self.token is None
        self._token = token
        if token == self.token:
            return True
        if token in self.tokens:
            self._budget = self.tokens[token]
            return True
        installation = self.app.installation_of_token(token) if self.app is not None else False
        if installation is False:
            return self.token is None
        if installation is None or isinstance(installation, bool):
            return False  # an expired token, or a removed installation's
        self._budget, self._installation = installation.budget, installation
        return True

    def _readable(self, repo: Repo | None) -> Repo | None:
        """The repository, if the request's credential may read it (an installation, its own;
        a private one, its readers)."""
        if repo is None:
            return None
        if self._installation is not None:
            return repo if repo.id in self._installation.repository_ids else None
        return None if repo.private and self._token not in repo.readers else repo

    def _app_answer(self, request: Request, parts: list[str]) -> Response:
        """The App's own endpoints, authenticated with its JWT."""
        assert self.app is not None
        self._budget = RateBudget()  # JWT requests spend no installation's budget
        problem = self.app.jwt_problem(request.headers.get("authorization"))
        if problem is not None:
            return self._json(
                401, {"message": problem, "documentation_url": "https://docs.github.com/rest"}
            )
        if parts[0] == "app":
            status, body = self.app.mint(int(parts[2]))
            return self._json(status, body)
        if parts[0] == "repositories":
            repo = self.repos.get(int(parts[1]))
        elif (parts[1], parts[2]) in self.moved:
            return self._moved(request, self.moved[(parts[1], parts[2])], "installation")
        else:
            repo = self._named(parts[1], parts[2])
        installation = self.app.installation_for(repo.id) if repo is not None else None
        if installation is None:
            return self._error(404, "Not Found")
        return self._json(200, self.app.installation_object(installation))

    def _named(self, owner: str, name: str) -> Repo | None:
        # GitHub's owner and repository names are case-insensitive.
        wanted = (owner.lower(), name.lower())
        return next(
            (r for r in self.repos.values() if (r.owner.lower(), r.name.lower()) == wanted), None
        )

    def _repository(self, repo: Repo | None) -> Response:
        """`GET /repos/{owner}/{repo}` or `GET /repositories/{id}`: the repository object."""
        if repo is None:
            return self._error(404, "Not Found")
        self._budget.remaining -= 1
        return self._json(200, repository_object(repo))

    def _commit(self, repo: Repo | None, sha: str) -> Response:
        """`GET /repos/{owner}/{repo}/commits/{sha}`: one commit with the files it changed."""
        found = [c for c in repo.commits if c["sha"] == sha] if repo is not None else []
        if not found:
            return self._error(404, "Not Found")
        self._budget.remaining -= 1
        return self._json(200, found[0])

    def _moved(self, request: Request, repo_id: int, resource: str) -> Response:
        origin = self.redirect_origin or f"{request.url.scheme}://{request.url.netloc}"
        prefix = "/api/v3" if request.url.path.startswith("/api/v3") else ""
        query = f"?{request.url.query}" if request.url.query else ""
        tail = f"/{resource}" if resource else ""
        location = f"{origin}{prefix}/repositories/{repo_id}{tail}{query}"
        body = {"message": "Moved Permanently", "url": location, "documentation_url": DOCS}
        return self._json(301, body, {"location": location})

    def _issue_pull(self, pull: dict[str, Any]) -> dict[str, Any]:
        listed = {"url": pull["html_url"], "html_url": pull["html_url"]}
        if not self.issues_without_merged_at:
            listed["merged_at"] = pull["merged_at"]
        return listed

    def _limited(self, limited: Limited) -> Response:
        headers: dict[str, str] = {}
        if limited.retry_after is not None:
            headers["retry-after"] = str(limited.retry_after)
        if limited.secondary:
            return self._error(limited.status, limited.message, headers)
        self._budget.remaining = 0
        return self._error(limited.status, PRIMARY_MESSAGE, headers)

    def _compare(self, request: Request, repo: Repo | None, basehead: str) -> Response:
        """`GET /compare/{base}...{head}`: the commits after `base` up to `head`, oldest first,
        paged like a list (`per_page`, `page`, `Link`) inside the comparison object."""
        base, _, head = unquote(basehead).partition("...")
        if repo is None or not head:
            return self._error(404, "Not Found")
        order = [c["sha"] for c in repo.commits]
        shas = [repo.tags.get(ref, ref) for ref in (base, head)]
        if any(sha not in order for sha in shas):
            return self._error(404, "Not Found")
        first, last = order.index(shas[0]), order.index(shas[1])
        chosen = [{k: v for k, v in c.items() if k != "files"} for c in repo.commits]
        chosen = chosen[first + 1 : last + 1]
        query = dict(request.query_params)
        per_page = max(1, min(100, int(query.get("per_page", 250))))
        page = max(1, int(query.get("page", 1)))
        pages = max(1, -(-len(chosen) // per_page))
        base_url = f"{request.url.scheme}://{request.url.netloc}"
        prefix = "/api/v3" if request.url.path.startswith("/api/v3") else ""
        headers = {}
        if page < pages:
            params = urlencode({**query, "page": page + 1})
            headers["link"] = (
                f"<{base_url}{prefix}/repositories/{repo.id}/compare/{basehead}?{params}>; "
                'rel="next"'
            )
        self._budget.remaining -= 1
        body = {
            "url": f"https://api.github.com/repos/{repo.owner}/{repo.name}/compare/{basehead}",
            "html_url": f"https://github.com/{repo.owner}/{repo.name}/compare/{basehead}",
            "status": "ahead" if last > first else ("identical" if last == first else "behind"),
            "ahead_by": len(chosen),
            "behind_by": 0,
            "total_commits": len(chosen),
            "base_commit": repo.commits[first],
            "merge_base_commit": repo.commits[first],
            "commits": chosen[(page - 1) * per_page : page * per_page],
            "files": [],
        }
        return self._json(200, body, headers)

    def _select(self, repo: Repo, resource: str, query: Any) -> list[dict[str, Any]]:
        if resource == "releases":
            # Newest first, drafts included (the token may push to the repository).
            return sorted(repo.releases, key=lambda r: r["created_at"], reverse=True)
        if resource == "commits":
            since, until = query.get("since"), query.get("until")
            reachable = repo.commits
            sha = query.get("sha")
            if sha is not None:
                order = [c["sha"] for c in repo.commits]
                tip = repo.tags.get(sha, sha)
                reachable = repo.commits[: order.index(tip) + 1] if tip in order else []
            chosen = [
                c
                for c in reachable
                if (since is None or _parse(c["commit"]["committer"]["date"]) >= _parse(since))
                and (until is None or _parse(c["commit"]["committer"]["date"]) <= _parse(until))
            ]
            listed = [{k: v for k, v in c.items() if k != "files"} for c in chosen]
            return sorted(listed, key=lambda c: c["commit"]["committer"]["date"], reverse=True)
        state = query.get("state", "open")
        if resource == "pulls":
            chosen = [p for p in repo.pulls if state in ("all", p["state"])]
        else:
            # GitHub's REST API considers every pull request an issue.
            as_issues = [{**p, "pull_request": self._issue_pull(p)} for p in repo.pulls]
            chosen = [i for i in repo.issues + as_issues if state in ("all", i["state"])]
            since = query.get("since")
            if since is not None:
                chosen = [i for i in chosen if _parse(i["updated_at"]) >= _parse(since)]
        key = "updated_at" if query.get("sort", "created") == "updated" else "created_at"
        return sorted(chosen, key=lambda i: i[key], reverse=query.get("direction") != "asc")

    def _page(
        self, request: Request, repo: Repo, resource: str, items: list[dict[str, Any]]
    ) -> Response:
        query = dict(request.query_params)
        per_page = max(1, min(100, int(query.get("per_page", 30))))
        page = max(1, int(query.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        body = items[(page - 1) * per_page : page * per_page]
        payload = json.dumps(body)
        etag = '"' + hashlib.sha256(payload.encode()).hexdigest()[:40] + '"'
        headers = {"etag": etag, "cache-control": "private, max-age=60, s-maxage=60"}
        links = []
        base = self.link_origin or f"{request.url.scheme}://{request.url.netloc}"
        prefix = "/api/v3" if request.url.path.startswith("/api/v3") else ""

        def link(number: int, rel: str) -> str:
            params = urlencode({**query, "page": number})
            return f'<{base}{prefix}/repositories/{repo.id}/{resource}?{params}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(page - 1, "prev")]
        if links:
            headers["link"] = ", ".join(links)
        if request.headers.get("if-none-match") == etag:
            # A conditional request answered 304 costs nothing when it was authorised.
            if not request.headers.get("authorization"):
                self._budget.remaining -= 1
            return Response(status_code=304, headers={**self._rate_headers(), **headers})
        self._budget.remaining -= 1
        return self._json(200, body, headers)

    # -- running --------------------------------------------------------------------------

    def serve(self) -> ThreadedServer:
        server = ThreadedServer(self.asgi).start()
        original_close = server.close

        def close() -> None:
            self._closing = True
            original_close()

        server.close = close  # type: ignore[method-assign]
        return server
