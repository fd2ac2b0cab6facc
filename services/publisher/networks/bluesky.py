"""Bluesky: an `app.bsky.feed.post` record on the account's PDS, once, within 300 graphemes.

1. A session: `com.atproto.server.createSession` with the identifier and an app password,
   once; its `accessJwt` authorizes every call and its `refreshJwt` renews it. An expired
   access token answers 400 `ExpiredToken` (not 401): the session is refreshed once
   (`refreshSession`, which rotates the refresh token) and the call repeated; a refresh
   token that expired too starts a new session, once.
2. The record: `com.atproto.repo.createRecord` with `rkey` derived from the post's id
   (`keys.record_key`), links as `app.bsky.richtext.facet#link` facets in UTF-8 byte
   offsets, `createdAt` and `langs`.
3. A retry is idempotent: the PDS refuses a second record at the same key (its repository
   tree throws, which the PDS answers as a 500 `InternalServerError`), so after any answer
   that may hide a record (a 5xx, a 400 naming the key, no answer at all) the client asks
   `com.atproto.repo.getRecord` at its key: found, the post was published and the first
   record's URI and CID are returned.

Rate limits (`RateLimit-*`, 429) pause the account's calls for every replica
(`budget.AccountBudget`). The PDS URL is the tenant's: requests go through the caller's
`shared.outbound` guarded client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from services.publisher.networks.budget import AccountBudget, bluesky_rate_limit, fingerprint
from services.publisher.networks.keys import record_key
from services.publisher.networks.published import (
    CredentialsRejectedError,
    NetworkRefusedError,
    Published,
    base_origin,
    excerpt,
    json_body,
    unreachable,
)
from services.publisher.networks.text import PostTooLongError, check_bluesky, link_facets
from shared.errors import PermanentError, TransientError
from shared.metrics import NETWORK_REQUESTS
from shared.retry import wait_from_header

NETWORK = "Bluesky"
POST = "app.bsky.feed.post"
USER_AGENT = "herald-publisher (+https://github.com/herald)"
MAX_LANGS = 3
# Names under which a PDS refuses a session's token: expired, and renewable, or not.
_EXPIRED = "ExpiredToken"
_BAD_TOKEN = frozenset({"InvalidToken", "AuthenticationRequired", "AuthMissing"})


@dataclass(frozen=True)
class Session:
    did: str
    handle: str
    access_jwt: str
    refresh_jwt: str


class _XrpcError(Exception):
    """An XRPC error answer, kept whole until the caller decides what it means."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response
        body = json_body(response)
        self.name = str(body.get("error") or "")
        self.said = excerpt(body.get("message") or self.name or response.reason_phrase)


def post_url(author: str, rkey: str) -> str:
    """Where a reader opens the post on bsky.app (by DID: it outlives a handle change)."""
    return f"https://bsky.app/profile/{author}/post/{rkey}"


class BlueskyClient:
    """One account on its PDS."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        service_url: str,
        identifier: str,
        app_password: str,
        budget: AccountBudget,
        session: Session | None = None,
        on_session: Callable[[Session], Awaitable[None]] | None = None,
        allow_http: bool = False,
    ) -> None:
        self.service = base_origin(service_url, what="the PDS", allow_http=allow_http)
        self._http = http
        self._identifier = identifier
        self._password = app_password
        self._budget = budget
        self.session = session
        # Told of every new or refreshed session: the refresh token rotates, so whoever keeps
        # sessions between processes must store the new one.
        self._on_session = on_session
        self._session_key = f"bluesky:{self.service}:session:{fingerprint(identifier)}"

    def budget_key(self, did: str) -> str:
        return f"bluesky:{self.service}:{did}"

    async def publish(
        self,
        *,
        post_id: str,
        text: str,
        langs: Sequence[str] = (),
        created_at: datetime | None = None,
    ) -> Published:
        """Create the post's record once: a repeat finds the first record at the same key."""
        check_bluesky(text)
        if len(langs) > MAX_LANGS:
            raise PermanentError(f"langs holds at most {MAX_LANGS} languages, not {len(langs)}")
        rkey = record_key(post_id)
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": _datetime(created_at or datetime.now(UTC)),
        }
        if langs:
            record["langs"] = list(langs)
        facets = link_facets(text)
        if facets:
            record["facets"] = facets
        session = await self._session()
        try:
            body = await self._call(
                "com.atproto.repo.createRecord",
                json={"repo": session.did, "collection": POST, "rkey": rkey, "record": record},
            )
        except _XrpcError as failed:
            if not _may_exist(failed):
                raise self._error(failed) from None
            found = await self._find(rkey)
            if found is None:
                raise self._error(failed) from None
            return found
        except TransientError as exc:
            if exc.retry_after is not None:  # a pause, not an unknown outcome
                raise
            found = await self._find(rkey)
            if found is None:
                raise
            return found
        NETWORK_REQUESTS.labels("bluesky", "ok").inc()
        return self._published(body, rkey)

    async def _find(self, rkey: str) -> Published | None:
        """The record an earlier attempt made at `rkey`, or None when there is none."""
        session = await self._session()
        try:
            body = await self._call(
                "com.atproto.repo.getRecord",
                params={"repo": session.did, "collection": POST, "rkey": rkey},
                method="GET",
            )
        except _XrpcError as failed:
            if failed.response.status_code == 400 and failed.name in (
                "RecordNotFound",
                "InvalidRequest",
            ):
                return None
            raise self._error(failed) from None
        NETWORK_REQUESTS.labels("bluesky", "earlier").inc()
        return self._published(body, rkey, earlier=True)

    def _published(self, body: dict[str, Any], rkey: str, *, earlier: bool = False) -> Published:
        assert self.session is not None
        uri = body.get("uri")
        if not isinstance(uri, str) or not uri.startswith("at://"):
            raise TransientError("Bluesky answered 200 without the record's at:// URI")
        return Published(
            network="bluesky",
            id=uri,
            url=post_url(self.session.did, rkey),
            cid=str(body.get("cid") or "") or None,
            earlier=earlier,
        )

    async def _session(self) -> Session:
        if self.session is None:
            await self._create_session()
        assert self.session is not None
        return self.session

    async def _create_session(self) -> None:
        await self._budget.before_request(self._session_key, network=NETWORK)
        response = await self._post_raw(
            "com.atproto.server.createSession",
            json={"identifier": self._identifier, "password": self._password},
            token=None,
            key=self._session_key,
        )
        if response.status_code != 200:
            failed = _XrpcError(response)
            if response.status_code == 401:
                raise CredentialsRejectedError(
                    f"Bluesky 401 {failed.name}: {failed.said} (the identifier or app password "
                    "must be replaced)"
                )
            raise self._error(failed)
        await self._keep(json_body(response))

    async def _refresh(self) -> bool:
        """Renew the session with its refresh token; False when that token is spent too."""
        assert self.session is not None
        response = await self._post_raw(
            "com.atproto.server.refreshSession",
            json=None,
            token=self.session.refresh_jwt,
            key=self.budget_key(self.session.did),
        )
        if response.status_code == 200:
            await self._keep(json_body(response))
            return True
        failed = _XrpcError(response)
        if failed.name == _EXPIRED or failed.name in _BAD_TOKEN:
            return False
        raise self._error(failed)

    async def _keep(self, body: dict[str, Any]) -> None:
        try:
            session = Session(
                did=str(body["did"]),
                handle=str(body.get("handle") or body["did"]),
                access_jwt=str(body["accessJwt"]),
                refresh_jwt=str(body["refreshJwt"]),
            )
        except KeyError as exc:
            raise TransientError(f"Bluesky answered a session without {exc.args[0]}") from None
        self.session = session
        if self._on_session is not None:
            await self._on_session(session)

    async def _call(
        self,
        nsid: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        method: str = "POST",
    ) -> dict[str, Any]:
        """An authorized XRPC call; an expired session is renewed once and the call repeated."""
        renewed = False
        while True:
            session = await self._session()
            key = self.budget_key(session.did)
            await self._budget.before_request(key, network=NETWORK)
            response = await self._send(
                method, nsid, json=json, params=params, token=session.access_jwt, key=key
            )
            if response.status_code == 200:
                return json_body(response)
            failed = _XrpcError(response)
            if failed.name == _EXPIRED and not renewed:
                renewed = True
                if not await self._refresh():
                    self.session = None  # the refresh token expired too: a new session
                continue
            raise failed

    async def _post_raw(
        self, nsid: str, *, json: dict[str, Any] | None, token: str | None, key: str
    ) -> httpx.Response:
        return await self._send("POST", nsid, json=json, params=None, token=token, key=key)

    async def _send(
        self,
        method: str,
        nsid: str,
        *,
        json: dict[str, Any] | None,
        params: dict[str, str] | None,
        token: str | None,
        key: str,
    ) -> httpx.Response:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = await self._http.request(
                method, f"{self.service}/xrpc/{nsid}", json=json, params=params, headers=headers
            )
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            NETWORK_REQUESTS.labels("bluesky", "unreachable").inc()
            raise unreachable(NETWORK, exc) from exc
        seen = bluesky_rate_limit(response.headers, now=self._budget.now())
        await self._budget.observe(key, seen)
        if response.status_code == 429:
            NETWORK_REQUESTS.labels("bluesky", "rate_limited").inc()
            raise await self._budget.limited(key, seen, response.headers, network=NETWORK)
        if response.status_code != 200:
            NETWORK_REQUESTS.labels("bluesky", "error").inc()
        return response

    def _error(self, failed: _XrpcError) -> Exception:
        status = failed.response.status_code
        message = f"Bluesky {status} {failed.name or 'error'}: {failed.said}"
        if status == 401 or failed.name in _BAD_TOKEN or failed.name == _EXPIRED:
            return CredentialsRejectedError(f"{message} (the account must sign in again)")
        if status in (408, 425) or status >= 500:
            return TransientError(message, retry_after=wait_from_header(failed.response.headers))
        if status == 400 and "longer than" in failed.said:
            return PostTooLongError(message)
        return NetworkRefusedError(message)


def _may_exist(failed: _XrpcError) -> bool:
    """Whether a refused `createRecord` may mean the record is already there."""
    status = failed.response.status_code
    if status >= 500:
        return True
    said = failed.said.lower()
    return status in (400, 409) and ("already" in said or failed.name == "InvalidSwap")


def _datetime(at: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and `Z`, as Bluesky's own clients write it."""
    if at.tzinfo is None:
        raise ValueError("created_at must carry a time zone")
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
