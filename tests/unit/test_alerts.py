"""Which alert an execution's end deserves, whether the project wants it, and its wording."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from services.api.requests import NotificationSettingsBody
from services.notifier.alerts import (
    DIGEST,
    SCHEDULE_MOVED,
    TITLES,
    alert_kind,
    describe,
    wanted,
)
from shared.events import ExecutionFinished, ExecutionStatus, NotificationSettings, Trigger
from shared.notification_settings import DEFAULT_EVENTS, EVENT_KINDS

S = ExecutionStatus


def finished(status: ExecutionStatus = S.COMPLETED, **fields: Any) -> ExecutionFinished:
    values: dict[str, Any] = {
        "execution_id": "exe_1",
        "job_id": "cron_1",
        "project_id": "prj_1",
        "status": status,
        "trigger": Trigger.SCHEDULE,
        "job_name": "daily digest",
        "project_name": "herald",
        "user_id": "usr_1",
        "link": "/executions/exe_1",
        **fields,
    }
    return ExecutionFinished(**values)


def settings(**fields: Any) -> NotificationSettings:
    return NotificationSettings(**fields)


@pytest.mark.parametrize(
    ("status", "fields", "kind"),
    [
        (S.COMPLETED, {}, "job_success"),
        (S.COMPLETED, {"previous_status": S.COMPLETED}, "job_success"),
        (S.COMPLETED, {"previous_status": S.CANCELLED}, "job_success"),
        (S.COMPLETED, {"items_failed": 1, "items_processed": 3}, "job_partial"),
        (S.COMPLETED, {"previous_status": S.FAILED}, "job_recovered"),
        (S.COMPLETED, {"previous_status": S.TIMEOUT}, "job_recovered"),
        (S.COMPLETED, {"items_failed": 2, "previous_status": S.FAILED}, "job_partial"),
        (S.FAILED, {}, "job_failure"),
        (S.TIMEOUT, {}, "job_failure"),
        (S.SKIPPED, {}, "job_skipped"),
        (S.MISSED, {"missed_count": 3}, "job_missed"),
        (S.CANCELLED, {}, None),
        (S.PENDING, {}, None),
        (S.RUNNING, {}, None),
    ],
)
def test_alert_kind_follows_the_status_and_history(
    status: ExecutionStatus, fields: dict[str, Any], kind: str | None
) -> None:
    assert alert_kind(finished(status, **fields)) == kind


def test_every_alert_kind_has_a_title() -> None:
    kinds = {
        alert_kind(finished(status, previous_status=previous, items_failed=failed))
        for status in S
        for previous in (None, S.FAILED)
        for failed in (0, 1)
    }

    # Every kind an execution's end gives, the one a moved schedule gives, an ANALYTICS run's
    # digest (tests/unit/test_notifier_digest.py), and the one the api raises for a post that
    # could not be published.
    assert (kinds - {None}) | {SCHEDULE_MOVED, DIGEST, "post_failed"} == set(TITLES)


def test_the_default_settings_want_the_seeds_three_events() -> None:
    event = finished(S.FAILED, consecutive_failures=1)

    assert NotificationSettings().notification_events == DEFAULT_EVENTS
    # A recovery counts as a success, so the defaults also want it.
    # (A digest is always wanted: it is no preference.)
    assert [k for k in TITLES if k != DIGEST and wanted(event, k)] == [
        "job_success",
        "job_partial",
        "job_failure",
        "job_recovered",
    ]


@pytest.mark.parametrize("kind", ["job_skipped", "job_missed"])
def test_skipped_and_missed_alerts_are_off_by_default(kind: str) -> None:
    assert not wanted(finished(S.SKIPPED), kind)


def test_an_opted_in_kind_is_wanted() -> None:
    event = finished(S.MISSED, notification_settings=settings(notification_events=["job_missed"]))

    assert wanted(event, "job_missed")
    assert not wanted(event, "job_success")


@pytest.mark.parametrize(
    ("consecutive", "threshold", "expected"),
    [(0, 1, False), (1, 1, True), (2, 3, False), (3, 3, True), (7, 3, True)],
)
def test_a_failure_alert_waits_for_the_failure_threshold(
    consecutive: int, threshold: int, expected: bool
) -> None:
    event = finished(
        S.FAILED,
        consecutive_failures=consecutive,
        notification_settings=settings(failure_threshold=threshold),
    )

    assert wanted(event, "job_failure") is expected


def test_a_failure_alert_is_not_wanted_when_failures_are_not_asked_for() -> None:
    event = finished(
        S.FAILED,
        consecutive_failures=5,
        notification_settings=settings(notification_events=["job_success"]),
    )

    assert not wanted(event, "job_failure")


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (["job_recovered"], True),
        (["job_success"], True),
        (["job_failure", "job_partial"], False),
        ([], False),
    ],
)
def test_a_recovery_alert_is_wanted_by_recovery_or_success_subscribers(
    events: list[str], expected: bool
) -> None:
    event = finished(
        S.COMPLETED,
        previous_status=S.FAILED,
        notification_settings=settings(notification_events=events),
    )

    assert wanted(event, "job_recovered") is expected


def test_a_failure_description_mentions_the_error_message() -> None:
    event = finished(S.FAILED, error_message="GitHub 404: Not Found", duration=1500)

    title, body = describe(event, "job_failure")

    assert title == "daily digest failed"
    assert body == "Project herald: status FAILED. Took 1.5 s. Error: GitHub 404: Not Found"


def test_a_partial_description_counts_the_posts() -> None:
    event = finished(S.COMPLETED, items_processed=3, items_success=2, items_failed=1)

    title, body = describe(event, "job_partial")

    assert title == "daily digest completed with failures"
    assert "2 of 3 posts generated, 1 failed." in body


def test_a_success_description_has_no_failure_count() -> None:
    _, body = describe(finished(S.COMPLETED, items_processed=2, items_success=2), "job_success")

    assert "2 of 2 posts generated." in body
    assert "failed" not in body
    assert "Error" not in body


def test_a_missed_description_counts_the_missed_runs() -> None:
    title, body = describe(finished(S.MISSED, missed_count=4), "job_missed")

    assert title == "daily digest missed runs"
    assert body.endswith("4 runs were missed.")


def test_every_alert_kind_is_explained_titled_and_accepted_by_the_api() -> None:
    listed = NotificationSettingsBody.model_fields["notification_events"].annotation
    (kind,) = get_args(listed)  # list[Literal[...]]
    # A digest is what an ANALYTICS job is for, not an alert a project opts into.
    assert set(EVENT_KINDS) == set(TITLES) - {DIGEST} == set(get_args(kind))
    assert set(DEFAULT_EVENTS) <= set(EVENT_KINDS)
    assert all(meaning.endswith(".") and len(meaning) < 100 for meaning in EVENT_KINDS.values())
