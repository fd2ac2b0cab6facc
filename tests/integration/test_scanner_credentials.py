"""Credentials per project against the local GitHub server: App installations, own tokens."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
import redis.asyncio as redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.scanner.budget import GitHubBudget, credential_key
from services.scanner.credentials import GitHubApp
from services.scanner.github import ETagCache
from services.scanner.scan import GitHubAccess, ScanResult, scan
from shared.budgets import Budgets
from shared.errors import BudgetExhaustedError, ConfigurationError, PermanentError
from shared.events import GitHubCredential, JobDue
from shared.outbound import guarded_client, parse_networks
from shared.secrets import encrypt, generate_key
from tests.support.factories import scan_due
from tests.support.fakes import github_app
from tests.support.fakes.github import FakeGitHub, commit
from tests.support.fakes.github_app import FakeApp

START = datetime(2025, 3, 1, tzinfo=UTC)
TOKEN = "ghp_server_token"
OWN_TOKEN = "github_pat_11AAAAAAA0project0own0token"
APP_ID = "12345"
SECRET_KEY = generate_key()


def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem_of(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


KEY = private_key()


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub(token=TOKEN)
    fake.app = FakeApp(APP_ID, public_pem(KEY))
    fake.tokens[OWN_TOKEN] = github_app.RateBudget()
    for name in ("repo", "other"):
        fake.add_repo(
            "octo",
            name,
            commits=[commit(f"{n:040x}", "Fix", START + timedelta(1)) for n in range(3)],
        )
    server = fake.serve()
    yield fake, server.url
    server.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with guarded_client(parse_networks(["127.0.0.1/32"]), timeout=httpx.Timeout(5.0)) as c:
        yield c


def access(
    url: str,
    http: httpx.AsyncClient,
    *,
    key: str | None = None,
    clock: Callable[[], float] = time.time,
) -> GitHubAccess:
    app = GitHubApp(
        app_id=APP_ID, private_key=key or pem_of(KEY), api_url=url, http=http, clock=clock
    )
    return GitHubAccess.of(url, TOKEN, app=app, secret_key=SECRET_KEY)


def due(
    name: str = "repo",
    *,
    owner: str = "octo",
    installation_id: int | None = None,
    token: str | None = None,
    base_url: str | None = None,
) -> JobDue:
    event = scan_due(owner=owner, name=name, base_url=base_url)
    credential = GitHubCredential(
        installation_id=installation_id,
        token=encrypt(token, SECRET_KEY) if token else None,
    )
    return event.model_copy(update={"github_credential": credential})


async def run(
    github: GitHubAccess,
    http: httpx.AsyncClient,
    event: JobDue,
    budget: GitHubBudget | None = None,
) -> ScanResult:
    return await scan(
        event, http=http, github=github, local_repos_root="/nonexistent", budget=budget
    )


def authorizations(fake: FakeGitHub, path_end: str = "/commits") -> list[str]:
    return [s.headers["authorization"] for s in fake.requests if s.path.endswith(path_end)]


async def test_a_named_installation_reads_with_a_minted_token_and_a_proper_jwt(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})
    before = time.time()

    result = await run(access(url, http), http, due(installation_id=installation.id))

    assert result.summary.commits == 3
    assert result.credential == "app"
    assert fake.app.minted == [installation.id]
    (minted,) = fake.app.tokens
    assert authorizations(fake) == [f"Bearer {minted}"]
    claims = fake.app.jwts[0]
    assert claims["iss"] == APP_ID  # a string, as GitHub asks
    assert claims["iat"] <= before - 59
    assert 0 < claims["exp"] - time.time() < 600
    # The installation's own budget was spent and reported, not the server token's.
    assert installation.budget.remaining == installation.budget.limit - 2
    assert fake.remaining == fake.limit
    assert result.rate_limit is not None
    assert result.rate_limit.remaining == installation.budget.remaining


async def test_a_named_installations_token_is_reused_until_close_to_its_expiry(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})
    github_access = access(url, http)

    first = await run(github_access, http, due(installation_id=installation.id))
    second = await run(github_access, http, due(installation_id=installation.id))

    assert (first.credential, second.credential) == ("app", "app")
    assert fake.app.minted == [installation.id]  # cached until shortly before it expires


async def test_a_project_naming_no_installation_never_reads_through_one_on_its_repository(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    """Bob's project on Alice's private repository, which holds herald's App: GitHub would
    name Alice's installation for it, so the scanner never asks."""
    fake, url = github
    assert fake.app is not None
    fake.add_repo(
        "acme",
        "secret",
        private=True,
        commits=[commit(f"{n:040x}", "feat: unreleased", START + timedelta(1)) for n in range(2)],
    )
    alices = fake.app.install("acme", {1002})
    github_access = access(url, http)
    pages = ETagCache()  # one scanner process: its page cache and minted tokens shared
    alice = due("secret", owner="acme", installation_id=alices.id)
    bob = due("secret", owner="acme")

    read = await scan(
        alice, http=http, github=github_access, local_repos_root="/nonexistent", etags=pages
    )
    assert (read.credential, read.summary.commits) == ("app", 2)
    seen_by_alice = len(fake.requests)
    with pytest.raises(PermanentError, match="GitHub 404"):
        await scan(
            bob, http=http, github=github_access, local_repos_root="/nonexistent", etags=pages
        )

    assert fake.app.minted == [alices.id]  # Alice's scan alone
    assert not [s for s in fake.requests if s.path.endswith("/installation")]
    bobs = fake.requests[seen_by_alice:]
    assert bobs and {s.headers["authorization"] for s in bobs} == {f"Bearer {TOKEN}"}
    assert {s.status for s in bobs} == {404}  # what the server's token may read, no more
    assert "if-none-match" not in bobs[0].headers  # none of Alice's cached pages offered


async def test_a_project_naming_no_installation_reads_with_the_servers_token_where_one_is(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})

    result = await run(access(url, http), http, due())

    assert result.credential == "global"
    assert authorizations(fake) == [f"Bearer {TOKEN}"]
    assert fake.app.minted == [] and fake.app.jwts == []
    assert installation.budget.remaining == installation.budget.limit


async def test_a_misconfigured_app_never_affects_a_project_naming_no_installation(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000, 1001})
    broken = access(url, http, key=pem_of(private_key()))  # not the App's key

    own = await run(broken, http, due(token=OWN_TOKEN))
    server = await run(broken, http, due("other"))
    with pytest.raises(ConfigurationError, match=github_app.BAD_JWT):
        await run(broken, http, due(installation_id=installation.id))

    assert (own.credential, own.summary.commits) == ("token", 3)
    assert (server.credential, server.summary.commits) == ("global", 3)
    app_requests = [s for s in fake.requests if s.path.startswith("/app/")]
    assert [s.status for s in app_requests] == [401]  # the named installation's mint alone
    assert not [s for s in fake.requests if s.path.endswith("/installation")]


async def test_a_token_close_to_its_expiry_is_minted_again(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    fake.app.token_lifetime = 240  # under the five minutes herald keeps in hand
    installation = fake.app.install("octo", {1000})
    github_access = access(url, http)

    await run(github_access, http, due(installation_id=installation.id))
    await run(github_access, http, due(installation_id=installation.id))

    assert fake.app.minted == [installation.id, installation.id]


async def test_an_expired_token_is_minted_again_once(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})
    github_access = access(url, http)
    await run(github_access, http, due(installation_id=installation.id))
    fake.app.expire_tokens()  # GitHub says 401 before herald thought it would

    result = await run(github_access, http, due(installation_id=installation.id))

    assert result.summary.commits == 3
    assert fake.app.minted == [installation.id, installation.id]
    statuses = [s.status for s in fake.requests if s.path.endswith("/commits")]
    assert statuses == [200, 401, 200]


async def test_a_token_refused_even_when_fresh_fails_after_one_renewal(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})
    fake.app.token_lifetime = -1  # every token is born expired

    with pytest.raises(PermanentError, match="GitHub 401: Bad credentials"):
        await run(access(url, http), http, due(installation_id=installation.id))

    assert fake.app.minted == [installation.id, installation.id]


async def test_a_suspended_installation_fails_saying_so_and_what_to_do(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})
    installation.suspended = True

    with pytest.raises(PermanentError) as caught:
        await run(access(url, http), http, due(installation_id=installation.id))

    message = caught.value.message
    assert f"installation {installation.id} is suspended" in message
    assert "This installation has been suspended" in message
    assert "unsuspend" in message and "githubInstallationId" in message
    assert authorizations(fake) == []


async def test_a_removed_installation_fails_saying_so_and_what_to_do(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})
    fake.app.uninstall(installation.id)

    with pytest.raises(PermanentError, match="was not found") as caught:
        await run(access(url, http), http, due(installation_id=installation.id))

    assert "Install herald's GitHub App" in caught.value.message


@pytest.mark.parametrize(
    ("status", "said"),
    [("suspended", "is suspended"), ("removed", "was removed from its account")],
)
async def test_an_installation_github_said_is_suspended_or_removed_fails_before_asking(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient, status: str, said: str
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})  # still answers: the event is what counts
    event = due(installation_id=installation.id)
    assert event.github_credential is not None
    told = event.github_credential.model_copy(update={"installation_status": status})

    with pytest.raises(PermanentError) as caught:
        await run(access(url, http), http, event.model_copy(update={"github_credential": told}))

    assert f"installation {installation.id} {said}" in caught.value.message
    assert "githubInstallationId" in caught.value.message
    assert fake.app.minted == [] and fake.requests == []


@pytest.mark.parametrize(
    ("skew", "message"),
    [
        (120.0, github_app.IAT_FUTURE),  # this server's clock runs ahead: `iat` in the future
        (-700.0, github_app.EXP_PAST),  # far behind: `exp` already past
    ],
)
async def test_a_jwt_from_a_skewed_clock_is_refused_with_githubs_message(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient, skew: float, message: str
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})
    skewed = access(url, http, clock=lambda: time.time() + skew)

    with pytest.raises(ConfigurationError, match="HERALD_GITHUB_APP_PRIVATE_KEY") as caught:
        await run(skewed, http, due(installation_id=installation.id))

    assert message in caught.value.message


async def test_a_jwt_signed_with_another_key_cannot_be_decoded(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})

    with pytest.raises(ConfigurationError, match=github_app.BAD_JWT):
        await run(
            access(url, http, key=pem_of(private_key())), http, due(installation_id=installation.id)
        )


async def test_a_jwt_expiring_over_ten_minutes_ahead_is_too_far_in_the_future(
    github: tuple[FakeGitHub, str],
) -> None:
    _, url = github
    now = int(time.time())
    claims = {"iat": now - 60, "exp": now + 900, "iss": APP_ID}
    signed = jwt.encode(claims, pem_of(KEY), algorithm="RS256")

    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{url}/app/installations/1/access_tokens",
            headers={"Authorization": f"Bearer {signed}", "User-Agent": "test"},
        )

    assert answer.status_code == 401
    assert answer.json()["message"] == github_app.EXP_TOO_FAR


async def test_without_an_installation_the_projects_own_token_is_used(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github

    result = await run(access(url, http), http, due(token=OWN_TOKEN))

    assert result.credential == "token"
    assert authorizations(fake) == [f"Bearer {OWN_TOKEN}"]
    assert fake.tokens[OWN_TOKEN].remaining == fake.tokens[OWN_TOKEN].limit - 2
    assert fake.remaining == fake.limit


async def test_without_either_the_servers_token_is_used(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github

    result = await run(access(url, http), http, due())

    assert result.credential == "global"
    assert authorizations(fake) == [f"Bearer {TOKEN}"]


async def test_an_installation_token_of_five_hundred_characters_is_sent_whole(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    fake.app.long_tokens = True
    installation = fake.app.install("octo", {1000})

    result = await run(access(url, http), http, due(installation_id=installation.id))

    (minted,) = fake.app.tokens
    assert len(minted) > 500
    assert result.credential == "app" and authorizations(fake) == [f"Bearer {minted}"]


async def test_an_enterprise_project_gets_its_own_token_and_never_the_servers_or_the_apps(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    enterprise = FakeGitHub(token=OWN_TOKEN)
    enterprise.add_repo("octo", "repo", commits=[commit("a" * 40, "Fix", START + timedelta(1))])
    server = enterprise.serve()
    try:
        app = GitHubApp(app_id=APP_ID, private_key=pem_of(KEY), api_url=url, http=http)
        github_access = GitHubAccess.of(url, TOKEN, [server.url], app=app, secret_key=SECRET_KEY)
        base = f"{server.url}/api/v3"

        result = await run(github_access, http, due(token=OWN_TOKEN, base_url=base))
        with pytest.raises(ConfigurationError, match="reads only"):
            await run(github_access, http, due(installation_id=7, base_url=base))
    finally:
        server.close()

    assert result.credential == "token"
    assert {s.headers["authorization"] for s in enterprise.requests} == {f"Bearer {OWN_TOKEN}"}
    assert fake.requests == []  # no installation lookup, no JWT, on the server's GitHub


async def test_an_installation_without_an_app_configured_is_a_configuration_error(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    _, url = github
    github_access = GitHubAccess.of(url, TOKEN, secret_key=SECRET_KEY)

    with pytest.raises(ConfigurationError, match="HERALD_GITHUB_APP_ID"):
        await run(github_access, http, due(installation_id=5))


async def test_two_installations_spend_their_own_budgets(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient, redis_budgets: tuple[str, str]
) -> None:
    fake, url = github
    assert fake.app is not None
    busy = fake.app.install("octo", {1000}, limit=1)
    quiet = fake.app.install("octo", {1001})
    redis_url, prefix = redis_budgets
    budgets = Budgets(redis_url, prefix=prefix)
    budget = GitHubBudget(budgets, reserve=0)
    github_access = access(url, http)
    try:
        with pytest.raises(BudgetExhaustedError):
            await run(github_access, http, due("repo", installation_id=busy.id), budget)
        result = await run(github_access, http, due("other", installation_id=quiet.id), budget)

        assert result.summary.commits == 3
        assert await budgets.paused_for(f"github:installation:{busy.id}") > 0
        assert await budgets.paused_for(f"github:installation:{quiet.id}") == 0
        assert await budgets.paused_for(credential_key(TOKEN)) == 0
        # The fleet's keys name credentials, never hold their tokens.
        store = redis.Redis.from_url(redis_url)
        keys = [key.decode() async for key in store.scan_iter(f"{prefix}*")]
        await store.aclose()
        assert f"{prefix}:pause:github:installation:{busy.id}" in keys
        assert not any(token in key for key in keys for token in fake.app.tokens)
    finally:
        await budgets.close()
    assert quiet.budget.remaining == quiet.budget.limit - 2
    assert busy.budget.remaining == 0


async def test_a_named_installation_reads_a_moved_repository_through_the_move(
    github: tuple[FakeGitHub, str], http: httpx.AsyncClient
) -> None:
    fake, url = github
    assert fake.app is not None
    installation = fake.app.install("octo", {1000})
    fake.move(fake.repos[1000], "octo-org", "renamed")

    result = await run(access(url, http), http, due(installation_id=installation.id))

    assert (result.credential, result.summary.commits) == ("app", 3)
    assert result.moved_to is not None and result.moved_to.name == "renamed"
    assert fake.app.minted == [installation.id]
    assert not [s for s in fake.requests if s.path.endswith("/installation")]
