"""Which GitHub deliveries fire a job's webhook trigger, and where their activity begins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.api.webhook_triggers import (
    WebhookTriggerBody,
    event_release,
    event_start,
    fires,
)


def trigger(**fields: Any) -> dict[str, Any]:
    return WebhookTriggerBody.model_validate(fields).stored()


def push(ref: str, **fields: Any) -> dict[str, Any]:
    return {"ref": ref, "repository": {"default_branch": "main"}, **fields}


def release(tag: str, *, action: str = "published", **fields: Any) -> dict[str, Any]:
    return {"action": action, "release": {"tag_name": tag, **fields}}


def merge(*, merged: Any = True, base: str = "main", labels: Any = ()) -> dict[str, Any]:
    pull = {"merged": merged, "base": {"ref": base}, "labels": [{"name": n} for n in labels]}
    return {"action": "closed", "pull_request": pull}


@pytest.mark.parametrize(
    ("given", "event", "payload", "expected"),
    [
        ({"event": "release"}, "release", release("v1"), True),
        ({"event": "release"}, "release", release("v1", action="released"), False),
        ({"event": "release"}, "release", release("v1", prerelease=True), False),
        (
            {"event": "release", "prereleases": True},
            "release",
            release("v1", prerelease=True),
            True,
        ),
        ({"event": "release", "tags": ["v2.*"]}, "release", release("v1.0"), False),
        ({"event": "release", "tags": ["v1.*", "v2.*"]}, "release", release("v2.1"), True),
        ({"event": "release"}, "push", push("refs/heads/main"), False),
        ({"event": "push"}, "push", push("refs/heads/main"), True),
        ({"event": "push"}, "push", push("refs/heads/dev"), False),
        ({"event": "push"}, "push", push("refs/heads/main", deleted=True), False),
        ({"event": "push"}, "push", push("refs/tags/v1"), False),
        ({"event": "push", "branches": ["release/*"]}, "push", push("refs/heads/release/1"), True),
        ({"event": "push", "branches": ["release/*"]}, "push", push("refs/heads/main"), False),
        ({"event": "pull_request"}, "pull_request", merge(), True),
        ({"event": "pull_request"}, "pull_request", merge(merged=False), False),
        ({"event": "pull_request"}, "pull_request", merge(merged="true"), False),
        ({"event": "pull_request", "branches": ["dev"]}, "pull_request", merge(), False),
        ({"event": "pull_request", "labels": ["a"]}, "pull_request", merge(labels=["b"]), False),
        (
            {"event": "pull_request", "labels": ["a"]},
            "pull_request",
            {"action": "closed", "pull_request": {"merged": True, "labels": "a"}},
            False,
        ),
        (
            {"event": "pull_request", "labels": ["a", "b"]},
            "pull_request",
            merge(labels=["b"]),
            True,
        ),
        # A signed payload of an unexpected shape fires nothing and raises nothing.
        ({"event": "pull_request"}, "pull_request", {"pull_request": []}, False),
        ({"event": "release"}, "release", {"action": "published", "release": "v1"}, True),
        ({"event": "release", "tags": ["*"]}, "release", {"action": "published"}, False),
    ],
)
def test_a_trigger_fires_on_its_event_when_its_filters_match(
    given: dict[str, Any], event: str, payload: dict[str, Any], expected: bool
) -> None:
    assert fires(trigger(**given), event, payload) is expected


def test_the_activity_begins_where_the_event_says() -> None:
    commits = [
        {"timestamp": "2026-03-02T12:00:00+02:00"},
        {"timestamp": "2026-03-02T11:00:00Z"},
        {"timestamp": "not a time"},
        "not a commit",
    ]
    assert event_start("push", {"commits": commits}) == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert event_start("push", {"commits": []}) is None
    opened = {"pull_request": {"created_at": "2026-03-01T08:00:00Z"}}
    assert event_start("pull_request", opened) == datetime(2026, 3, 1, 8, tzinfo=UTC)
    # A release's activity starts at the previous release, which its payload does not name.
    assert event_start("release", release("v1")) is None


def test_a_release_delivery_names_its_release_for_the_scanner() -> None:
    payload = {
        "action": "published",
        "release": {
            "tag_name": "v1.0",
            "name": "",
            "body": None,
            "html_url": "https://github.com/o/r/releases/tag/v1.0",
            "published_at": "2026-03-02T12:00:00Z",
            "prerelease": True,
        },
    }
    release = event_release("release", payload)
    assert release is not None
    assert (release.tag, release.name, release.body, release.prerelease) == (
        "v1.0",
        None,
        None,
        True,
    )
    assert release.published_at == datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert event_release("push", payload) is None
    assert event_release("release", {"release": {"tag_name": ""}}) is None
