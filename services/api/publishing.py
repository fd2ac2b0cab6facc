"""How a project publishes: its credential per network, saved write-only, checked at save.

- mastodon: `instanceUrl` (an origin) and `accessToken` (scope `write:statuses`);
- bluesky: `serviceUrl` (the PDS origin, `https://bsky.social` by default), `identifier`
  (a handle or DID) and `appPassword`;
- webhook: `url`, for every platform without a protocol of its own; herald generates the
  signing secret and shows it once, when the webhook is saved.

Secrets are encrypted with HERALD_SECRET_KEY and never shown again: the project's view says
which networks are set and their non-secret parts. The webhook's URL is write-only too, like
a WEBHOOK job's (it often carries the receiver's token): stored encrypted, shown as its host
(`urlHost`). A server URL is refused at save when it
is not one herald may send to (`shared.outbound`: a loopback, private or otherwise internal
address, unless HERALD_OUTBOUND_ALLOW_NETWORKS allows it); the publisher's client checks the
address it connects to again, whatever a name resolves to then.

A Mastodon instance sets its own status limits. The api never asks a tenant's instance in a
request: the publisher reports the limits it read with each outcome, they are kept on the
credential (`max_characters`, `characters_reserved_per_url`, shown as `maxCharacters` and
`charactersReservedPerUrl`) until the credential names another instance, and edits and
schedules are checked against them (`PostLimits`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.bodies import Body
from services.api.problems import Problem, invalid
from services.publisher.networks.published import base_origin, require_https
from shared.db.schema import PublishingCredential
from shared.destinations import webhook_host
from shared.outbound import ForbiddenDestinationError, parse_networks, parse_url, refusal
from shared.publishing import NETWORK_NAMES, Network, network_for
from shared.secrets import SecretKeyError, encrypt
from shared.settings import Settings
from shared.signatures import new_webhook_secret

DEFAULT_PDS = "https://bsky.social"
_HANDLE = re.compile(r"^(did:[a-z]+:[A-Za-z0-9._:%-]+|[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})$")

Secret = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class PublishingBody(Body):
    """One network's credential: the fields of that network (see the module docstring)."""

    instance_url: Url | None = None
    access_token: Secret | None = None
    service_url: Url | None = None
    identifier: str | None = Field(default=None, max_length=253)
    app_password: Secret | None = None
    url: Url | None = None


NetworkName = Literal["mastodon", "bluesky", "webhook"]
FIELDS: dict[str, tuple[str, ...]] = {
    "mastodon": ("instanceUrl", "accessToken"),
    "bluesky": ("serviceUrl", "identifier", "appPassword"),
    "webhook": ("url",),
}


@dataclass(frozen=True)
class Checked:
    """A credential as it is to be stored, before encryption."""

    # The non-secret settings, shown back.
    settings: dict[str, str]
    # The secret given; None when herald makes one (the webhook's signing secret).
    secret: str | None
    # The webhook's URL, stored encrypted; None for the networks.
    url: str | None = None


def checked_settings(network: Network, body: PublishingBody, settings: Settings) -> Checked:
    """What to store for `network`, or a 422 naming the field and the rule it breaks."""
    given = body.model_dump(by_alias=True, exclude_none=True)
    for name in given:
        if name not in FIELDS[network]:
            raise invalid(
                name, f"is not a {network} setting (it takes {', '.join(FIELDS[network])})"
            )
    allowed = parse_networks(settings.outbound_allow_networks)
    allow_http = settings.webhook_allow_http
    if network == "mastodon":
        instance = _origin(
            "instanceUrl", _required("instanceUrl", body.instance_url), allowed, allow_http
        )
        return Checked({"instanceUrl": instance}, _required("accessToken", body.access_token))
    if network == "bluesky":
        service = _origin("serviceUrl", body.service_url or DEFAULT_PDS, allowed, allow_http)
        identifier = _required("identifier", body.identifier).strip().lstrip("@")
        if not _HANDLE.match(identifier):
            raise invalid("identifier", "must be a Bluesky handle (name.bsky.social) or a DID")
        return Checked(
            {"serviceUrl": service, "identifier": identifier},
            _required("appPassword", body.app_password),
        )
    url = _required("url", body.url)
    try:
        parsed = parse_url(url)
    except ForbiddenDestinationError as exc:
        raise invalid("url", exc.message) from None
    if parsed.fragment:
        raise invalid("url", "must not carry a fragment")
    try:
        require_https(parsed, what="url", allow_http=allow_http)
    except ForbiddenDestinationError as exc:
        raise invalid("url", exc.message) from None
    _address_allowed("url", parsed.host, allowed)
    return Checked({"urlHost": webhook_host(str(parsed))}, None, url=str(parsed))


def _required(field: str, value: str | None) -> str:
    if not value:
        raise invalid(field, "is required for this network")
    return value


def _origin(field: str, url: str, allowed: Any, allow_http: bool) -> str:
    try:
        origin = base_origin(url, what=field, allow_http=allow_http)
    except ForbiddenDestinationError as exc:
        raise invalid(field, exc.message) from None
    _address_allowed(field, parse_url(origin).host, allowed)
    return origin


def _address_allowed(field: str, host: str, allowed: Any) -> None:
    """Refuse a host that is an internal address (or names the machine itself) at save."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        name = "127.0.0.1"
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return  # a name: the publisher's client checks what it resolves to
    reason = refusal(address, allowed)
    if reason is not None:
        raise invalid(field, f"must not point to {reason} (HERALD_OUTBOUND_ALLOW_NETWORKS)")


async def save_credential(
    session: AsyncSession,
    project_id: str,
    network: Network,
    body: PublishingBody,
    settings: Settings,
) -> tuple[PublishingCredential, str | None]:
    """Check and store a project's credential for `network`, replacing what was there (the
    caller commits); return it and the webhook's signing secret when herald made one.

    The API and `herald projects publishing set` both save through here, so their rules
    cannot differ. Raises `Problem` (422 naming the field, or 503 without a secret key).
    """
    checked = checked_settings(network, body, settings)
    made = None if checked.secret is not None else new_webhook_secret()
    key = settings.secret_key.get_secret_value()
    try:
        encrypted = encrypt(checked.secret or made or "", key)
        url = encrypt(checked.url, key) if checked.url is not None else None
    except SecretKeyError as exc:
        raise Problem(503, exc.message) from None
    now = datetime.now(UTC)
    credential = await session.get(PublishingCredential, (project_id, network))
    if credential is None:
        credential = PublishingCredential(project_id=project_id, network=network, created_at=now)
        session.add(credential)
    if (credential.settings or {}).get("instanceUrl") != checked.settings.get("instanceUrl"):
        # Another instance, other limits: the publisher reads them on its next post.
        credential.max_characters = None
        credential.characters_reserved_per_url = None
    credential.settings = checked.settings
    credential.secret_encrypted = encrypted
    credential.url_encrypted = url
    credential.updated_at = now
    return credential, made


async def credentials_of(session: AsyncSession, project_id: str) -> list[PublishingCredential]:
    return list(
        (
            await session.scalars(
                select(PublishingCredential)
                .where(PublishingCredential.project_id == project_id)
                .order_by(PublishingCredential.network)
            )
        ).all()
    )


def publishing_view(credentials: list[PublishingCredential]) -> dict[str, Any]:
    """Which networks a project publishes to and their non-secret parts; never a secret."""
    saved = {credential.network: credential for credential in credentials}
    return {
        network: (_credential_view(saved[network]) if network in saved else {"set": False})
        for network in NETWORK_NAMES
    }


def _credential_view(credential: PublishingCredential) -> dict[str, Any]:
    view: dict[str, Any] = {"set": True, **(credential.settings or {})}
    if credential.max_characters is not None:
        view["maxCharacters"] = credential.max_characters
    if credential.characters_reserved_per_url is not None:
        view["charactersReservedPerUrl"] = credential.characters_reserved_per_url
    view["updatedAt"] = _iso(credential)
    return view


@dataclass(frozen=True)
class PostLimits:
    """The length limits a project's post is checked against; None where the usual holds."""

    max_characters: int | None = None
    characters_reserved_per_url: int | None = None


async def post_limits(session: AsyncSession, project_id: str, platform: str) -> PostLimits:
    """The limits of the instance the post would go to, as the publisher last read them."""
    if network_for(platform) != "mastodon":
        return PostLimits()
    found = (
        await session.execute(
            select(
                PublishingCredential.max_characters,
                PublishingCredential.characters_reserved_per_url,
            ).where(
                PublishingCredential.project_id == project_id,
                PublishingCredential.network == "mastodon",
            )
        )
    ).one_or_none()
    if found is None:
        return PostLimits()
    return PostLimits(found.max_characters, found.characters_reserved_per_url)


def _iso(credential: PublishingCredential) -> str:
    return credential.updated_at.isoformat().replace("+00:00", "Z")


async def publishing_refusal(session: AsyncSession, project_id: str, platform: str) -> str | None:
    """Why a post for `platform` cannot be published by this project, or None when it can."""
    network = network_for(platform)
    found = await session.scalar(
        select(PublishingCredential.network).where(
            PublishingCredential.project_id == project_id,
            PublishingCredential.network == network,
        )
    )
    if found is not None:
        return None
    if network == "webhook":
        return (
            f"the project has no generic webhook to publish {platform} posts: add one "
            "(PUT /api/projects/{id}/publishing/webhook) before scheduling"
        )
    return (
        f"the project has no {NETWORK_NAMES[network]} credential to publish with: add one "
        f"(PUT /api/projects/{{id}}/publishing/{network}) before scheduling"
    )
