"""An ANALYTICS run's digest: always delivered, and its email carries a chart a mail client
draws with tables alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from services.api import digest
from services.api.digest import JobFigures
from services.notifier import render
from services.notifier.alerts import DIGEST, alert_kind, describe, wanted
from shared.events import (
    ActivityItem,
    ActivitySummary,
    ExecutionFinished,
    ExecutionStatus,
    JobType,
    NotificationSettings,
    Trigger,
)

END = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
START = END - timedelta(days=7)
XSS = '<script>alert("x")</script>'


def finished(**fields: object) -> ExecutionFinished:
    items = [
        ActivityItem(kind="commit", title="fix", at=START + timedelta(days=2), author=f"{XSS} dev"),
        ActivityItem(
            kind="pull_request",
            title=f"{XSS} merge",
            number=5,
            url="https://github.com/octo/app/pull/5",
            at=START + timedelta(days=5),
            author="zoe",
        ),
    ]
    summary = ActivitySummary(
        commits=1,
        pull_requests=1,
        contributors=["zoe", f"{XSS} dev"],
        items=items,
        notable=[items[1]],
    )
    jobs = [
        JobFigures(
            job_id="cron_1",
            name=f"{XSS} nightly",
            type="GENERATE_CONTENT",
            by_status={"COMPLETED": 3, "FAILED": 1},
            missed=0,
            duration_ms=8_000,
            timed_runs=4,
            consecutive_failures=1,
        )
    ]
    built = digest.build(summary, window_start=START, window_end=END, jobs=jobs)
    values: dict[str, object] = {
        "execution_id": "exe_1",
        "job_id": "cron_9",
        "project_id": "prj_1",
        "status": ExecutionStatus.COMPLETED,
        "trigger": Trigger.SCHEDULE,
        "job_name": "Weekly numbers",
        "project_name": "<b>acme</b>",
        "user_id": "usr_1",
        "link": "https://herald.example/console/executions/exe_1",
        "job_type": JobType.ANALYTICS,
        "digest": built,
        **fields,
    }
    return ExecutionFinished.model_validate(values)


def test_a_digest_is_its_own_alert_wanted_whatever_the_project_listed() -> None:
    event = finished(notification_settings=NotificationSettings(notification_events=[]))

    assert alert_kind(event) == DIGEST
    assert wanted(event, DIGEST)
    # A failed analytics run is an ordinary failure, by the project's list.
    failed = finished(status=ExecutionStatus.FAILED, digest=None)
    assert alert_kind(failed) == "job_failure"


def test_the_in_app_alert_carries_the_digest() -> None:
    title, body = describe(finished(), DIGEST)

    assert title == "Weekly numbers: activity digest"
    assert body.startswith(
        "Project <b>acme</b>, 2026-11-30 09:00 UTC to 2026-12-07 09:00 UTC: 1 commit, "
        "1 merged pull request, 0 closed issues by 2 authors."
    )
    assert "Jobs: 4 job runs, 75% succeeded (1 failed)." in body


def test_the_email_draws_the_chart_with_table_cells_only() -> None:
    email = render.render_email(finished(), DIGEST)

    html = email.html
    assert email.subject == "[herald] Weekly numbers: activity digest (<b>acme</b>)"
    # No script, no image, no style sheet to fetch: cells of fixed height and colour.
    assert "<script" not in html and "<img" not in html and "<link" not in html
    assert "&lt;script&gt;" in html
    bars = re.findall(r'<td height="(\d+)" bgcolor="(#[0-9a-f]{6})"', html)
    assert bars == [(str(render.CHART_HEIGHT), "#0969da"), (str(render.CHART_HEIGHT), "#8250df")]
    # Seven days, seven columns, the empty ones a spacer the chart's height.
    assert html.count('valign="bottom"') == 7
    assert "Merged pull requests" in html
    assert 'href="https://github.com/octo/app/pull/5"' in html
    assert "75.0%" in html
    assert "<br>commit</td>" in html and "<br>merged pull request</td>" in html
    assert 'href="https://herald.example/console/executions/exe_1"' in html


def test_the_text_email_has_the_chart_in_characters() -> None:
    text = render.render_email(finished(), DIGEST).text

    assert "\n2026-11-30 09:00 UTC to 2026-12-07 09:00 UTC: 1 commit," in text
    assert "Dec 02  " + "#" * 30 + " 1" in text
    assert "Nov 30  0" in text
    assert f"- pull request #5: {XSS} merge by zoe" in text
    assert f"- {XSS} nightly: 4 runs, 75.0% succeeded, 1 failed" in text
    assert "\n\n\n" not in text


def test_chat_channels_lead_with_the_digest() -> None:
    slack = render.slack_message(finished(), DIGEST)
    discord = render.discord_message(finished(), DIGEST)

    sections = [block["text"]["text"] for block in slack["blocks"] if block["type"] == "section"]
    assert any("1 merged pull request" in text and "&lt;script&gt;" in text for text in sections)
    assert not any("<script" in text for text in sections)
    fields = {field["name"]: field["value"] for field in discord["embeds"][0]["fields"]}
    assert "75% succeeded" in fields["Digest"]


def test_a_sync_alert_says_what_it_synced() -> None:
    event = finished(
        job_type=JobType.SYNC_GITHUB,
        digest=None,
        result="Synced 12 commits, 3 merged pull requests, 2 closed issues",
    )

    assert alert_kind(event) == "job_success"
    _, body = describe(event, "job_success")
    assert "Synced 12 commits, 3 merged pull requests, 2 closed issues." in body
