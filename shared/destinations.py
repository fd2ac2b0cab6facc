"""Where each tenant-steered request may go, as the operator's settings allow.

The api checks a URL when a tenant stores it; the scanner and the notifier check it again
before using it (a row written before a rule tightened, or an event written by hand, gets no
further), and their HTTP clients check every address they connect to (`shared.outbound`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.outbound import ForbiddenDestinationError, IPNetwork, OriginAllowList, parse_networks
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
