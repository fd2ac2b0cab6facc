"""Every alert kind renders on every channel, with hostile content escaped and cut to fit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.notifier import render
from services.notifier.alerts import DIGEST, SCHEDULE_MOVED, TITLES
from shared.events import ExecutionFinished, ExecutionStatus, PostExcerpt, ScheduleMoved, Trigger

S = ExecutionStatus
# The alerts an execution's end raises (a moved schedule has its own email: below; a digest
# its own, in test_notifier_digest.py; a post that could not be published is an in-app alert
# the api raises, not the notifier).
EXECUTION_KINDS = [kind for kind in TITLES if kind not in (SCHEDULE_MOVED, DIGEST, "post_failed")]
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
RTL = "\u05e9\u05dc\u05d5\u05dd \u202eevil\u202c مرحبا"
EMOJI = "🚀🔥 release 👩‍💻"

STATUS_FOR = {
    "job_success": (S.COMPLETED, {}),
    "job_partial": (S.COMPLETED, {"items_failed": 1}),
    "job_failure": (S.FAILED, {"consecutive_failures": 3}),
    "job_recovered": (S.COMPLETED, {"previous_status": S.TIMEOUT}),
    "job_skipped": (S.SKIPPED, {}),
    "job_missed": (S.MISSED, {"missed_count": 4}),
}


def hostile(kind: str, **fields: Any) -> ExecutionFinished:
    status, extra = STATUS_FOR[kind]
    values: dict[str, Any] = {
        "execution_id": "exe_1",
        "job_id": "cron_1",
        "project_id": "prj_1",
        "status": status,
        "trigger": Trigger.SCHEDULE,
        "scheduled_for": datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
        "job_name": f"{XSS} {EMOJI} {RTL}",
        "project_name": "<b>acme</b> & co",
        "user_id": "usr_1",
        "duration": 125_000,
        "items_processed": 3,
        "items_success": 2,
        "error_message": "GitHub said <html><body>502 & down</body></html>\nline 2",
        "posts": [
            PostExcerpt(
                platform="x",
                title="Fix <b>DST</b> bug " + "very long " * 200,
                excerpt=f"{XSS}\n\n{EMOJI}\n{RTL}\nfourth line\nfifth line",
            ),
            PostExcerpt(platform="blog", excerpt="@everyone <!channel> **bold** [a](http://e)"),
        ],
        "link": "https://herald.example/api/cron/executions/exe_1",
        **extra,
        **fields,
    }
    return ExecutionFinished(**values)


@pytest.mark.parametrize("kind", EXECUTION_KINDS)
def test_the_html_email_escapes_everything_users_wrote(kind: str) -> None:
    email = render.render_email(hostile(kind), kind)

    assert "<script>" not in email.html
    assert "<img" not in email.html
    assert "<b>acme</b>" not in email.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in email.html
    assert "&lt;b&gt;acme&lt;/b&gt; &amp; co" in email.html
    assert EMOJI in email.html
    assert RTL in email.html
    assert 'dir="auto"' in email.html
    assert 'href="https://herald.example/api/cron/executions/exe_1"' in email.html


@pytest.mark.parametrize("kind", EXECUTION_KINDS)
def test_the_text_email_keeps_the_words_as_typed(kind: str) -> None:
    email = render.render_email(hostile(kind), kind)

    assert XSS in email.text  # plain text: nothing to escape, nothing interpreted
    assert "<b>acme</b> & co" in email.text
    assert "https://herald.example/api/cron/executions/exe_1" in email.text
    assert "Duration: 2 min 05 s" in email.text
    assert "\n\n\n" not in email.text


@pytest.mark.parametrize("kind", EXECUTION_KINDS)
def test_the_subject_is_one_short_line(kind: str) -> None:
    event = hostile(kind, job_name="a\r\nBcc: victim@example.com\n" + "long " * 100)

    subject = render.render_email(event, kind).subject

    assert "\n" not in subject
    assert "\r" not in subject
    assert len(subject) <= render.SUBJECT_CHARS
    assert subject.startswith("[herald] a Bcc: victim@example.com long")


def test_a_failure_shows_its_error_and_streak_and_a_success_its_posts() -> None:
    failure = render.render_email(hostile("job_failure"), "job_failure")
    success = render.render_email(hostile("job_success", error_message=None), "job_success")

    assert "GitHub said &lt;html&gt;" in failure.html
    assert "Failures in a row: 3" in failure.text
    assert "Generated posts" in success.text
    assert "fourth line" not in success.text  # the first three non-empty lines only
    assert "Error" not in success.text


def test_a_partial_counts_the_failed_posts() -> None:
    email = render.render_email(hostile("job_partial", items_failed=1), "job_partial")

    assert "Posts: 2 of 3 generated, 1 failed" in email.text
    assert email.subject.startswith("[herald] ")


def test_missed_and_skipped_say_why() -> None:
    missed = render.render_email(hostile("job_missed"), "job_missed")
    skipped = render.render_email(hostile("job_skipped"), "job_skipped")

    assert "Missed runs: 4" in missed.text
    assert "catch-up window" in missed.text
    assert "overlap policy" in skipped.text


def test_a_very_long_error_is_cut() -> None:
    email = render.render_email(hostile("job_failure", error_message="E" * 50_000), "job_failure")

    assert "E" * render.ERROR_CHARS not in email.text
    assert "E" * (render.ERROR_CHARS - 1) in email.text


@pytest.mark.parametrize("kind", EXECUTION_KINDS)
def test_slack_text_cannot_mention_or_link(kind: str) -> None:
    message = render.slack_message(hostile(kind), kind)
    mrkdwn = [message["text"]] + [
        block["text"]["text"]
        for block in message["blocks"]
        if block.get("text", {}).get("type") == "mrkdwn"
    ]

    # Slack reads `<...>` in mrkdwn as a link or a mention: none may come from users.
    assert message["text"]
    assert not any("<" in text or ">" in text for text in mrkdwn)
    assert any("&lt;!channel&gt;" in text for text in mrkdwn)
    # The header is plain_text: shown as typed, nothing to escape.
    assert "<script>" in message["blocks"][0]["text"]["text"]
    header = message["blocks"][0]
    assert header["type"] == "header"
    assert len(header["text"]["text"]) <= render.SLACK_HEADER_CHARS
    for block in message["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= render.SLACK_SECTION_CHARS
    assert message["blocks"][-1]["elements"][0]["url"] == hostile(kind).link


@pytest.mark.parametrize("kind", EXECUTION_KINDS)
def test_discord_fits_its_limits_and_escapes_markdown(kind: str) -> None:
    message = render.discord_message(hostile(kind), kind)
    embed = message["embeds"][0]

    assert len(message["content"]) <= render.DISCORD_CONTENT_CHARS
    assert len(embed["title"]) <= render.DISCORD_TITLE_CHARS
    assert "\\*\\*bold\\*\\*" in json.loads(json.dumps(message))["embeds"][0]["fields"][-1]["value"]
    total = len(embed["title"]) + len(embed["description"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= render.DISCORD_EMBED_CHARS
    assert all(len(f["value"]) <= render.DISCORD_FIELD_CHARS for f in embed["fields"])


def test_discord_keeps_within_six_thousand_characters_with_many_posts() -> None:
    posts = [PostExcerpt(platform=f"p{n}", title="T" * 300, excerpt="*" * 900) for n in range(12)]

    embed = render.discord_message(hostile("job_success", posts=posts), "job_success")["embeds"][0]

    total = len(embed["title"]) + len(embed["description"])
    total += sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= render.DISCORD_EMBED_CHARS
    assert len(embed["fields"]) <= 25


@pytest.mark.parametrize(
    ("millis", "text"),
    [
        (None, None),
        (850, "850 ms"),
        (1_500, "1.5 s"),
        (125_000, "2 min 05 s"),
        (7_380_000, "2 h 03 min"),
    ],
)
def test_durations_read_naturally(millis: int | None, text: str | None) -> None:
    assert render.human_duration(millis) == text


def moved(**fields: Any) -> ScheduleMoved:
    values: dict[str, Any] = {
        "job_id": "cron_1",
        "project_id": "prj_1",
        "user_id": "usr_1",
        "job_name": XSS,
        "project_name": "<b>acme</b> & co",
        "timezone": "America/Asuncion",
        "previous_run_at": datetime(2026, 11, 2, 12, 0, tzinfo=UTC),
        "next_run_at": datetime(2026, 11, 2, 13, 0, tzinfo=UTC),
        "rules_version": "2026b",
        "previous_rules_version": "2026a",
        "link": "https://herald.example/console/jobs/cron_1",
    } | fields
    return ScheduleMoved(**values)


def test_the_moved_schedule_email_escapes_names_and_gives_both_runs() -> None:
    email = render.render_move(moved(job_name=XSS + "\r\nBcc: victim@example.com"))

    assert "<script>" not in email.html
    assert "&lt;b&gt;acme&lt;/b&gt; &amp; co" in email.html
    assert XSS in email.text
    for text in (email.html, email.text):
        assert "2026-11-02 12:00 UTC" in text
        assert "2026-11-02 13:00 UTC" in text
        assert "2026a to 2026b" in text
        assert "https://herald.example/console/jobs/cron_1" in text
    assert "\n" not in email.subject
    assert "\r" not in email.subject
    assert "next run moved" in email.subject
