"""The one guard on requests whose destination a tenant's data can steer.

A project names a GitHub API base URL, a Slack or a Discord webhook; GitHub's `Link` headers
and redirects name further URLs. herald sends such a request only when two checks pass:

1. Its origin (scheme, host, port) is one the operator allows for that purpose
   (`OriginAllowList`), and every further page or redirect keeps the origin it started from.
2. At connection time, every address the host resolves to is publicly routable, or lies in a
   network the operator allowed (`HERALD_OUTBOUND_ALLOW_NETWORKS`). The check happens in the
   HTTP client's network backend, on the address it then connects to, so a name that resolves
   to a public address when checked and to 127.0.0.1 a moment later (DNS rebinding) cannot
   pass, and neither can a redirect nor a pooled origin the first check never saw.

Requests to destinations only the operator names (Resend, the AI provider) need neither and
use plain clients.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import structlog

from shared.errors import ConfigurationError

log = structlog.get_logger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 6052's well-known NAT64 prefix embeds an IPv4 address a gateway would reach for us.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_PATH = re.compile(r"^(?:/[A-Za-z0-9._~-]+)*/?$")


class ForbiddenDestinationError(ConfigurationError):
    """herald does not send requests to that destination."""


@dataclass(frozen=True, order=True)
class Origin:
    """Scheme, host and port: what a browser would call the same site."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS.get(self.scheme):
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


def parse_url(url: str | httpx.URL) -> httpx.URL:
    """Parse a URL as the HTTP client will, refusing what it should never be sent to."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ForbiddenDestinationError("must be a valid URL") from exc
    if parsed.scheme not in _DEFAULT_PORTS:
        raise ForbiddenDestinationError("must be an http or https URL")
    if not parsed.host:
        raise ForbiddenDestinationError("must name a host")
    if parsed.userinfo:
        raise ForbiddenDestinationError("must not carry a user name or password")
    return parsed


def origin_of(url: str | httpx.URL) -> Origin:
    parsed = parse_url(url)
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    return Origin(parsed.scheme, parsed.host.lower().rstrip("."), port)


def same_origin(url: str | httpx.URL, base: str | httpx.URL) -> bool:
    try:
        return origin_of(url) == origin_of(base)
    except ForbiddenDestinationError:
        return False


class OriginAllowList:
    """The origins allowed for one purpose (GitHub's API, Slack's webhooks, ...)."""

    def __init__(self, origins: Iterable[str | Origin]) -> None:
        self.origins = frozenset(
            origin if isinstance(origin, Origin) else origin_of(_with_scheme(origin))
            for origin in origins
        )

    def __contains__(self, url: object) -> bool:
        if not isinstance(url, str | httpx.URL):
            return False
        try:
            return origin_of(url) in self.origins
        except ForbiddenDestinationError:
            return False

    def describe(self) -> str:
        return ", ".join(str(origin) for origin in sorted(self.origins)) or "none"

    def check(self, url: str | httpx.URL, *, what: str = "") -> httpx.URL:
        """Return the parsed URL, or refuse it with a message naming `what` and the rule."""
        subject = f"{what} " if what else ""
        try:
            parsed = parse_url(url)
        except ForbiddenDestinationError as exc:
            raise ForbiddenDestinationError(f"{subject}{exc.message}") from None
        if parsed.query or parsed.fragment:
            raise ForbiddenDestinationError(f"{subject}must not carry a query or fragment")
        origin = origin_of(parsed)
        if origin not in self.origins:
            raise ForbiddenDestinationError(
                f"{subject}must be on a host this server allows ({self.describe()}), not {origin}"
            )
        return parsed

    def check_base(self, url: str, *, what: str = "") -> str:
        """Check an API base URL (origin plus a plain path) and return it without a final /."""
        parsed = self.check(url, what=what)
        if not _PATH.match(parsed.raw_path.decode("ascii", "replace")):
            subject = f"{what} " if what else ""
            raise ForbiddenDestinationError(
                f"{subject}must be an origin and a plain path such as /api/v3"
            )
        return str(parsed).rstrip("/")


def _with_scheme(origin: str) -> str:
    return origin if "://" in origin else f"https://{origin}"


def refusal(address: IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """Why herald refuses to connect to `address`, or None when it may."""
    if any(address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            return refusal(embedded, allowed)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network("fc00::/7"):
        return "a unique-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global or address.is_reserved:
        return "an address that is not publicly routable"
    return None


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The operator's allowed networks (`10.0.0.0/8`, `127.0.0.1`), each validated."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values if value)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host` (an IP literal resolves to itself)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
    # The scope of a link-local IPv6 address follows a %; it is refused either way.
    return list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos)
    )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses `refusal` allows, and only to the address it checked."""

    def __init__(
        self,
        allowed: tuple[IPNetwork, ...] = (),
        *,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._allowed = allowed
        self._resolve = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def addresses(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the connect timeout httpcore passes
    ) -> list[IPAddress]:
        """Resolve `host` and return its addresses, or refuse it if any one is refused."""
        async with asyncio.timeout(timeout):
            addresses = await self._resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        # One refused address refuses the name: which one a connection would use is not ours
        # to choose, and a name that mixes public and internal answers is itself suspect.
        for address in addresses:
            reason = refusal(address, self._allowed)
            if reason is not None:
                log.warning("outbound request refused", host=host, port=port, reason=reason)
                verb = "is" if addresses == [_literal(host)] else "resolves to"
                raise ForbiddenDestinationError(
                    f"{host} {verb} {reason}, which herald does not connect to"
                )
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.addresses(host, port, timeout)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ForbiddenDestinationError("herald does not connect to local sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    allowed: tuple[IPNetwork, ...] = (),
    *,
    limits: httpx.Limits | None = None,
    resolver: Resolver = system_resolver,
) -> httpx.AsyncBaseTransport:
    """An httpx transport whose every new connection passes `GuardedBackend`'s check.

    httpx 0.28 takes no network backend, so the transport's connection pool (`_pool`, an
    `httpcore.AsyncConnectionPool`) is replaced by one built with the guarded backend and the
    same TLS context and limits. That leans on one private attribute of a pinned httpx; if it
    is ever missing, `PreflightTransport` checks every request before it is sent instead.
    """
    limits = limits or httpx.Limits()
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    backend = GuardedBackend(allowed, resolver=resolver)
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        log.warning("httpx has no connection pool to guard; checking each request instead")
        return PreflightTransport(transport, backend)
    transport._pool = httpcore.AsyncConnectionPool(
        # What httpx builds by default: certifi's roots, verification on.
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=backend,
    )
    return transport


class PreflightTransport(httpx.AsyncBaseTransport):
    """The plain fallback: resolve and check the host before each request is sent.

    Weaker than the backend (the connection resolves the name again), kept for an httpx whose
    internals moved; `guarded_transport` logs when it is in use.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, backend: GuardedBackend) -> None:
        self._inner = inner
        self._backend = backend

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        await self._backend.addresses(url.host, url.port or _DEFAULT_PORTS[url.scheme])
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def guarded_client(
    allowed: tuple[IPNetwork, ...] = (),
    *,
    timeout: httpx.Timeout,
    limits: httpx.Limits | None = None,
    resolver: Resolver = system_resolver,
) -> httpx.AsyncClient:
    """An httpx client for tenant-steered requests: guarded, redirects never followed."""
    return httpx.AsyncClient(
        transport=guarded_transport(allowed, limits=limits, resolver=resolver),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
