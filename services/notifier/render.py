"""What an alert says on each channel: email (HTML and text), Slack blocks, a Discord embed.

Pure functions of the event and the alert kind. Every value that comes from users or from a
repository (job and project names, error messages, post titles and bodies) is escaped for the
channel it goes to: HTML by Jinja2's autoescape, Slack mrkdwn by `&`, `<`, `>` entities,
Discord by backslashes and `allowed_mentions` (set by its transport), and cut to the
channel's limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from services.notifier.alerts import (
    DIGEST,
    POST_FAILED,
    TITLES,
    describe,
    describe_move,
    digest_summary,
    window_text,
)
from shared import digest_chart
from shared.errors import PermanentError
from shared.events import (
    Digest,
    ExecutionFinished,
    PostUnpublished,
    RecipientConfirmationRequested,
    ScheduleMoved,
)

TEMPLATES = Path(__file__).parent / "templates"

HEADLINES = {
    "job_success": "Succeeded",
    "job_partial": "Partly failed",
    "job_failure": "Failed",
    "job_recovered": "Recovered",
    "job_skipped": "Skipped",
    "job_missed": "Missed",
    DIGEST: "Activity digest",
}
COLORS = {
    "job_success": "#1a7f37",
    "job_partial": "#bf8700",
    "job_failure": "#cf222e",
    "job_recovered": "#1a7f37",
    "job_skipped": "#6e7781",
    "job_missed": "#8250df",
    DIGEST: "#0969da",
}
SUBJECT_CHARS = 150
ERROR_CHARS = 2_000
POST_LINES = 3
POST_CHARS = 280
SLACK_SECTION_CHARS = 3_000
SLACK_HEADER_CHARS = 150
DISCORD_CONTENT_CHARS = 2_000
DISCORD_TITLE_CHARS = 256
DISCORD_DESCRIPTION_CHARS = 4_096
DISCORD_FIELD_CHARS = 1_024
DISCORD_EMBED_CHARS = 6_000
# The email's chart: the busiest span this many pixels tall, in a 552-pixel-wide column.
CHART_HEIGHT = 96
CHART_WIDTH = 552


class RenderError(PermanentError):
    """The alert's template failed to render."""


@dataclass(frozen=True)
class Email:
    subject: str
    html: str
    text: str


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


_ENV = _environment()


def clip(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def one_line(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space."""
    return " ".join(text.split())


def human_duration(millis: int | None) -> str | None:
    """Return `850 ms`, `12.3 s`, `4 min 05 s` or `2 h 03 min`."""
    if millis is None:
        return None
    if millis < 1_000:
        return f"{millis} ms"
    seconds = millis / 1_000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def first_lines(text: str, lines: int = POST_LINES, limit: int = POST_CHARS) -> str:
    """The first non-empty lines of a post, cut to `limit` characters."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()][:lines]
    return clip("\n".join(kept), limit)


def context(event: ExecutionFinished, kind: str) -> dict[str, Any]:
    """Everything a template or a chat message shows, computed once."""
    title, _ = describe(event, kind)
    return {
        "kind": kind,
        "kind_label": kind.removeprefix("job_"),
        "headline": HEADLINES[kind],
        "color": COLORS[kind],
        "title": title,
        "job_name": event.job_name,
        "project_name": event.project_name,
        "status": str(event.status),
        "trigger": str(event.trigger),
        "scheduled_for": (
            event.scheduled_for.strftime("%Y-%m-%d %H:%M UTC") if event.scheduled_for else None
        ),
        "duration": human_duration(event.duration),
        "items_processed": event.items_processed,
        "items_success": event.items_success,
        "items_failed": event.items_failed,
        "error_message": clip(event.error_message, ERROR_CHARS) if event.error_message else None,
        "consecutive_failures": event.consecutive_failures,
        "previous_status": str(event.previous_status) if event.previous_status else None,
        "missed_count": event.missed_count,
        "posts": [
            {
                "platform": post.platform,
                "title": one_line(post.title) if post.title else None,
                "lines": first_lines(post.excerpt),
            }
            for post in event.posts
        ],
        "link": event.link,
        "result": event.result,
        "digest": digest_values(event.digest) if event.digest is not None else None,
    }


def digest_values(digest: Digest) -> dict[str, Any]:
    """What the digest email shows: figures, the chart's columns, authors, items, jobs."""
    columns = digest_chart.columns(digest, CHART_HEIGHT)
    return {
        "summary": digest_summary(digest),
        "window": window_text(digest),
        "commits": digest.commits,
        "pull_requests": digest.pull_requests,
        "issues": digest.issues,
        "contributors": digest.contributors,
        "columns": columns,
        "column_width": max(2, CHART_WIDTH // max(1, len(columns)) - 2),
        "chart_height": CHART_HEIGHT,
        "legend": [(words, color) for _, words, color in digest_chart.KINDS],
        "text_chart": digest_chart.text_bars(digest),
        "partial": digest.items_seen < digest.items_total,
        "items_seen": digest.items_seen,
        "items_total": digest.items_total,
        "top_authors": [(author.name, author.items) for author in digest.top_authors],
        "notable": [
            {
                "kind": item.kind.replace("_", " "),
                "number": item.number,
                "title": one_line(item.title),
                "url": item.url,
                "author": item.author,
            }
            for item in digest.notable
        ],
        "releases": digest.releases,
        "runs": digest.runs,
        "success_rate": digest.success_rate,
        "failed": digest.failed,
        "skipped": digest.skipped,
        "missed": digest.missed,
        "average_duration": human_duration(digest.average_duration),
        "jobs": [
            {
                "name": job.name,
                "type": job.type,
                "runs": job.runs,
                "success_rate": job.success_rate,
                "failed": job.failed,
                "skipped": job.skipped,
                "missed": job.missed,
                "average_duration": human_duration(job.average_duration),
                "streak": job.consecutive_failures,
            }
            for job in digest.jobs
        ],
    }


def render_email(event: ExecutionFinished, kind: str) -> Email:
    """Render the subject, HTML and plain-text bodies, or raise RenderError."""
    try:
        values = context(event, kind)
        template = "digest" if kind == DIGEST and values["digest"] else "email"
        html = _ENV.get_template(f"{template}.html").render(values)
        text = _ENV.get_template(f"{template}.txt").render(values)
    except (jinja2.TemplateError, LookupError, TypeError, ValueError) as exc:
        raise RenderError(f"email template failed to render: {type(exc).__name__}: {exc}") from None
    subject = clip(one_line(f"[herald] {values['title']} ({event.project_name})"), SUBJECT_CHARS)
    return Email(subject=subject, html=html, text=_tidy(text))


def render_question(event: RecipientConfirmationRequested, link: str) -> Email:
    """The email asking an address whether it wants a user's alerts, or raise RenderError."""
    values = {
        "requested_by": one_line(event.requested_by),
        "project_name": one_line(event.project_name),
        "email": event.email,
        "link": link,
    }
    try:
        html = _ENV.get_template("confirm.html").render(values)
        text = _ENV.get_template("confirm.txt").render(values)
    except (jinja2.TemplateError, LookupError, TypeError, ValueError) as exc:
        raise RenderError(f"email template failed to render: {type(exc).__name__}: {exc}") from None
    subject = clip(one_line(f"[herald] {values['requested_by']} would send you alerts"), 150)
    return Email(subject=subject, html=html, text=_tidy(text))


def render_move(event: ScheduleMoved) -> Email:
    """The email telling an owner a job's next run moved, or raise RenderError."""
    title, body = describe_move(event)
    values = {
        "title": title,
        "body": body,
        "job_name": one_line(event.job_name),
        "project_name": one_line(event.project_name),
        "timezone": event.timezone,
        "previous_run_at": event.previous_run_at.strftime("%Y-%m-%d %H:%M UTC"),
        "next_run_at": event.next_run_at.strftime("%Y-%m-%d %H:%M UTC"),
        "link": event.link,
    }
    try:
        html = _ENV.get_template("moved.html").render(values)
        text = _ENV.get_template("moved.txt").render(values)
    except (jinja2.TemplateError, LookupError, TypeError, ValueError) as exc:
        raise RenderError(f"email template failed to render: {type(exc).__name__}: {exc}") from None
    subject = clip(one_line(f"[herald] {title} ({event.project_name})"), SUBJECT_CHARS)
    return Email(subject=subject, html=html, text=_tidy(text))


def render_unpublished(event: PostUnpublished) -> Email:
    """The email telling an owner a post could not be published, or raise RenderError."""
    title = TITLES[POST_FAILED].format(job=one_line(event.job_name))
    values = {
        "title": title,
        "reason": event.reason,
        "job_name": one_line(event.job_name),
        "project_name": one_line(event.project_name),
        "platform": event.platform,
        "link": event.link,
    }
    try:
        html = _ENV.get_template("unpublished.html").render(values)
        text = _ENV.get_template("unpublished.txt").render(values)
    except (jinja2.TemplateError, LookupError, TypeError, ValueError) as exc:
        raise RenderError(f"email template failed to render: {type(exc).__name__}: {exc}") from None
    subject = clip(one_line(f"[herald] {title} ({event.project_name})"), SUBJECT_CHARS)
    return Email(subject=subject, html=html, text=_tidy(text))


def _tidy(text: str) -> str:
    # Conditional blocks leave runs of blank lines: keep at most one.
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def slack_escape(text: str) -> str:
    """Escape the three characters Slack mrkdwn gives meaning (links, mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(event: ExecutionFinished, kind: str) -> dict[str, Any]:
    """A Slack incoming-webhook payload: a plain `text` fallback and Block Kit blocks."""
    values = context(event, kind)
    title = one_line(values["title"])
    facts = [
        f"*Project:* {slack_escape(one_line(event.project_name))}",
        f"*Job:* {slack_escape(clip(one_line(event.job_name), 256))}",
        f"*Status:* {event.status}",
    ]
    if values["duration"]:
        facts.append(f"*Duration:* {values['duration']}")
    if event.items_processed:
        facts.append(
            f"*Posts:* {event.items_success} of {event.items_processed}"
            + (f", {event.items_failed} failed" if event.items_failed else "")
        )
    if event.missed_count:
        facts.append(f"*Missed runs:* {event.missed_count}")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(title, SLACK_HEADER_CHARS)},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(facts)}},
    ]
    if values["digest"]:
        blocks.append(_slack_section(slack_escape(values["digest"]["summary"])))
    elif values["result"]:
        blocks.append(_slack_section(slack_escape(values["result"])))
    if values["error_message"]:
        blocks.append(_slack_section("*Error*\n" + slack_escape(values["error_message"])))
    for post in values["posts"]:
        heading = f"*{post['platform']}*" + (
            f" · {slack_escape(post['title'])}" if post["title"] else ""
        )
        blocks.append(_slack_section(heading + "\n" + slack_escape(post["lines"])))
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "View the execution"},
                    "url": event.link,
                }
            ],
        }
    )
    fallback = f"{title} ({one_line(event.project_name)}): {event.status}"
    return {"text": slack_escape(clip(fallback, SLACK_SECTION_CHARS)), "blocks": blocks}


def _slack_section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SLACK_SECTION_CHARS)}}


_DISCORD_MARKDOWN = re.compile(r"([\\*_~`|>#\[\]])")


def discord_escape(text: str) -> str:
    """Escape Discord markdown so names and messages show as typed."""
    return _DISCORD_MARKDOWN.sub(r"\\\1", text)


def discord_message(event: ExecutionFinished, kind: str) -> dict[str, Any]:
    """A Discord webhook payload: a short `content` line and one embed."""
    values = context(event, kind)
    title = one_line(values["title"])
    fields: list[dict[str, Any]] = [
        {"name": "Project", "value": _field(event.project_name), "inline": True},
        {"name": "Status", "value": str(event.status), "inline": True},
    ]
    if values["duration"]:
        fields.append({"name": "Duration", "value": values["duration"], "inline": True})
    if event.items_processed:
        posts = f"{event.items_success} of {event.items_processed}" + (
            f", {event.items_failed} failed" if event.items_failed else ""
        )
        fields.append({"name": "Posts", "value": posts, "inline": True})
    if event.missed_count:
        fields.append({"name": "Missed runs", "value": str(event.missed_count), "inline": True})
    if values["digest"]:
        fields.append({"name": "Digest", "value": _field(values["digest"]["summary"])})
    elif values["result"]:
        fields.append({"name": "Result", "value": _field(values["result"])})
    if values["error_message"]:
        fields.append({"name": "Error", "value": _field(values["error_message"])})
    for post in values["posts"]:
        name = post["platform"] + (f" · {post['title']}" if post["title"] else "")
        field = {"name": clip(name, 256), "value": _field(post["lines"])}
        # An embed holds 25 fields and 6,000 characters in all: keep the posts that fit.
        if len(fields) == 25 or _embed_chars(fields) + len(field["name"] + field["value"]) > (
            DISCORD_EMBED_CHARS - DISCORD_TITLE_CHARS - 200
        ):
            break
        fields.append(field)
    description = f"Job **{discord_escape(clip(one_line(event.job_name), 256))}**"
    embed = {
        "title": clip(title, DISCORD_TITLE_CHARS),
        "url": event.link,
        "description": clip(description, DISCORD_DESCRIPTION_CHARS),
        "color": int(COLORS[kind].lstrip("#"), 16),
        "fields": fields,
    }
    content = clip(discord_escape(f"{HEADLINES[kind]}: {title}"), DISCORD_CONTENT_CHARS)
    return {"content": content, "embeds": [embed]}


def _field(text: str) -> str:
    return clip(discord_escape(text), DISCORD_FIELD_CHARS) or "-"


def _embed_chars(fields: list[dict[str, Any]]) -> int:
    return sum(len(str(field["name"])) + len(str(field["value"])) for field in fields)
