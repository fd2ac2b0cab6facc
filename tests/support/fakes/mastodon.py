"""A local Mastodon instance: `POST /api/v1/statuses` and `GET /api/v2/instance` as Mastodon
answers them (docs/publishing.md).

Bearer tokens carry scopes (`write:statuses` or `write` may post); an unknown token answers
401 `{"error": "The access token is invalid"}`, a token without the scope 403 `{"error":
"This action is outside the authorized scopes"}`. A status longer than `max_characters`,
counted as Mastodon counts (grapheme clusters of `spoiler_text` + `status`, each URL with a
scheme as `characters_reserved_per_url`, `@user@domain` as `@user`), answers 422
`{"error": "Validation failed: Text character limit of 500 exceeded"}`. An `Idempotency-Key`
is remembered per account for an hour: a repeat answers the first status, makes no second
one and spends nothing. Posting spends the account's `statuses` budget (300 per 3 hours by
default), reported in `X-RateLimit-Limit/Remaining/Reset` (an ISO-8601 instant with
microseconds); past it, 429 `{"error": "Too many requests"}`. `lose_next_answer` makes the
next status and then answers 502, as a proxy that timed out after the instance committed.
`GET /api/v1/accounts/verify_credentials` answers the token's account (a token needs
`read`, `read:accounts` or `profile`, else 403), and `GET /api/v1/accounts/:id/statuses`
its public statuses newest first (`limit`, at most 40; `max_id` for those older than a
status, as the `Link` header's `rel="next"` names it), each `content` rendered to HTML as
Mastodon does (paragraphs, `<br />`, links and mentions as anchors, `text` absent).
`instance_trouble` lists answers the instance endpoints give first, one per request: 429 as
Mastodon's per-address limit answers it (`{"error": "Too many requests"}`, `Retry-After`
and the `X-RateLimit-*` headers), or a 5xx as a failing proxy does; `lookup_trouble` the
same for the account endpoints.
"""

from __future__ import annotations

import html
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.post_length import graphemes

IDEMPOTENCY_SECONDS = 3600
_URL = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,:;!?'\")\]]", re.IGNORECASE)
_MENTION = re.compile(r"(?<![=/\w])@(\w+)@[\w.-]+\w", re.IGNORECASE)


@dataclass
class Account:
    id: str
    username: str
    token: str
    scopes: frozenset[str]


@dataclass
class FakeMastodon:
    domain: str = "mastodon.test"
    max_characters: int = 500
    characters_reserved_per_url: int = 23
    statuses_per_window: int = 300
    window_seconds: float = 3 * 3600
    clock: Callable[[], float] = time.time
    accounts: dict[str, Account] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lose_next_answer: bool = False
    # Answer 404 to `/api/v2/instance`, as Mastodon before 4.0.
    v1_only: bool = False
    instance_trouble: list[int] = field(default_factory=list)
    # Statuses the account endpoints answer first, one per request (a 5xx of a failing proxy).
    lookup_trouble: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(109_000_000_000_000_000)
        self._idempotent: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        # Per account: when its current window started, and statuses posted in it.
        self._windows: dict[str, tuple[float, int]] = {}
        self.asgi = Starlette(
            routes=[
                Route("/api/v2/instance", self._instance_v2, methods=["GET"]),
                Route("/api/v1/instance", self._instance_v1, methods=["GET"]),
                Route("/api/v1/statuses", self._post_status, methods=["POST"]),
                Route("/api/v1/statuses/{id}", self._get_status, methods=["GET"]),
                Route(
                    "/api/v1/accounts/verify_credentials",
                    self._verify_credentials,
                    methods=["GET"],
                ),
                Route("/api/v1/accounts/{id}/statuses", self._account_statuses, methods=["GET"]),
            ]
        )

    def add_account(
        self, username: str, token: str, *, scopes: tuple[str, ...] = ("write:statuses",)
    ) -> Account:
        account = Account(str(len(self.accounts) + 1), username, token, frozenset(scopes))
        self.accounts[token] = account
        return account

    def add_status(self, account: Account, text: str, *, at: float) -> dict[str, Any]:
        """A public status the account made at `at` (the instance's clock), not through herald."""
        with self._lock:
            return self._create(account, text, "", {}, at)

    def length(self, text: str, spoiler_text: str = "") -> int:
        """Mastodon's count: URLs as the reserved length, remote mentions as the local part."""
        countable, links = _URL.subn("", text)
        countable = _MENTION.sub(lambda match: "@" + match.group(1), countable)
        return graphemes(spoiler_text + countable) + links * self.characters_reserved_per_url

    def _configuration(self) -> dict[str, Any]:
        return {
            "statuses": {
                "max_characters": self.max_characters,
                "max_media_attachments": 4,
                "characters_reserved_per_url": self.characters_reserved_per_url,
            }
        }

    def _trouble(self) -> JSONResponse | None:
        if not self.instance_trouble:
            return None
        status = self.instance_trouble.pop(0)
        if status != 429:
            return JSONResponse({"error": "Service unavailable"}, status_code=status)
        reset = datetime.fromtimestamp(self.clock() + 300, UTC)
        return JSONResponse(
            {"error": "Too many requests"},
            status_code=429,
            headers={
                "Retry-After": "300",
                "X-RateLimit-Limit": "300",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            },
        )

    async def _instance_v2(self, request: Request) -> JSONResponse:
        self._log(request, None)
        trouble = self._trouble()
        if trouble is not None:
            return trouble
        if self.v1_only:
            return JSONResponse({"error": "Record not found"}, status_code=404)
        return JSONResponse(
            {
                "domain": self.domain,
                "title": "A test instance",
                "version": "4.3.0",
                "configuration": self._configuration(),
            }
        )

    async def _instance_v1(self, request: Request) -> JSONResponse:
        self._log(request, None)
        trouble = self._trouble()
        if trouble is not None:
            return trouble
        return JSONResponse(
            {"uri": self.domain, "version": "3.5.3", "configuration": self._configuration()}
        )

    def _lookup_trouble(self) -> JSONResponse | None:
        if not self.lookup_trouble:
            return None
        return JSONResponse({"error": "Bad gateway"}, status_code=self.lookup_trouble.pop(0))

    async def _verify_credentials(self, request: Request) -> JSONResponse:
        self._log(request, None)
        if (trouble := self._lookup_trouble()) is not None:
            return trouble
        account = self.accounts.get(_bearer(request))
        if account is None:
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        if not account.scopes & {"read", "read:accounts", "profile"}:
            return JSONResponse(
                {"error": "This action is outside the authorized scopes"}, status_code=403
            )
        return JSONResponse(
            {"id": account.id, "username": account.username, "acct": account.username}
        )

    async def _account_statuses(self, request: Request) -> JSONResponse:
        self._log(request, None)
        if (trouble := self._lookup_trouble()) is not None:
            return trouble
        wanted = request.path_params["id"]
        try:
            limit = min(max(int(request.query_params.get("limit", "20")), 1), 40)
        except ValueError:
            limit = 20
        max_id = request.query_params.get("max_id")
        mine = [
            {key: value for key, value in status.items() if key != "text"}
            for status in reversed(self.statuses)
            if status["account"]["id"] == wanted
            and status["visibility"] == "public"
            and (not max_id or int(status["id"]) < int(max_id))
        ][:limit]
        if not mine:
            return JSONResponse([])
        # Mastodon's pagination: older statuses through `max_id`, newer through `min_id`.
        base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        links = (
            f'<{base}?limit={limit}&max_id={mine[-1]["id"]}>; rel="next", '
            f'<{base}?limit={limit}&min_id={mine[0]["id"]}>; rel="prev"'
        )
        return JSONResponse(mine, headers={"Link": links})

    async def _get_status(self, request: Request) -> JSONResponse:
        wanted = request.path_params["id"]
        for status in self.statuses:
            if status["id"] == wanted:
                return JSONResponse(status)
        return JSONResponse({"error": "Record not found"}, status_code=404)

    async def _post_status(self, request: Request) -> JSONResponse:
        raw = await request.body()
        self._log(request, raw)
        account = self.accounts.get(_bearer(request))
        if account is None:
            return JSONResponse({"error": "The access token is invalid"}, status_code=401)
        if not account.scopes & {"write", "write:statuses"}:
            return JSONResponse(
                {"error": "This action is outside the authorized scopes"}, status_code=403
            )
        params = await _params(request, raw)
        text = str(params.get("status") or "")
        spoiler = str(params.get("spoiler_text") or "")
        key = request.headers.get("idempotency-key")
        with self._lock:
            now = self.clock()
            if key:
                known = self._idempotent.get((account.id, key))
                if known is not None and now - known[0] < IDEMPOTENCY_SECONDS:
                    return self._answer(known[1], self._rate_headers(account, now))
            headers = self._rate_headers(account, now)
            if int(headers["X-RateLimit-Remaining"]) <= 0:
                return JSONResponse({"error": "Too many requests"}, 429, headers=headers)
            if not text.strip():
                return JSONResponse(
                    {"error": "Validation failed: Text can't be blank"}, 422, headers=headers
                )
            if self.length(text, spoiler) > self.max_characters:
                return JSONResponse(
                    {
                        "error": "Validation failed: Text character limit of "
                        f"{self.max_characters} exceeded"
                    },
                    422,
                    headers=headers,
                )
            status = self._create(account, text, spoiler, params, now)
            if key:
                self._idempotent[(account.id, key)] = (now, status)
            headers = self._rate_headers(account, now, spend=True)
        return self._answer(status, headers)

    def _answer(self, status: dict[str, Any], headers: dict[str, str]) -> JSONResponse:
        if self.lose_next_answer:
            self.lose_next_answer = False
            return JSONResponse({"error": "Bad gateway"}, 502)
        return JSONResponse(status, headers=headers)

    def _create(
        self, account: Account, text: str, spoiler: str, params: dict[str, Any], now: float
    ) -> dict[str, Any]:
        status_id = str(next(self._ids))
        created = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
        status = {
            "id": status_id,
            "uri": f"https://{self.domain}/users/{account.username}/statuses/{status_id}",
            "url": f"https://{self.domain}/@{account.username}/{status_id}",
            "created_at": created.replace("+00:00", "Z"),
            "content": _rendered(text, self.domain),
            "text": text,
            "spoiler_text": spoiler,
            "visibility": params.get("visibility") or "public",
            "language": params.get("language"),
            "sensitive": bool(spoiler),
            "account": {"id": account.id, "username": account.username, "acct": account.username},
            "media_attachments": [],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None,
        }
        self.statuses.append(status)
        return status

    def _rate_headers(self, account: Account, now: float, *, spend: bool = False) -> dict[str, str]:
        started, used = self._windows.get(account.id, (now, 0))
        if now - started >= self.window_seconds:
            started, used = now, 0
        if spend:
            used += 1
        self._windows[account.id] = (started, used)
        reset = datetime.fromtimestamp(started + self.window_seconds, UTC)
        return {
            "X-RateLimit-Limit": str(self.statuses_per_window),
            "X-RateLimit-Remaining": str(max(self.statuses_per_window - used, 0)),
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }

    def _log(self, request: Request, raw: bytes | None) -> None:
        self.requests.append(
            {"method": request.method, "path": request.url.path, "headers": dict(request.headers)}
        )


def _rendered(text: str, domain: str) -> str:
    """Mastodon's HTML of a plain-text status: escaped, paragraphs and `<br />`, each link an
    anchor with its scheme in an invisible span, each mention an h-card of the username."""

    def piece(part: str) -> str:
        out, last = [], 0
        for found in _URL.finditer(part):
            out.append(html.escape(part[last : found.start()], quote=False))
            url = found.group(0)
            scheme, rest = url.split("://", 1)
            out.append(
                f'<a href="{html.escape(url)}" target="_blank" rel="nofollow noopener" '
                f'translate="no"><span class="invisible">{scheme}://</span>'
                f'<span class="">{html.escape(rest, quote=False)}</span>'
                '<span class="invisible"></span></a>'
            )
            last = found.end()
        out.append(html.escape(part[last:], quote=False))
        return _MENTION.sub(
            lambda match: (
                f'<span class="h-card" translate="no"><a href="https://{domain}/@'
                f'{match.group(1)}" class="u-url mention">@<span>{match.group(1)}</span></a>'
                "</span>"
            ),
            "".join(out),
        )

    paragraphs = [part for part in text.split("\n\n") if part.strip()]
    return "".join(
        "<p>" + "<br />".join(piece(line) for line in paragraph.split("\n")) + "</p>"
        for paragraph in paragraphs
    )


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""


async def _params(request: Request, raw: bytes) -> dict[str, Any]:
    """The status's parameters, sent as JSON or as a form, as Mastodon takes both."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        return body if isinstance(body, dict) else {}
    return {name: values[-1] for name, values in parse_qs(raw.decode()).items()}
