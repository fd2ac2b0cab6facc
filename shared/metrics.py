"""Prometheus metrics shared by every service (`herald_` prefix, base units, bounded labels)."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_PUBLISHED = Counter(
    "herald_messages_published_total", "Events published to the broker.", ["routing_key"]
)
MESSAGES_DELAYED = Counter(
    "herald_messages_delayed_total", "Messages sent through the retry delay ladder.", ["step"]
)
MESSAGES_CONSUMED = Counter(
    "herald_messages_consumed_total", "Messages handled, by outcome.", ["queue", "outcome"]
)
MESSAGES_DEAD_LETTERED = Counter(
    "herald_messages_dead_lettered_total",
    "Messages rejected to a dead-letter queue.",
    ["queue", "reason"],
)
OUTBOX_PUBLISHED = Counter("herald_outbox_published_total", "Outbox rows relayed to the broker.")
OUTBOX_PENDING = Gauge(
    "herald_outbox_pending", "Outbox rows not yet published, as last seen by the relay."
)
OUTBOX_RELAY_SECONDS = Histogram(
    "herald_outbox_relay_batch_seconds", "Time to relay one outbox batch with confirms."
)
EVENTS_DUPLICATE = Counter(
    "herald_events_duplicate_total",
    "Events dropped because their id was already processed.",
    ["consumer"],
)
SERVICE_READY = Gauge("herald_service_ready", "1 when the process reports ready.", ["service"])
NOTIFICATIONS_DELIVERED = Counter(
    "herald_notifications_delivered_total",
    "Notification deliveries by channel (email, slack, discord) and final outcome.",
    ["channel", "outcome"],
)
NOTIFICATION_ATTEMPT_SECONDS = Histogram(
    "herald_notification_attempt_seconds",
    "Time of one delivery attempt to a notification channel.",
    ["channel"],
)
WEBHOOK_DELIVERIES = Counter(
    "herald_webhook_deliveries_total",
    "WEBHOOK jobs' delivery attempts, by outcome (delivered, retried, failed: refused by the "
    "receiver, its retries spent, or a destination herald does not connect to).",
    ["outcome"],
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "herald_webhook_delivery_seconds", "Time of one WEBHOOK delivery attempt, to its answer."
)
SCHEDULER_FIRES = Counter(
    "herald_scheduler_fires_total",
    "Scheduled slots handled by the scheduler, by outcome "
    "(fired, catchup, skipped, missed, buffered, released, deferred, disabled).",
    ["outcome"],
)
SCHEDULER_FIRE_LATENESS = Histogram(
    "herald_scheduler_fire_lateness_seconds",
    "Seconds from a scheduled job.due's instant to its publish (any jitter included).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
SCHEDULER_DUE_BACKLOG = Gauge(
    "herald_scheduler_due_backlog", "Enabled jobs whose next run is due, after a claim pass."
)
SCHEDULER_CLAIM_SECONDS = Histogram(
    "herald_scheduler_claim_batch_seconds", "Time to claim and fire one batch of due jobs."
)
SCHEDULER_JOBS = Gauge("herald_scheduler_jobs", "Jobs by state.", ["state"])
SCHEDULER_NEXT_RUN = Gauge(
    "herald_scheduler_next_run_timestamp_seconds", "The earliest next run of any enabled job."
)
SCHEDULER_TZ_RECOMPUTED = Counter(
    "herald_scheduler_tz_recomputed_jobs_total",
    "Enabled jobs whose stored next run moved because the time-zone rules changed.",
)
SCHEDULER_TZ_DATABASE = Gauge(
    "herald_scheduler_tz_database_info",
    "1, labelled with the time-zone database version this scheduler computes next runs with.",
    ["version"],
)
GITHUB_REQUESTS = Counter(
    "herald_github_requests_total",
    "GitHub REST requests made by the scanner, by outcome (ok, not_modified, error, empty, "
    "redirect).",
    ["outcome"],
)
GITHUB_RATE_LIMIT_REMAINING = Gauge(
    "herald_github_rate_limit_remaining",
    "The core rate limit GitHub last reported as remaining.",
)
AI_TOKENS = Counter(
    "herald_ai_tokens_total", "AI tokens used, by provider and kind.", ["provider", "kind"]
)
AI_REQUEST_SECONDS = Histogram(
    "herald_ai_request_seconds", "Time of one AI provider request.", ["provider"]
)
POSTS_GENERATED = Counter(
    "herald_posts_total", "Posts written, by platform and status.", ["platform", "status"]
)
EXECUTIONS_FINISHED = Counter(
    "herald_executions_finished_total",
    "Executions that reached a terminal status, by status and trigger.",
    ["status", "trigger"],
)
JOBS_OVERDUE = Gauge(
    "herald_jobs_overdue",
    "Enabled jobs whose last success is older than k times their interval (computed by the api).",
)
EXECUTION_DURATION = Histogram(
    "herald_execution_duration_seconds",
    "Time from an execution's start (first step) to its end, by terminal status.",
    ["status"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600),
)


def execution_finished(
    status: str,
    trigger: str,
    started_at: datetime | None = None,
    ended_at: datetime | None = None,
    trace_id: str | None = None,
) -> None:
    """Count an execution that reached a terminal status, and time it when it had started
    (with the run's trace as the observation's exemplar, when it recorded one)."""
    EXECUTIONS_FINISHED.labels(status=str(status), trigger=str(trigger)).inc()
    if started_at is not None and ended_at is not None:
        EXECUTION_DURATION.labels(status=str(status)).observe(
            max(0.0, (ended_at - started_at).total_seconds()),
            exemplar={"trace_id": trace_id} if trace_id else None,
        )


BUDGET_STORE_ERRORS = Counter(
    "herald_budget_store_errors_total",
    "Times the shared budget store (Redis) did not answer and a process used its own budgets.",
)
API_REFUSALS = Counter(
    "herald_api_refusals_total",
    "Requests slowed or refused by an abuse limit, by limit and outcome.",
    ["limit", "outcome"],
)
BUDGET_WAIT_SECONDS = Histogram(
    "herald_budget_wait_seconds",
    "Time a call waited for a fleet-wide budget or a provider's pause before it went, by budget.",
    ["budget"],
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
BACKGROUND_LOOP_CRASHES = Counter(
    "herald_background_loop_crashes_total",
    "Background loops (claim loop, outbox relays, sweeper, housekeeping) that crashed and were "
    "restarted, by service and loop.",
    ["service", "loop"],
)
BACKGROUND_LOOP_UP = Gauge(
    "herald_background_loop_up",
    "1 while a supervised background loop runs, 0 while it waits to restart after a crash.",
    ["service", "loop"],
)
NETWORK_REQUESTS = Counter(
    "herald_network_requests_total",
    "Requests to the publishing networks (Mastodon, Bluesky), by network and outcome.",
    ["network", "outcome"],
)
SCHEDULER_POSTS_CLAIMED = Counter(
    "herald_scheduler_posts_claimed_total",
    "Scheduled posts a scheduler claimed as due and handed to the publisher.",
)
POSTS_PUBLISHED = Counter(
    "herald_posts_published_total",
    "Publications by network and outcome (published, earlier: found published by an "
    "earlier attempt, retry, failed).",
    ["network", "outcome"],
)
PUBLISH_SECONDS = Histogram(
    "herald_publish_seconds",
    "Seconds one publication took, network calls included.",
    ["network"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
