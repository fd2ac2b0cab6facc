"""The publisher's subscriber: `post.due` in, `post.published` or `post.failed` out.

Every event it publishes derives its id from the `post.due` that caused it, so a redelivered
`post.due` (the publisher crashed after the network accepted, before the ack) publishes
again with the same keys, the network answers with the first post, and the api's inbox
drops the repeated `post.published`. A network's refusal is final; an outage or a 5xx is
tried again down the delay ladder (the claim's retry policy, `Retry-After` honoured); a
spent rate limit waits for its reset without spending a try. Every wait and retry is
announced (a `post.failed` not final, with the next attempt's time), which moves the post's
claim there: the scheduler does not start a second chain while this one is worked. A retry
after an outcome herald did not learn carries when that attempt began (`unknownSince`), and
so does the final `post.failed` of such a chain: the post may be out, and a later chain must
look for it once Mastodon has forgotten the key; a lookup the instance did not answer is
such a retry too. Only a final failure that asks the owner to check the account for the
post (`ownerChecks`) lets the api forget the unknown outcome. Every outcome reports the
Mastodon instance's limits the publisher read, for the api's length checks, except after the
instance refused a status as too long: those limits were out of date, and the failure says
so (`mastodonLimitsOutdated`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import structlog

from services.publisher.networks.mastodon import EarlierStatusUnknownError, LimitLoweredError
from services.publisher.publish import Publisher
from shared import metrics, topology
from shared.bus import Bus, Handler, PoisonHandler
from shared.errors import BudgetExhaustedError, PermanentError, TransientError
from shared.events import Event, MastodonLimits, PostDue, PostFailed, PostPublished
from shared.ids import derived_event_id
from shared.publishing import network_for
from shared.retry import compute_backoff

log = structlog.get_logger(__name__)


def make_handler(bus: Bus, publisher: Publisher) -> Handler:
    async def on_post_due(event: Event) -> None:
        assert isinstance(event, PostDue)
        network = network_for(event.platform)
        bound = log.bind(post_id=event.post_id, platform=event.platform, attempt=event.attempt)
        started = time.perf_counter()
        attempted_at = datetime.now(UTC)
        try:
            published = await publisher.publish(event)
        except PermanentError as exc:
            await _refused(bus, publisher, event, exc)
            return
        except BudgetExhaustedError as exc:
            await _wait_for_budget(bus, event, exc, limits=publisher.mastodon_limits(event))
            return
        except Exception as exc:
            # Neither a refusal nor a wait: the post may have gone out without an answer.
            await _retry_or_fail(
                bus,
                event,
                exc,
                attempted_at=attempted_at,
                limits=publisher.mastodon_limits(event),
            )
            return
        finally:
            metrics.PUBLISH_SECONDS.labels(network).observe(time.perf_counter() - started)
        outcome = "earlier" if published.earlier else "published"
        metrics.POSTS_PUBLISHED.labels(network, outcome).inc()
        bound.info("post published", url=published.url, earlier=published.earlier)
        await bus.publish(
            PostPublished(
                event_id=derived_event_id(event.event_id, "post.published"),
                **event.envelope(),
                post_id=event.post_id,
                network=network,
                url=published.url or None,
                network_post_id=published.id,
                published_at=datetime.now(UTC),
                earlier=published.earlier,
                mastodon_limits=publisher.mastodon_limits(event),
            )
        )

    return on_post_due


async def _refused(bus: Bus, publisher: Publisher, event: PostDue, exc: PermanentError) -> None:
    """A final failure: a refusal published nothing, but an earlier attempt of the chain
    still may have; unless the reason hands that question to the owner."""
    owner_checks = isinstance(exc, EarlierStatusUnknownError)
    # The limits read were out of date and are forgotten: nothing to report but that.
    outdated = isinstance(exc, LimitLoweredError)
    await _failed(
        bus,
        event,
        str(exc),
        final=True,
        unknown_since=None if owner_checks else event.unknown_since,
        owner_checks=owner_checks,
        limits=None if outdated else publisher.mastodon_limits(event),
        limits_outdated=publisher.mastodon_instance(event) if outdated else None,
    )


async def _wait_for_budget(
    bus: Bus, event: PostDue, exc: BudgetExhaustedError, *, limits: MastodonLimits | None
) -> None:
    """Round the delay ladder until the account's budget is back: the same attempt."""
    until = datetime.now(UTC) + timedelta(seconds=exc.retry_after or 1.0)
    later = event.model_copy(
        update={
            "event_id": derived_event_id(event.event_id, f"wait:{until.timestamp():.0f}"),
            "occurred_at": datetime.now(UTC),
        }
    )
    # Announced like a retry (not final, spends no try): the api moves the claim to `until`,
    # so the scheduler does not take the post again while it waits.
    await _failed(
        bus,
        later,
        str(exc),
        final=False,
        next_attempt_at=until,
        purpose="post.waiting",
        limits=limits,
    )
    await bus.publish_delayed(later, topology.PUBLISHER_QUEUE, until)
    log.info("post waits for a rate limit", post_id=event.post_id, until=until, reason=str(exc))


async def _retry_or_fail(
    bus: Bus,
    event: PostDue,
    exc: Exception,
    *,
    attempted_at: datetime,
    limits: MastodonLimits | None,
) -> None:
    reason = str(exc) or exc.__class__.__name__
    policy = event.retry_policy
    unknown_since = event.unknown_since or attempted_at
    if event.attempt > policy.max_retries:
        await _failed(bus, event, reason, final=True, unknown_since=unknown_since, limits=limits)
        return
    retry_after = exc.retry_after if isinstance(exc, TransientError) else None
    delay = compute_backoff(event.attempt, base=policy.retry_delay, retry_after=retry_after)
    not_before = datetime.now(UTC) + timedelta(seconds=delay)
    await _failed(bus, event, reason, final=False, next_attempt_at=not_before, limits=limits)
    retry = event.model_copy(
        update={
            "event_id": derived_event_id(event.event_id, "retry"),
            "attempt": event.attempt + 1,
            "occurred_at": datetime.now(UTC),
            "unknown_since": unknown_since,
        }
    )
    await bus.publish_delayed(retry, topology.PUBLISHER_QUEUE, not_before)
    metrics.POSTS_PUBLISHED.labels(network_for(event.platform), "retry").inc()
    if not isinstance(exc, TransientError):
        log.error("publishing failed unexpectedly; retry scheduled", exc_info=exc)


async def _failed(
    bus: Bus,
    event: PostDue,
    reason: str,
    *,
    final: bool,
    next_attempt_at: datetime | None = None,
    purpose: str = "post.failed",
    unknown_since: datetime | None = None,
    owner_checks: bool = False,
    limits: MastodonLimits | None = None,
    limits_outdated: str | None = None,
) -> None:
    network = network_for(event.platform)
    if final:
        metrics.POSTS_PUBLISHED.labels(network, "failed").inc()
    log.warning("publishing failed", post_id=event.post_id, reason=reason, final=final)
    await bus.publish(
        PostFailed(
            event_id=derived_event_id(event.event_id, purpose),
            **event.envelope(),
            post_id=event.post_id,
            platform=event.platform,
            network=network,
            reason=reason,
            final=final,
            next_attempt_at=next_attempt_at,
            unknown_since=unknown_since if final else None,
            owner_checks=owner_checks,
            mastodon_limits=limits,
            mastodon_limits_outdated=limits_outdated,
        )
    )


def poison_reporter(bus: Bus) -> PoisonHandler:
    """A `post.due` about to be dead-lettered fails its post, with the reason, at once."""

    async def report(event: Event, reason: str) -> None:
        if isinstance(event, PostDue):
            # Any of its deliveries may have reached the network before the handler died.
            await _failed(
                bus,
                event,
                reason,
                final=True,
                purpose="post.dead-lettered",
                unknown_since=event.unknown_since or event.occurred_at,
            )

    return report
