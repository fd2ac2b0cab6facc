"""Where each tenant-steered request may go, as the operator's settings allow.

The api checks a URL when a tenant stores it; the scanner and the notifier check it again
before using it (a row written before a rule tightened, or an event written by hand, gets no
further), and their HTTP clients check every address they connect to (`shared.outbound`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from shared.outbound import (
    ForbiddenDestinationError,
    IPAddress,
    IPNetwork,
    OriginAllowList,
    origin_of,
    parse_networks,
    parse_url,
    refusal,
)
from shared.settings import Settings


@dataclass(frozen=True)
class WebhookRule:
    service: str
    path: re.Pattern[str]
    example: str


WEBHOOKS = {
    "slack": WebhookRule(
        "Slack", re.compile(r"/services/[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*"), "/services/T…/B…/…"
    ),
    "discord": WebhookRule(
        "Discord", re.compile(r"/api(?:/v\d+)?/webhooks/\d+/[A-Za-z0-9_-]+"), "/api/webhooks/…/…"
    ),
}


def allowed_networks(settings: Settings) -> tuple[IPNetwork, ...]:
    return parse_networks(settings.outbound_allow_networks)


def github_origins(settings: Settings) -> OriginAllowList:
    """The server's own GitHub API and the Enterprise origins the operator added."""
    return OriginAllowList([settings.github_api_url, *settings.github_enterprise_origins])


def webhook_origins(channel: str, settings: Settings) -> OriginAllowList:
    if channel == "slack":
        return OriginAllowList(settings.slack_webhook_origins)
    return OriginAllowList(settings.discord_webhook_origins)


def webhook_refusal(channel: str, url: str, settings: Settings) -> str | None:
    """Why a Slack or Discord webhook URL may not be used, or None when it may.

    The URL is a secret: the reason never quotes it.
    """
    rule = WEBHOOKS[channel]
    allowed = webhook_origins(channel, settings)
    if url != url.strip() or any(char.isspace() for char in url):
        return f"must be a {rule.service} incoming-webhook URL, without spaces or line breaks"
    try:
        parsed = allowed.check(url, what=f"a {rule.service} webhook URL")
    except ForbiddenDestinationError:
        parsed = None
    if parsed is None or not rule.path.fullmatch(parsed.raw_path.decode("ascii", "replace")):
        return (
            f"must be a {rule.service} incoming-webhook URL on {allowed.describe()}, "
            f"such as {rule.example}"
        )
    return None


# Names that are loopback by definition (RFC 6761), refused at once like 127.0.0.1.
_LOOPBACK_NAMES = ("localhost", ".localhost")


def webhook_job_refusal(url: str, settings: Settings) -> str | None:
    """Why a WEBHOOK job may not deliver to `url`, or None when it may.

    Checked when the URL is stored, and again by the generator before each delivery. A host
    given as an address (or `localhost`) is judged here by the outbound rule; a name is judged
    when the delivery connects, on every address it resolves to then (`shared.outbound`).
    The URL may embed a secret: the reason never quotes it.
    """
    if url != url.strip() or any(char.isspace() for char in url):
        return "must be a URL without spaces or line breaks"
    try:
        parsed = parse_url(url)
    except ForbiddenDestinationError as exc:
        return exc.message
    if parsed.scheme != "https" and not settings.webhook_allow_http:
        return "must be an https URL (this server does not allow http: HERALD_WEBHOOK_ALLOW_HTTP)"
    if parsed.fragment:
        return "must not carry a fragment (#...)"
    host = parsed.host.lower().rstrip(".")
    addresses: list[IPAddress] = []
    if host == _LOOPBACK_NAMES[0] or host.endswith(_LOOPBACK_NAMES[1]):
        addresses = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    else:
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            return None
    allowed = allowed_networks(settings)
    for address in addresses:
        reason = refusal(address, allowed)
        if reason is not None:
            return (
                f"must not point at {reason}, which herald does not connect to "
                "(the operator may allow a network: HERALD_OUTBOUND_ALLOW_NETWORKS)"
            )
    return None


def webhook_host(url: str) -> str:
    """Where a webhook URL points, safe to show: its host, and its port when not the usual."""
    origin = origin_of(url)
    shown = str(origin)
    return shown.split("://", 1)[1]
