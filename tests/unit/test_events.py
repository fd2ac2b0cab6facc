"""Event contracts: camelCase on the wire, lossless round trips, and every poison-message shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import InvalidEventError, PermanentError
from shared.events import (
    EVENT_TYPES,
    ActivityItem,
    ActivityScanned,
    ActivitySummary,
    ContentGenerated,
    Event,
    ExecutionCancelled,
    ExecutionFinished,
    ExecutionStatus,
    JobDue,
    NotificationCreated,
    NotificationDelivery,
    NotificationSettings,
    PostDue,
    PostExcerpt,
    PostFailed,
    PostPublished,
    PostResult,
    PostUnpublished,
    PublishingTarget,
    RecipientConfirmationRequested,
    Repository,
    RetryPolicy,
    ScheduleMoved,
    Step,
    StepFailed,
    StepStarted,
    StepWaiting,
    Trigger,
    decode_event,
)

AT = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
ENVELOPE = {"execution_id": "exe_1", "job_id": "cron_1", "project_id": "prj_1", "attempt": 2}
REPO = Repository(owner="octo", name="herald", base_url="https://ghe.example/api/v3")


def sample_events() -> list[Event]:
    summary = ActivitySummary(
        commits=2,
        tags=1,
        contributors=["ada", "bob"],
        items=[
            ActivityItem(kind="commit", title="Fix it", author="ada", sha="abc", at=AT),
            ActivityItem(kind="tag", title="v1.0", url="https://x.test/v1.0", at=AT),
        ],
    )
    return [
        JobDue(
            **ENVELOPE,
            scheduled_for=AT,
            trigger=Trigger.SCHEDULE,
            window_start=AT - timedelta(days=1),
            window_end=AT,
            repository=REPO,
            platforms=["x", "blog"],
            retry_policy=RetryPolicy(max_retries=5, retry_delay=60),
            deadline=AT + timedelta(minutes=15),
            user_id="usr_1",
        ),
        StepStarted(**ENVELOPE, step=Step.SCAN),
        StepFailed(
            **ENVELOPE,
            step=Step.GENERATE,
            retriable=True,
            final=False,
            error="boom",
            stack="Traceback ...",
            next_attempt_at=AT + timedelta(minutes=5),
        ),
        ActivityScanned(
            **ENVELOPE,
            summary=summary,
            github_api_calls=3,
            platforms=["mastodon"],
            repository=Repository(local_path="/repos/herald"),
            window_start=None,
            window_end=AT,
            deadline=AT + timedelta(minutes=15),
        ),
        ContentGenerated(
            **ENVELOPE,
            results=[
                PostResult(platform="x", status="GENERATED", body="hi", characters=2),
                PostResult(platform="fax", status="FAILED", error="unknown platform 'fax'"),
            ],
            generation_ms=12,
        ),
        ExecutionFinished(
            **ENVELOPE,
            status=ExecutionStatus.COMPLETED,
            trigger=Trigger.MANUAL,
            started_at=AT,
            completed_at=AT + timedelta(seconds=3),
            duration=3000,
            items_processed=2,
            items_success=1,
            items_failed=1,
            job_name="daily",
            project_name="demo",
            user_id="usr_1",
            notification_settings=NotificationSettings(failure_threshold=3, recipients=["a@b.c"]),
            consecutive_failures=0,
            previous_status=ExecutionStatus.FAILED,
            posts=[PostExcerpt(platform="blog", title="T", excerpt="E")],
            link="/executions/exe_1",
        ),
        ExecutionCancelled(**ENVELOPE),
        NotificationCreated(
            **ENVELOPE, user_id="usr_1", kind="job_failure", title="daily failed", body="..."
        ),
        NotificationDelivery(
            **ENVELOPE,
            user_id="usr_1",
            channel="email",
            recipient="a@b.c",
            outcome="FAILED",
            attempts=3,
            error="smtp down",
            kind="job_failure",
        ),
        StepWaiting(
            **ENVELOPE,
            step=Step.SCAN,
            reason="GitHub's rate limit for this credential is spent",
            until=datetime(2025, 3, 4, 6, 0, tzinfo=UTC),
        ),
        RecipientConfirmationRequested(
            project_id="prj_1",
            user_id="usr_1",
            email="ops@example.com",
            requested_by="Ada <ada@example.com>",
            project_name="herald",
            link="gAAAA-sealed",
        ),
        ScheduleMoved(
            job_id="job_1",
            project_id="prj_1",
            user_id="usr_1",
            job_name="daily digest",
            project_name="herald",
            timezone="America/Asuncion",
            previous_run_at=datetime(2026, 11, 2, 12, 0, tzinfo=UTC),
            next_run_at=datetime(2026, 11, 2, 13, 0, tzinfo=UTC),
            rules_version="2026b",
            previous_rules_version="2026a",
            link="https://herald.example/console/jobs/job_1",
        ),
        PostDue(
            **ENVELOPE,
            post_id="cnt_1",
            platform="mastodon",
            body="herald 2.0 is out",
            claimed_at=datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
            target=PublishingTarget(
                network="mastodon",
                settings={"instanceUrl": "https://mastodon.example"},
                secret="gAAAA-sealed",
            ),
        ),
        PostPublished(
            **ENVELOPE,
            post_id="cnt_1",
            network="mastodon",
            url="https://mastodon.example/@herald/1",
            network_post_id="1",
            published_at=datetime(2026, 5, 1, 10, 0, 1, tzinfo=UTC),
        ),
        PostFailed(
            **ENVELOPE,
            post_id="cnt_1",
            platform="bluesky",
            network="bluesky",
            reason="Bluesky 400 InvalidRequest: bad record",
            final=True,
        ),
        PostUnpublished(
            **ENVELOPE,
            user_id="usr_1",
            post_id="cnt_1",
            platform="bluesky",
            reason="Bluesky 400 InvalidRequest: bad record",
            job_name="weekly digest",
            project_name="herald",
            link="https://herald.example/console/posts/cnt_1",
        ),
    ]


def test_the_samples_cover_every_registered_event_type() -> None:
    assert {type(event).routing_key for event in sample_events()} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", sample_events(), ids=lambda event: event.routing_key)
def test_every_event_survives_a_round_trip_through_the_wire(event: Event) -> None:
    decoded = decode_event(event.routing_key, event.to_json())

    assert type(decoded) is type(event)
    assert decoded == event


@pytest.mark.parametrize("event", sample_events(), ids=lambda event: event.routing_key)
def test_the_envelope_is_camel_case_on_the_wire(event: Event) -> None:
    wire = json.loads(event.to_json())

    assert {"eventId", "occurredAt", "version", "executionId", "jobId", "projectId"} <= set(wire)
    assert wire["version"] == 1
    # A recipient's question and a moved schedule concern no execution: empty ids say so.
    no_execution = isinstance(event, RecipientConfirmationRequested | ScheduleMoved)
    expected = "" if no_execution else "exe_1"
    assert wire["executionId"] == expected
    assert not any("_" in key for key in wire)


def test_nested_fields_are_camel_case_on_the_wire() -> None:
    job_due, *_ = sample_events()
    wire = json.loads(job_due.to_json())

    assert wire["windowStart"] == "2025-03-03T05:06:07.890000Z"
    assert wire["windowEnd"] == "2025-03-04T05:06:07.890000Z"
    assert wire["retryPolicy"] == {"maxRetries": 5, "retryDelay": 60}
    assert wire["repository"]["baseUrl"] == "https://ghe.example/api/v3"
    assert "routingKey" not in wire and "routing_key" not in wire


def test_an_unset_window_start_travels_as_null() -> None:
    scanned = next(e for e in sample_events() if isinstance(e, ActivityScanned))
    wire = json.loads(scanned.to_json())

    assert wire["windowStart"] is None
    assert wire["githubApiCalls"] == 3
    assert wire["summary"]["pullRequests"] == 0


def test_fresh_events_get_distinct_ids() -> None:
    first, second = StepStarted(**ENVELOPE, step=Step.SCAN), StepStarted(**ENVELOPE, step=Step.SCAN)

    assert first.event_id != second.event_id


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    wire = json.loads(StepStarted(**ENVELOPE, step=Step.SCAN).to_json())
    wire["addedInALaterRelease"] = {"x": 1}

    decoded = decode_event("step.started", json.dumps(wire).encode())

    assert isinstance(decoded, StepStarted)


def started_wire(**changes: object) -> bytes:
    wire = json.loads(StepStarted(**ENVELOPE, step=Step.SCAN).to_json())
    wire.update(changes)
    return json.dumps({k: v for k, v in wire.items() if v is not ...}).encode()


@pytest.mark.parametrize("missing", ["executionId", "jobId", "projectId", "step"])
def test_a_missing_field_is_an_invalid_event_naming_the_field(missing: str) -> None:
    with pytest.raises(InvalidEventError, match=rf"step\.started event: {missing}: Field required"):
        decode_event("step.started", started_wire(**{missing: ...}))


def test_a_nested_invalid_field_is_named_by_its_wire_path() -> None:
    finished = next(e for e in sample_events() if isinstance(e, ExecutionFinished))
    wire = json.loads(finished.to_json())
    wire["notificationSettings"]["failureThreshold"] = "many"

    with pytest.raises(InvalidEventError, match=r"notificationSettings\.failureThreshold"):
        decode_event("execution.finished", json.dumps(wire).encode())


def test_an_unknown_routing_key_is_an_invalid_event_naming_the_key() -> None:
    with pytest.raises(InvalidEventError, match=r"unknown event type 'job\.exploded'"):
        decode_event("job.exploded", started_wire())


@pytest.mark.parametrize("body", [b"{", b"not json", b"\xff\xfe", b""])
def test_malformed_json_is_an_invalid_event(body: bytes) -> None:
    with pytest.raises(InvalidEventError, match=r"invalid step\.started event: body: Invalid JSON"):
        decode_event("step.started", body)


@pytest.mark.parametrize("body", [b"[]", b"null", b"42"])
def test_json_that_is_not_an_object_is_an_invalid_event(body: bytes) -> None:
    with pytest.raises(InvalidEventError, match="body: Input should be an object"):
        decode_event("step.started", body)


def test_a_later_version_is_an_invalid_event_naming_the_version() -> None:
    with pytest.raises(InvalidEventError, match="version: Input should be 1"):
        decode_event("step.started", started_wire(version=2))


def test_an_attempt_below_one_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEventError, match="attempt"):
        decode_event("step.started", started_wire(attempt=0))


def test_an_invalid_event_is_permanent_so_it_is_never_retried() -> None:
    with pytest.raises(PermanentError):
        decode_event("step.started", b"{")


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (ExecutionStatus.PENDING, False),
        (ExecutionStatus.RUNNING, False),
        (ExecutionStatus.COMPLETED, True),
        (ExecutionStatus.FAILED, True),
        (ExecutionStatus.CANCELLED, True),
        (ExecutionStatus.TIMEOUT, True),
        (ExecutionStatus.SKIPPED, True),
        (ExecutionStatus.MISSED, True),
    ],
)
def test_only_pending_and_running_are_not_terminal(status: ExecutionStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal


def test_the_terminal_table_covers_every_status() -> None:
    assert {s for s in ExecutionStatus if not s.is_terminal} == {
        ExecutionStatus.PENDING,
        ExecutionStatus.RUNNING,
    }


def test_a_summary_with_no_counts_is_empty() -> None:
    assert ActivitySummary().is_empty


@pytest.mark.parametrize("field", ["commits", "pull_requests", "issues", "tags"])
def test_a_summary_with_any_count_is_not_empty(field: str) -> None:
    assert not ActivitySummary(**{field: 1}).is_empty


def test_a_summary_is_empty_by_its_counts_not_its_contributors() -> None:
    assert ActivitySummary(contributors=["ada"]).is_empty


def published_wire(limits: object) -> bytes:
    published = PostPublished(
        **ENVELOPE,
        post_id="cnt_1",
        network="mastodon",
        network_post_id="1",
        published_at=AT,
    )
    wire = json.loads(published.to_json())
    wire["mastodonLimits"] = limits
    return json.dumps(wire).encode()


@pytest.mark.parametrize(
    ("reported", "kept"),
    [
        ((2**31, 23), (1_000_000, 23)),
        ((0, -5), (1, 0)),
        ((5000, 2**40), (5000, 10_000)),
    ],
)
def test_instance_limits_out_of_bounds_are_taken_at_the_nearest_bound(
    reported: tuple[int, int], kept: tuple[int, int]
) -> None:
    limits = {
        "instanceUrl": "https://mastodon.test",
        "maxCharacters": reported[0],
        "charactersReservedPerUrl": reported[1],
    }
    decoded = decode_event("post.published", published_wire(limits))
    assert isinstance(decoded, PostPublished) and decoded.mastodon_limits is not None
    assert (
        decoded.mastodon_limits.max_characters,
        decoded.mastodon_limits.characters_reserved_per_url,
    ) == kept


@pytest.mark.parametrize(
    "limits",
    [
        {"instanceUrl": "https://mastodon.test", "maxCharacters": "lots"},
        {"maxCharacters": 500, "charactersReservedPerUrl": 23},
        "500",
    ],
)
def test_instance_limits_that_do_not_validate_are_dropped_not_the_outcome(limits: object) -> None:
    decoded = decode_event("post.published", published_wire(limits))
    assert isinstance(decoded, PostPublished)
    assert (decoded.network_post_id, decoded.mastodon_limits) == ("1", None)
