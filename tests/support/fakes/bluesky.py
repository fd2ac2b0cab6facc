"""A local Bluesky PDS: the XRPC calls herald publishes with, answered as the PDS answers them
(docs/publishing.md).

- `com.atproto.server.createSession` (identifier + app password; 401 AuthenticationRequired
  "Invalid identifier or password"), `refreshSession` (the refresh token rotates; a spent one
  answers 400 ExpiredToken "Token has been revoked").
- Access tokens are HS256 JWTs that expire after `access_lifetime` seconds of `clock`: an
  expired one answers 400 `{"error": "ExpiredToken", "message": "Token has expired"}`, one that
  does not verify 400 InvalidToken, a missing one 401 AuthMissing.
- `com.atproto.repo.createRecord` validates an `app.bsky.feed.post` (text at most 300
  graphemes and 3,000 bytes, `createdAt`, at most 3 `langs`, facets whose byte ranges lie
  within the text), takes a TID `rkey`, and refuses a second record at a key as the PDS does:
  500 InternalServerError (its repository tree throws). `getRecord` answers a record, or 400
  RecordNotFound.
- Repository writes cost 3 points of `write_points` per hour per DID, reported in
  `RateLimit-Limit/Remaining/Reset/Policy`; past them, 429 RateLimitExceeded.
- `lose_next_answer` commits the next record and then answers 502, as a proxy that timed out;
  `delay_next_answer` commits it and answers only after that many seconds.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.post_length import graphemes

POST = "app.bsky.feed.post"
_TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
_SECRET = "a-local-pds-signing-secret-of-32-bytes-or-more"
CREATE_POINTS = 3


@dataclass
class Account:
    did: str
    handle: str
    app_password: str


@dataclass
class FakeBluesky:
    access_lifetime: float = 120 * 60
    refresh_lifetime: float = 90 * 24 * 3600
    write_points: int = 5000
    write_window: float = 3600
    clock: Callable[[], float] = time.time
    accounts: list[Account] = field(default_factory=list)
    records: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    lose_next_answer: bool = False
    delay_next_answer: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._jti = itertools.count(1)
        self._live_refresh: set[str] = set()
        self._windows: dict[str, tuple[float, int]] = {}
        nsids = {
            "com.atproto.server.createSession": self._create_session,
            "com.atproto.server.refreshSession": self._refresh_session,
            "com.atproto.repo.createRecord": self._create_record,
            "com.atproto.repo.getRecord": self._get_record,
        }
        self.asgi = Starlette(
            routes=[
                Route(f"/xrpc/{nsid}", handler, methods=["GET" if "get" in nsid else "POST"])
                for nsid, handler in nsids.items()
            ]
        )

    def add_account(self, handle: str, app_password: str) -> Account:
        digest = hashlib.sha256(handle.encode()).digest()
        did = "did:plc:" + base64.b32encode(digest).decode().lower()[:24]
        account = Account(did, handle, app_password)
        self.accounts.append(account)
        return account

    def count(self, nsid: str) -> int:
        return self.calls.count(nsid)

    def posts(self, did: str) -> list[dict[str, Any]]:
        return [
            record["value"]
            for (owner, collection, _), record in self.records.items()
            if owner == did and collection == POST
        ]

    # Sessions

    def _tokens(self, account: Account) -> dict[str, Any]:
        now = self.clock()
        jti = f"r{next(self._jti)}"
        self._live_refresh.add(jti)
        access = {"scope": "com.atproto.appPass", "sub": account.did, "iat": int(now)}
        refresh = {"scope": "com.atproto.refresh", "sub": account.did, "jti": jti}
        return {
            "did": account.did,
            "handle": account.handle,
            "accessJwt": jwt.encode({**access, "exp": now + self.access_lifetime}, _SECRET),
            "refreshJwt": jwt.encode({**refresh, "exp": now + self.refresh_lifetime}, _SECRET),
            "active": True,
        }

    async def _create_session(self, request: Request) -> JSONResponse:
        self.calls.append("com.atproto.server.createSession")
        body = await _json(request)
        for account in self.accounts:
            if body.get("identifier") in (account.handle, account.did) and body.get("password") == (
                account.app_password
            ):
                with self._lock:
                    return JSONResponse(self._tokens(account))
        return _error(401, "AuthenticationRequired", "Invalid identifier or password")

    async def _refresh_session(self, request: Request) -> JSONResponse:
        self.calls.append("com.atproto.server.refreshSession")
        claims = self._verify(request, "com.atproto.refresh")
        if isinstance(claims, JSONResponse):
            return claims
        with self._lock:
            if claims.get("jti") not in self._live_refresh:
                return _error(400, "ExpiredToken", "Token has been revoked")
            self._live_refresh.discard(str(claims["jti"]))
            account = self._account(str(claims["sub"]))
            return JSONResponse(self._tokens(account))

    def _verify(self, request: Request, scope: str) -> dict[str, Any] | JSONResponse:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return _error(401, "AuthMissing", "Authentication Required")
        try:
            # Time is judged by this server's clock, which tests move, not by PyJWT's.
            claims: dict[str, Any] = jwt.decode(
                header[len("Bearer ") :],
                _SECRET,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:
            return _error(400, "InvalidToken", "Token could not be verified")
        if float(claims.get("exp", 0)) <= self.clock():
            return _error(400, "ExpiredToken", "Token has expired")
        allowed = {scope} | ({"com.atproto.access"} if scope == "com.atproto.appPass" else set())
        if claims.get("scope") not in allowed:
            return _error(400, "InvalidToken", "Bad token scope")
        return claims

    def _account(self, did: str) -> Account:
        return next(account for account in self.accounts if account.did == did)

    # Records

    async def _create_record(self, request: Request) -> JSONResponse:
        self.calls.append("com.atproto.repo.createRecord")
        claims = self._verify(request, "com.atproto.appPass")
        if isinstance(claims, JSONResponse):
            return claims
        account = self._account(str(claims["sub"]))
        body = await _json(request)
        if body.get("repo") not in (account.did, account.handle):
            return _error(401, "AuthenticationRequired", "Authentication Required")
        collection = str(body.get("collection") or "")
        record = body.get("record")
        if collection != POST or not isinstance(record, dict):
            return _error(400, "InvalidRequest", "Input/record must be an app.bsky.feed.post")
        problem = _invalid_post(record)
        if problem:
            return _error(400, "InvalidRequest", f"Invalid {POST} record: {problem}")
        rkey = str(body.get("rkey") or "")
        if not _TID.match(rkey):
            return _error(400, "InvalidRequest", f"Invalid {POST} record: rkey must be a TID")
        with self._lock:
            headers = self._spend(account.did, CREATE_POINTS)
            if int(headers["RateLimit-Remaining"]) < 0:
                headers["RateLimit-Remaining"] = "0"
                return _error(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)
            key = (account.did, collection, rkey)
            if key in self.records:
                # The repository's tree throws "There is already a value at key"; the PDS
                # does not catch it.
                return _error(500, "InternalServerError", "Internal Server Error")
            uri = f"at://{account.did}/{collection}/{rkey}"
            cid = _cid(record)
            self.records[key] = {"uri": uri, "cid": cid, "value": record}
        if self.lose_next_answer:
            self.lose_next_answer = False
            return _error(502, "UpstreamFailure", "Upstream Failure")
        if self.delay_next_answer:
            delay, self.delay_next_answer = self.delay_next_answer, 0.0
            await asyncio.sleep(delay)
        answer = {"uri": uri, "cid": cid, "commit": {"cid": _cid({"c": uri}), "rev": rkey}}
        return JSONResponse({**answer, "validationStatus": "valid"}, headers=headers)

    async def _get_record(self, request: Request) -> JSONResponse:
        self.calls.append("com.atproto.repo.getRecord")
        repo = request.query_params.get("repo", "")
        account = next((a for a in self.accounts if repo in (a.did, a.handle)), None)
        key = (
            account.did if account else repo,
            request.query_params.get("collection", ""),
            request.query_params.get("rkey", ""),
        )
        record = self.records.get(key)
        if record is None:
            return _error(400, "RecordNotFound", f"Could not locate record: at://{'/'.join(key)}")
        return JSONResponse(record)

    def _spend(self, did: str, points: int) -> dict[str, str]:
        now = self.clock()
        started, used = self._windows.get(did, (now, 0))
        if now - started >= self.write_window:
            started, used = now, 0
        if used + points <= self.write_points:
            used += points
            remaining = self.write_points - used
        else:
            remaining = -1
        self._windows[did] = (started, used)
        return {
            "RateLimit-Limit": str(self.write_points),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(math.ceil(started + self.write_window)),
            "RateLimit-Policy": f"{self.write_points};w={int(self.write_window)}",
        }


def _invalid_post(record: dict[str, Any]) -> str | None:
    """What the lexicon of `app.bsky.feed.post` refuses in `record`, or None."""
    if record.get("$type") != POST:
        return f"Record/$type must be {POST}"
    text = record.get("text")
    if not isinstance(text, str):
        return "Record/text must be a string"
    if len(text.encode("utf-8")) > 3000:
        return "Record/text must not be longer than 3000 characters"
    if graphemes(text) > 300:
        return "Record/text must not be longer than 300 graphemes"
    created = record.get("createdAt")
    try:
        parsed = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        return "Record/createdAt must be an valid atproto datetime (both RFC-3339 and ISO-8601)"
    langs = record.get("langs", [])
    if not isinstance(langs, list) or len(langs) > 3:
        return "Record/langs must not have more than 3 elements"
    size = len(text.encode("utf-8"))
    for number, facet in enumerate(record.get("facets", [])):
        index = facet.get("index", {}) if isinstance(facet, dict) else {}
        start, end = index.get("byteStart"), index.get("byteEnd")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= size):
            return f"Record/facets/{number}/index must lie within the text's {size} bytes"
    return None


def _cid(value: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).digest()
    return "bafyrei" + base64.b32encode(digest).decode().lower().rstrip("=")[:52]


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(
    status: int, name: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": name, "message": message}, status, headers=headers)
