"""No project can aim the scanner, or its token, at an address of its choosing.

Each test has a loopback listener (`Trap`) standing for an internal service; it must receive
nothing. Where the refusal is a connection that did not happen, a positive control shows the
same request reaching the trap once its address is allowed, so the silence is the guard's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from services.scanner.scan import GitHubAccess, scan
from shared.errors import ConfigurationError, PermanentError
from shared.events import JobDue
from shared.outbound import (
    ForbiddenDestinationError,
    GuardedBackend,
    IPAddress,
    PreflightTransport,
    guarded_client,
    guarded_transport,
    parse_networks,
)
from tests.support.factories import scan_due
from tests.support.fakes.github import FakeGitHub, commit
from tests.support.trap import SECRET_BODY, Trap

TOKEN = "ghp_server_wide_token"
LOOPBACK = parse_networks(["127.0.0.1/32", "::1/128"])
START = datetime(2025, 3, 1, tzinfo=UTC)
END = datetime(2025, 3, 8, tzinfo=UTC)


@pytest.fixture
def trap() -> Iterator[Trap]:
    listener = Trap()
    yield listener
    listener.close()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub(token=TOKEN)
    server = fake.serve()
    fake.base_url = server.url  # type: ignore[attr-defined]
    fake.add_repo(
        "octo",
        "repo",
        commits=[
            commit(f"{n:040x}", f"Change {n}", START + timedelta(minutes=n + 1)) for n in range(150)
        ],
    )
    yield fake
    server.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The scanner's client as an operator running a local GitHub double would set it."""
    async with guarded_client(LOOPBACK, timeout=httpx.Timeout(5.0)) as client:
        yield client


async def run(http: httpx.AsyncClient, event: JobDue, access: GitHubAccess) -> object:
    return await scan(event, http=http, github=access, local_repos_root="/nonexistent")


@pytest.mark.parametrize(
    "url",
    [
        "{trap}/api/v3",
        "{trap}/latest/meta-data",
        "http://localhost:{port}/",
        "http://[::1]:{port}/api",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0:{port}/",
    ],
)
async def test_a_base_url_the_operator_did_not_allow_gets_no_request_and_no_token(
    github: FakeGitHub, http: httpx.AsyncClient, trap: Trap, url: str
) -> None:
    access = GitHubAccess.of(github.base_url, TOKEN)  # type: ignore[attr-defined]
    target = url.format(trap=trap.origin, port=trap.port)

    with pytest.raises(ConfigurationError, match="must be on a host this server allows") as e:
        await run(http, scan_due(base_url=target), access)

    assert trap.received == []
    assert github.requests == []
    assert TOKEN not in e.value.message


async def test_an_allowed_name_that_resolves_to_loopback_is_refused_at_connection(
    trap: Trap,
) -> None:
    access = GitHubAccess.of(f"http://localhost:{trap.port}", TOKEN)

    async with guarded_client((), timeout=httpx.Timeout(5.0)) as http:
        with pytest.raises(ForbiddenDestinationError, match="localhost resolves to a loopback"):
            await run(http, scan_due(), access)
    assert trap.received == []

    # Control: the same scan with loopback allowed reaches the trap, and quotes none of it.
    async with guarded_client(LOOPBACK, timeout=httpx.Timeout(5.0)) as http:
        with pytest.raises(PermanentError) as failed:
            await run(http, scan_due(), access)
    assert len(trap.received) == 1
    assert failed.value.message == "GitHub 404: Not Found"
    assert SECRET_BODY.decode() not in failed.value.message


async def test_dns_rebinding_cannot_pass_the_check_made_at_connection(trap: Trap) -> None:
    """A name that answers a public address when checked and loopback when connected to."""
    answers: list[list[IPAddress]] = [
        [ipaddress.ip_address("140.82.112.5")],
        [ipaddress.ip_address("127.0.0.1")],
    ]

    async def rebinding(host: str, port: int) -> list[IPAddress]:
        return answers.pop(0)

    backend = GuardedBackend((), resolver=rebinding)
    # The first look (as a validation step would make) sees a public address and passes.
    assert await backend.addresses("rebind.example", trap.port) == [
        ipaddress.ip_address("140.82.112.5")
    ]
    # The connection resolves again, sees loopback, and connects to nothing.
    async with guarded_client((), timeout=httpx.Timeout(5.0), resolver=rebinding) as http:
        with pytest.raises(ForbiddenDestinationError, match="loopback"):
            await http.get(f"http://rebind.example:{trap.port}/")
    assert trap.received == []


async def test_each_address_is_checked_and_a_mixed_answer_is_refused(trap: Trap) -> None:
    async def mixed(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.0.0.7")]

    allowed_loopback_only = parse_networks(["127.0.0.1/32"])
    async with guarded_client(
        allowed_loopback_only, timeout=httpx.Timeout(5.0), resolver=mixed
    ) as http:
        with pytest.raises(ForbiddenDestinationError, match="private"):
            await http.get(f"http://mixed.example:{trap.port}/")
    assert trap.received == []


async def test_a_next_page_on_another_origin_is_not_followed(
    github: FakeGitHub, http: httpx.AsyncClient, trap: Trap
) -> None:
    github.link_origin = trap.origin

    with pytest.raises(PermanentError, match="next page is on another origin"):
        await run(http, scan_due(), GitHubAccess.of(github.base_url, TOKEN))  # type: ignore[attr-defined]

    assert trap.received == []
    assert len(github.requests) == 1


async def test_a_moved_repository_is_followed_on_its_own_origin(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    github.move(github.repos[1000], "octo-org", "renamed")

    result = await scan(
        scan_due(owner="octo", name="repo"),
        http=http,
        github=GitHubAccess.of(github.base_url, TOKEN),  # type: ignore[attr-defined]
        local_repos_root="/nonexistent",
    )

    assert result.summary.commits == 150
    assert github.paths()[:3] == [
        "/repos/octo/repo/commits",
        "/repositories/1000/commits",
        "/repositories/1000/commits",
    ]
    assert {seen.status for seen in github.requests[:1]} == {301}


async def test_a_redirect_to_another_origin_is_refused(
    github: FakeGitHub, http: httpx.AsyncClient, trap: Trap
) -> None:
    github.move(github.repos[1000], "octo-org", "renamed")
    github.redirect_origin = trap.origin

    with pytest.raises(PermanentError, match="redirected to another origin"):
        await run(http, scan_due(), GitHubAccess.of(github.base_url, TOKEN))  # type: ignore[attr-defined]

    assert trap.received == []


async def test_the_server_token_goes_only_to_its_own_github(
    github: FakeGitHub, http: httpx.AsyncClient
) -> None:
    enterprise = FakeGitHub(token=None)
    server = enterprise.serve()
    try:
        enterprise.add_repo("corp", "app", commits=[commit("a" * 40, "Fix", END)])
        access = GitHubAccess.of(github.base_url, TOKEN, [server.url])  # type: ignore[attr-defined]

        await run(http, scan_due("corp", "app", f"{server.url}/api/v3"), access)
        await run(http, scan_due(), access)
    finally:
        server.close()

    assert enterprise.requests
    assert all("authorization" not in seen.headers for seen in enterprise.requests)
    # Control: the server's own GitHub did get the token.
    assert {seen.headers.get("authorization") for seen in github.requests} == {f"Bearer {TOKEN}"}


async def test_the_pinned_httpx_gets_the_connection_time_guard_not_the_fallback() -> None:
    transport = guarded_transport()
    try:
        assert not isinstance(transport, PreflightTransport)
    finally:
        await transport.aclose()


async def test_the_fallback_checks_each_request_before_it_is_sent(trap: Trap) -> None:
    fallback = PreflightTransport(httpx.AsyncHTTPTransport(), GuardedBackend(()))
    async with httpx.AsyncClient(transport=fallback) as http:
        with pytest.raises(ForbiddenDestinationError, match="loopback"):
            await http.get(f"{trap.origin}/")
    assert trap.received == []
