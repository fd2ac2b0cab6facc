"""One post, published through its project's credential for the network it goes to.

The credential (and a webhook's URL) travels encrypted in `post.due` and is decrypted here
only. Clients are
built per post (a credential may change between two posts), while what outlives a post is
kept per process: each instance's limits, and each Bluesky account's session (its refresh
token rotates; a session kept spares a `createSession` per post, which the PDS limits
hardest).
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from services.publisher.networks.bluesky import BlueskyClient, Session
from services.publisher.networks.budget import AccountBudget, fingerprint
from services.publisher.networks.mastodon import (
    IDEMPOTENCY_SAFE_AGE,
    InstanceLimitsCache,
    MastodonClient,
)
from services.publisher.networks.published import Published, base_origin
from services.publisher.webhook import WebhookClient
from shared.errors import PermanentError
from shared.events import MastodonLimits, PostDue, PublishingTarget
from shared.outbound import ForbiddenDestinationError
from shared.publishing import NETWORK_NAMES, network_for
from shared.secrets import SecretKeyError, decrypt


class NoCredentialError(PermanentError):
    """The project gave herald no way to publish this platform's posts."""


class Publisher:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        budget: AccountBudget,
        secret_key: str,
        allow_http: bool = False,
    ) -> None:
        self._http = http
        # HERALD_WEBHOOK_ALLOW_HTTP: plain http only where the operator allowed it.
        self._allow_http = allow_http
        self._budget = budget
        self._secret_key = secret_key
        self._limits = InstanceLimitsCache()
        self._sessions: dict[str, Session] = {}

    async def publish(self, event: PostDue) -> Published:
        target = event.target
        network = network_for(event.platform)
        if target is None or target.network != network:
            raise NoCredentialError(_missing(event.platform, network))
        secret = self._secret(target)
        settings = target.settings
        if network == "mastodon":
            mastodon = MastodonClient(
                self._http,
                instance_url=_setting(settings, "instanceUrl"),
                token=secret,
                budget=self._budget,
                limits=self._limits,
                allow_http=self._allow_http,
            )
            if _key_maybe_forgotten(event):
                # An earlier attempt may have published it, longer ago than Mastodon keeps
                # the key: a repeat would be a second status. Look for the first one.
                # The texts such attempts sent, too, when the owner edited the post since.
                texts = [event.body, *event.unknown_texts]
                earlier = await mastodon.find_earlier(
                    texts=texts, since=event.unknown_since or event.claimed_at
                )
                if earlier is not None:
                    return earlier
            return await mastodon.publish(post_id=event.post_id, text=event.body)
        if network == "bluesky":
            return await self._bluesky(event, settings, secret)
        if not target.url:
            raise PermanentError("the project's webhook has no URL: save it again")
        webhook = WebhookClient(
            self._http,
            url=self._decrypted(target.url),
            secret=secret,
            budget=self._budget,
            allow_http=self._allow_http,
        )
        return await webhook.publish(
            post_id=event.post_id,
            platform=event.platform,
            title=event.title,
            text=event.body,
            project_id=event.project_id,
            execution_id=event.execution_id,
        )

    def mastodon_limits(self, event: PostDue) -> MastodonLimits | None:
        """The limits of the post's Mastodon instance this process read, if it did: the api
        checks edits against them (it never asks a tenant's instance itself)."""
        instance = self.mastodon_instance(event)
        limits = self._limits.get(instance) if instance is not None else None
        if instance is None or limits is None:
            return None
        return MastodonLimits(
            instance_url=instance,
            max_characters=limits.max_characters,
            characters_reserved_per_url=limits.characters_reserved_per_url,
        )

    def mastodon_instance(self, event: PostDue) -> str | None:
        """The origin of the post's Mastodon instance, as its limits are kept under."""
        target = event.target
        if target is None or target.network != "mastodon":
            return None
        try:
            return base_origin(
                target.settings.get("instanceUrl", ""),
                what="the Mastodon instance",
                allow_http=self._allow_http,
            )
        except ForbiddenDestinationError:
            return None

    async def _bluesky(self, event: PostDue, settings: dict[str, str], secret: str) -> Published:
        service = _setting(settings, "serviceUrl")
        identifier = _setting(settings, "identifier")
        # The password is part of the key: a replaced app password starts a new session.
        key = f"{service}|{identifier}|{fingerprint(secret)}"

        async def keep(session: Session) -> None:
            self._sessions[key] = session

        bluesky = BlueskyClient(
            self._http,
            service_url=service,
            identifier=identifier,
            app_password=secret,
            budget=self._budget,
            session=self._sessions.get(key),
            on_session=keep,
            allow_http=self._allow_http,
        )
        try:
            return await bluesky.publish(
                post_id=event.post_id, text=event.body, created_at=event.claimed_at
            )
        finally:
            # A session the client dropped (its tokens refused) is not offered again.
            if bluesky.session is None:
                self._sessions.pop(key, None)

    def _secret(self, target: PublishingTarget) -> str:
        return self._decrypted(target.secret)

    def _decrypted(self, token: str) -> str:
        try:
            return decrypt(token, self._secret_key)
        except SecretKeyError as exc:
            raise PermanentError(exc.message) from None


def _key_maybe_forgotten(event: PostDue) -> bool:
    if event.unknown_since is None:
        return False
    return datetime.now(UTC) - event.unknown_since >= IDEMPOTENCY_SAFE_AGE


def _setting(settings: dict[str, str], name: str) -> str:
    value = settings.get(name)
    if not value:
        raise PermanentError(f"the project's publishing credential lacks {name}: save it again")
    return value


def _missing(platform: str, network: str) -> str:
    if network == "webhook":
        return (
            f"the project has no generic webhook to publish its {platform} posts: "
            "add one on the project's page"
        )
    return (
        f"the project has no {NETWORK_NAMES[network]} credential to publish with: "
        "add one on the project's page"
    )
