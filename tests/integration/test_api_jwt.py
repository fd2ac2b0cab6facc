"""JWT bearer tokens verified against a local JWKS server; `sub` maps to a user."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.schema import User
from shared.ids import new_id
from shared.settings import Settings
from tests.support.api import api_client, problem, signed_in

ISSUER = "https://id.herald.test/"
AUDIENCE = "herald-api"


class Keys:
    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = new_id("kid")
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        self.jwks = {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, **claims}
        return jwt.encode(body, self.private, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def jwks_url(keys: Keys) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(keys.jwks).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


@pytest.fixture(params=[False, True], ids=["no-autoprovision", "autoprovision"])
async def api(
    request: pytest.FixtureRequest, database_url: str, fresh_amqp_url: str, jwks_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url,
        amqp_url=fresh_amqp_url,
        jwt_jwks_url=jwks_url,
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
        jwt_autoprovision=request.param,
    )
    async for client in api_client(settings):
        client.headers["X-Autoprovision"] = str(request.param)
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_known_subject_is_its_user_and_api_tokens_still_work(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], keys: Keys
) -> None:
    subject = new_id("sub")
    async with sessions() as session, session.begin():
        session.add(
            User(id=new_id("usr"), email=f"{subject}@herald-example.com", external_subject=subject)
        )
    response = await api.get("/api/me", headers=bearer(keys.token(sub=subject)))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["email"] == f"{subject}@herald-example.com"
    assert (await api.get("/api/me", headers=await signed_in(sessions))).status_code == 200


async def test_an_unknown_subject_is_created_only_when_autoprovisioning(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], keys: Keys
) -> None:
    autoprovision = api.headers["X-Autoprovision"] == "True"
    subject = new_id("sub")
    token = keys.token(sub=subject, email=f"{subject}@herald-example.com", name="Grace")
    response = await api.get("/api/me", headers=bearer(token))
    async with sessions() as session:
        users = (await session.scalars(select(User).where(User.external_subject == subject))).all()
    if autoprovision:
        assert response.status_code == 200, response.text
        assert response.json()["data"]["name"] == "Grace"
        assert len(users) == 1
        again = await api.get("/api/me", headers=bearer(token))
        assert again.json()["data"]["id"] == response.json()["data"]["id"]
    else:
        problem(response, 401)
        assert users == []


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 60},
        {"aud": "someone-else"},
        {"iss": "https://evil.test/"},
        {"sub": ""},
    ],
    ids=["expired", "audience", "issuer", "empty-sub"],
)
async def test_invalid_jwts_answer_401(
    api: httpx.AsyncClient, keys: Keys, claims: dict[str, Any]
) -> None:
    token = keys.token(**{"sub": new_id("sub"), **claims})
    problem(await api.get("/api/me", headers=bearer(token)), 401)


async def test_a_token_signed_by_another_key_answers_401(
    api: httpx.AsyncClient, keys: Keys
) -> None:
    forged = Keys()
    forged.kid = keys.kid  # the right key id, the wrong key
    problem(await api.get("/api/me", headers=bearer(forged.token(sub="x"))), 401)
    other = Keys()
    other_token = jwt.encode(
        {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
        other.private,
        algorithm="RS256",
        headers={"kid": "still-unknown"},
    )
    problem(await api.get("/api/me", headers=bearer(other_token)), 401)
    problem(await api.get("/api/me", headers=bearer("eyJhbGciOiJub25lIn0.e30.")), 401)
